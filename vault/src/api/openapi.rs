//! The OpenAPI 3.1 contract, generated from the handlers' `#[utoipa::path]` attributes and the
//! types they answer with, so it cannot drift from the code. Served at `/openapi.json`; a copy is
//! checked in as `vault/openapi.json`, and `tests/openapi.rs` fails when that copy is stale.
//!
//! A new endpoint needs its `#[utoipa::path]` and one line in `paths(...)` below. What every
//! operation shares (the error answers of authentication, idempotency, limits, the body limit
//! and failures, and the `Idempotency-Key` header) is added by [`Shared`], not repeated.

use std::sync::LazyLock;

use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::schemas::{
    ApiErrorBody, BadGateway, BadRequest, CardError, Conflict, Forbidden, GatewayTimeout, Internal,
    NotFound, RateLimited, TooLarge, Unauthorized, Unavailable,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cardseal-vault",
        description = "The reference card vault for cardseal: it unseals JWE-sealed cards and issues single-use tokens. \
Errors are `{\"error\":{\"type\",\"code\",\"param\",\"message\",\"request_id\"}}` with Stripe's statuses; \
unknown ids and other accounts' ids give the same 404 `resource_missing`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        crate::health::healthz,
        super::jwks,
        super::openapi_json,
        super::encryption_keys,
        super::tokens::create,
        super::tokens::retrieve,
        super::cards::create,
        super::cards::list,
        super::cards::retrieve,
        super::cards::delete,
        super::cards::add_cvc,
        super::charges::create,
        super::charges::retrieve,
        super::charges::capture,
        super::charges::list,
        super::refunds::create,
        super::refunds::retrieve,
        super::refunds::list,
        super::detokenize::detokenize,
        super::events::list,
        super::raw_card::create,
        super::raw_card::add_cvv,
        super::forward::create,
        super::recurring::create,
        super::recurring::list,
        super::recurring::retrieve,
        super::recurring::cancel,
    ),
    components(
        responses(BadRequest, Unauthorized, CardError, Forbidden, NotFound, Conflict, TooLarge, RateLimited, Internal, Unavailable, BadGateway, GatewayTimeout),
    ),
    modifiers(&Shared),
    tags(
        (name = "keys", description = "The vault's public encryption keys."),
        (name = "tokens", description = "Single-use tokens of sealed cards and CVCs."),
        (name = "cards", description = "Saved, reusable cards."),
        (name = "charges", description = "Authorizations through the configured processor, captured at once or later."),
        (name = "refunds", description = "Refunds of captured charges, in full or in parts."),
        (name = "detokenize", description = "Card numbers, for a payment provider's connector."),
        (name = "events", description = "The audit log."),
        (name = "raw card", description = "The raw-card API of older vaults, off unless `--allow-raw-card-api`."),
        (name = "forward", description = "A card sent to the merchant's processor, filled in by the vault."),
        (name = "meta", description = "Health and this document."),
        (name = "recurring", description = "Charges on a saved card that the vault makes on a schedule."),
    ),
)]
struct ApiDoc;

/// The contract as a document.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The contract as pretty JSON with a final newline: the body of `/openapi.json` and the
/// checked-in `vault/openapi.json`.
pub fn json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        // Serializing a document of plain maps and strings cannot fail.
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        fix_links(&mut doc);
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    });
    &JSON
}

/// utoipa 5 writes a Link's `operationId` and `requestBody` in snake case, which OpenAPI tools
/// (schemathesis among them) do not read; this renames them.
fn fix_links(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|r| r.get_mut("links").and_then(Value::as_object_mut))
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_owned(), v);
            }
        }
    }
}

/// What every operation shares, and the security schemes.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert(ApiErrorBody::name().into_owned(), ApiErrorBody::schema());
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "pk",
            bearer("A publishable key, `pk_test_…`: reads the keys and creates tokens, only from the account's allowed origins (CORS). `Authorization: Basic base64(KEY:)` works too."),
        );
        components.add_security_scheme(
            "sk",
            bearer("A secret key, `sk_test_…`: everything but detokenize. Never in a browser."),
        );
        components.add_security_scheme(
            "rk",
            bearer("A restricted key, `rk_test_…`, with scopes: `detokenize` (the only one that sees card numbers), `tokens_read`, `cards_read`, `cards_write`, `charges_read`, `charges_write`, `events_read`."),
        );

        let reference = |name: &str| RefOr::Ref(Ref::from_response_name(name));
        for item in doc.paths.paths.values_mut() {
            let operations = [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                let authenticated = op.security.is_some();
                let post = method == HttpMethod::Post;
                // Any request may carry a key, and a malformed or unknown one is refused.
                let mut shared = vec![
                    ("401", "Unauthorized"),
                    ("500", "Internal"),
                    ("503", "Unavailable"),
                ];
                if authenticated {
                    shared.push(("403", "Forbidden"));
                }
                if post {
                    shared.extend([
                        ("400", "BadRequest"),
                        ("409", "Conflict"),
                        ("413", "TooLarge"),
                        ("429", "RateLimited"),
                    ]);
                    if op.operation_id.as_deref() != Some("detokenize") {
                        op.parameters.get_or_insert_with(Vec::new).push(
                            ParameterBuilder::new()
                                .name("Idempotency-Key")
                                .parameter_in(ParameterIn::Header)
                                .required(Required::False)
                                .description(Some("Makes a retry safe: the same key and body answer the first answer again (24 hours). 1 to 255 characters."))
                                .schema(Some(
                                    ObjectBuilder::new()
                                        .schema_type(Type::String)
                                        .min_length(Some(1))
                                        .max_length(Some(255)),
                                ))
                                .build(),
                        );
                    }
                }
                for (status, name) in shared {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| reference(name));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc = super::document();
        for route in super::super::ROUTES {
            // The snippet's files and the hosted fields' documents are static assets, not API.
            if route.starts_with("/js/") || route.starts_with("/fields/") {
                continue;
            }
            assert!(
                doc.paths.paths.contains_key(*route),
                "{route} has no #[utoipa::path], or is missing from ApiDoc's paths(...)"
            );
        }
    }
}
