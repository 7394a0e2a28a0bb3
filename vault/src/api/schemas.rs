//! The shapes the OpenAPI document names: the error envelope, the shared error answers and
//! small response schemas. Handlers take their response components from here, and the
//! document (`openapi.rs`) lists the handlers, so neither imports the other's file back.

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder, Schema,
};
use utoipa::{PartialSchema, ToResponse, ToSchema};

use crate::error::ApiCode;

/// The error envelope, `{"error": {...}}`, with every `type` and `code` the vault sends.
pub(crate) struct ApiErrorBody;

const ERROR_TYPES: [&str; 7] = [
    "invalid_request_error",
    "idempotency_error",
    "authentication_error",
    "card_error",
    "permission_error",
    "rate_limit_error",
    "api_error",
];

impl PartialSchema for ApiErrorBody {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let nullable = |description: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .description(Some(description))
        };
        let codes: Vec<&str> = ApiCode::all().map(ApiCode::as_str).collect();
        let error = ObjectBuilder::new()
            .property(
                "type",
                string("The kind of error.").enum_values(Some(ERROR_TYPES)),
            )
            .property(
                "code",
                string("A stable code; a card error carries the card field's own code.")
                    .enum_values(Some(codes)),
            )
            .property(
                "param",
                nullable("The parameter at fault (`number`, `expiry`, `cvc` or `name` for a card error)."),
            )
            .property(
                "message",
                string("English text for the developer; never echoes the request."),
            )
            .property(
                "request_id",
                nullable("The `Request-Id` header's value; `null` for an opaque decryption failure."),
            )
            .required("type")
            .required("code")
            .required("param")
            .required("message")
            .required("request_id");
        ObjectBuilder::new()
            .property("error", error)
            .required("error")
            .into()
    }
}

impl ToSchema for ApiErrorBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "Error".into()
    }
}

/// A JWKS of the active key and the keys still in their grace period, the active key last.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the keys module builds the JWKS as JSON.
pub(crate) struct Jwks {
    keys: Vec<Jwk>,
}

/// An RSA public key for sealing.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) struct Jwk {
    #[schema(pattern = "^RSA$")]
    kty: String,
    /// `key_…`.
    kid: String,
    #[serde(rename = "use")]
    #[schema(pattern = "^enc$")]
    key_use: String,
    #[schema(pattern = "^RSA-OAEP-256$")]
    alg: String,
    /// Modulus, base64url.
    n: String,
    /// Exponent, base64url.
    e: String,
    /// When the key was made (Unix seconds).
    iat: i64,
}

/// `{"status":"ok","instance":"inst_…"}`, or `degraded` with a `reason`.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) struct Health {
    #[schema(pattern = "^(ok|degraded)$")]
    status: String,
    /// Why the vault is degraded: `out_of_space`.
    reason: Option<String>,
    /// This process's id, new at each start.
    instance: String,
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .build(),
    )
}

macro_rules! error_responses {
    ($($name:ident => $description:literal;)*) => {$(
        #[doc = $description]
        pub(crate) struct $name;

        impl<'s> ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<Response>) {
                (stringify!($name), error_response($description).build().into())
            }
        }
    )*};
}

error_responses! {
    BadRequest => "`invalid_request_error` or `idempotency_error`: the body or a parameter is invalid, or a sealed value cannot be used.";
    Unauthorized => "`authentication_error`: `api_key_required` or `invalid_api_key`.";
    CardError => "`card_error`: a card field is invalid; the code is the card field's, as in the browser.";
    Forbidden => "`permission_error`: `origin_not_allowed` (naming the origin seen), `secret_key_required`, `insufficient_scope` or `organisation_mismatch`.";
    NotFound => "`resource_missing`: unknown ids and other accounts' ids alike, and unknown URLs.";
    Conflict => "`replayed_request`, or `idempotency_key_in_use` while a request with the same key runs.";
    TooLarge => "`request_too_large`: bodies are limited to 8 KiB.";
    Internal => "`api_error` `internal_error`; nothing about why is sent.";
    Unavailable => "`api_error` `service_unavailable`, with `Retry-After`: the database cannot be reached or its disk is full; nothing was written, retry later.";
    BadGateway => "`api_error`: the processor could not be reached or answered too much (`upstream_connection_failed`, `upstream_tls_failed`, `upstream_dns_failed`, `upstream_response_too_large`, `forward_response_unreadable` with the processor's `status` and `headers` beside `error`).";
    GatewayTimeout => "`api_error` `upstream_timeout`: the processor did not answer in time.";
}

/// 429 with `Retry-After`.
pub(crate) struct RateLimited;

impl<'s> ToResponse<'s> for RateLimited {
    fn response() -> (&'s str, RefOr<Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait."))
            .build();
        let response =
            error_response("`rate_limit_error` `rate_limit`: retry after `Retry-After` seconds.")
                .header("Retry-After", retry_after)
                .build();
        ("RateLimited", response.into())
    }
}

/// A page of charges.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used: lists are written by [`crate::pagination::List`].
pub(crate) struct ChargeList {
    #[schema(pattern = "^list$")]
    object: String,
    /// `/v1/charges`.
    url: String,
    /// Newest first.
    data: Vec<crate::domain::charge::ChargeObject>,
    has_more: bool,
}

/// A page of refunds.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used: lists are written by [`crate::pagination::List`].
pub(crate) struct RefundList {
    #[schema(pattern = "^list$")]
    object: String,
    /// `/v1/refunds`.
    url: String,
    /// Newest first.
    #[schema(value_type = Vec<crate::domain::refund::RefundObject>)]
    data: Vec<String>,
    has_more: bool,
}
