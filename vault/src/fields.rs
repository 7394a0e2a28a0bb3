//! Hosted fields (DESIGN.md, "Hosted fields"): the card inputs in documents of the vault's own
//! origin, which a merchant's page frames, so that the page never holds a card value.
//!
//! - `GET /fields/{version}/{kind}.html?pk=pk_…` (`kind`: number, expiry, cvc, name, card): the
//!   field document. Its CSP allows scripts and wasm from the vault only, connections to the
//!   vault only, and sets `frame-ancestors` to the allowed origins of the publishable key's
//!   account, so no other site can frame it.
//! - `GET /fields/{version}/cardseal-frame.js` and `…/cardseal_bg.wasm`: the script of the field
//!   documents and its wasm, immutable. The version is the package version plus a hash of both,
//!   computed the same way by `scripts/build.mjs`, which builds it into the merchant-side code.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;

use crate::AppState;
use crate::store::KeyKind;

/// The script every field document runs, built by `scripts/build.mjs` into `pkg/snippet/`.
pub const SCRIPT: &str = "cardseal-frame.js";
const WASM: &str = "cardseal_bg.wasm";

/// The kinds of field, and the document title of each (the iframe's own title is set by the
/// merchant-side code, localized).
const KINDS: [(&str, &str); 5] = [
    ("number", "Card number"),
    ("expiry", "Expiry date"),
    ("cvc", "Security code"),
    ("name", "Name on card"),
    ("card", "Card details"),
];

/// The field documents' script and wasm, loaded once at start.
#[derive(Debug)]
pub struct Fields {
    version: String,
    script: Vec<u8>,
    script_integrity: String,
    wasm: Vec<u8>,
}

impl Fields {
    /// Loads `cardseal-frame.js` and `cardseal_bg.wasm` from `dir`, or `None` when the directory
    /// has no field script (a build from before hosted fields).
    pub fn load(dir: &Path, package_version: &str) -> Result<Option<Fields>, String> {
        let script_path = dir.join(SCRIPT);
        if !script_path.exists() {
            return Ok(None);
        }
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let script = read(&script_path)?;
        let wasm = read(&dir.join(WASM))?;
        let mut all = digest::Context::new(&digest::SHA256);
        all.update(&script);
        all.update(&wasm);
        let short: String = all.finish().as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Some(Fields {
            version: format!("{package_version}-{short}"),
            script_integrity: sri(&script),
            script,
            wasm,
        }))
    }

    /// The version segment of the paths, e.g. `0.1.0-1a2b3c4d`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

fn sri(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA384, bytes);
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

#[derive(Clone)]
struct FieldsState {
    app: AppState,
    fields: Arc<Fields>,
}

/// The field routes, for the field documents the snippet directory holds.
pub fn routes(app: AppState, fields: Arc<Fields>) -> Router {
    Router::new()
        .route("/fields/{version}/{file}", get(serve))
        .with_state(FieldsState { app, fields })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "not found",
    )
        .into_response()
}

async fn serve(
    State(s): State<FieldsState>,
    UrlPath((version, file)): UrlPath<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let fields = &s.fields;
    if fields.version != version {
        return not_found();
    }
    if file == SCRIPT {
        return immutable(fields.script.clone(), "text/javascript; charset=utf-8");
    }
    if file == WASM {
        return immutable(fields.wasm.clone(), "application/wasm");
    }
    let Some((kind, title)) = file
        .strip_suffix(".html")
        .and_then(|k| KINDS.iter().find(|(kind, _)| *kind == k))
    else {
        return not_found();
    };
    // Exactly one `pk`: with two, the vault and the frame's script could each read another one,
    // and the document would carry one account's origins while sealing into the other's.
    let mut keys = query.iter().filter(|(name, _)| name == "pk");
    let (Some((_, pk)), None) = (keys.next(), keys.next()) else {
        return refused();
    };
    // Only a publishable key may name the account: a secret key in a URL would be a leak. It
    // lands in the document's `data-pk`, hence the plain alphabet.
    let principal = if pk.starts_with("pk_") && is_plain_key(pk) {
        s.app.authenticate(pk).await.ok().flatten()
    } else {
        None
    };
    let Some(principal) = principal.filter(|p| p.kind == KeyKind::Publishable) else {
        return refused();
    };
    let origins: Vec<&str> = principal
        .origins
        .iter()
        .map(String::as_str)
        .filter(|o| is_source_expression(o))
        .collect();
    if origins.is_empty() {
        return refused();
    }
    let body = document(fields, kind, title, pk, &origins.join(" "));
    let csp = format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
         style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        origins.join(" ")
    );
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    // The document names the account's origins, which may change: revalidate every time. The
    // script and wasm it loads are the immutable part.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// A key that is not a live publishable key: a page saying so, which no one may frame.
fn refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ),
        ],
        "unknown publishable key",
    )
        .into_response()
}

/// Whether a key can stand in an HTML attribute as it is (keys are `pk_test_` and base62).
fn is_plain_key(k: &str) -> bool {
    k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether an allowed-origin pattern (already normalised by `accounts`) can stand in a CSP
/// directive as it is: no spaces, quotes, semicolons or commas.
fn is_source_expression(o: &str) -> bool {
    !o.is_empty()
        && o.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/*[]".contains(&b))
}

fn immutable(bytes: Vec<u8>, content_type: &'static str) -> Response {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The field document: no inline script or style; the script builds the inputs. The allowed
/// origins ride along so that the script accepts messages from those origins only, and so does
/// the key the vault checked (`data-pk`): the script seals with that key, and a sibling frame
/// reads it from this document itself to tell whether it belongs to the same account. The wasm
/// is preloaded beside the script (the script's own fetch, in the same mode, reuses it and
/// checks its integrity).
fn document(fields: &Fields, kind: &str, title: &str, pk: &str, origins: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\" data-kind=\"{kind}\" data-pk=\"{pk}\" data-origins=\"{origins}\">\n<head>\n\
         <meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <link rel=\"preload\" href=\"/fields/{version}/{WASM}\" as=\"fetch\" crossorigin=\"anonymous\">\n\
         <script src=\"/fields/{version}/{SCRIPT}\" integrity=\"{integrity}\" crossorigin=\"anonymous\" defer></script>\n\
         </head>\n<body></body>\n</html>\n",
        version = fields.version,
        integrity = fields.script_integrity,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_patterns_reach_the_csp() {
        assert!(is_source_expression("http://127.0.0.1:*"));
        assert!(is_source_expression("https://shop.example"));
        assert!(is_source_expression("*"));
        assert!(!is_source_expression("https://a.example; script-src *"));
        assert!(!is_source_expression("'unsafe-inline'"));
        assert!(!is_source_expression(""));
    }

    #[test]
    fn only_plain_keys_reach_the_document() {
        assert!(is_plain_key("pk_test_6wtZGcp7HTcPkz6WuLXFVlxb"));
        assert!(!is_plain_key("pk_test_a\"onload=\"x"));
        assert!(!is_plain_key("pk_test_a b"));
    }
}
