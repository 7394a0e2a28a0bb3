//! The cardseal snippet and its wasm, served at versioned, cacheable paths so a merchant page can
//! load them straight from the vault: `GET /js/{version}-{hash}/cardseal.js` and
//! `GET /js/{version}-{hash}/cardseal_bg.wasm`. The version is the package version plus a hash of the
//! files, so a path never changes meaning and may be cached for a year.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;

/// One served file.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
    integrity: String,
}

/// The snippet files, loaded once at start.
#[derive(Debug)]
pub struct Assets {
    version: String,
    files: Vec<Asset>,
    fields: Option<Arc<crate::fields::Fields>>,
}

const FILES: [(&str, &str); 2] = [
    ("cardseal.js", "text/javascript; charset=utf-8"),
    ("cardseal_bg.wasm", "application/wasm"),
];

/// Served when the build made it: the small merchant-side script of hosted fields, which loads
/// no wasm (the field documents do).
const OPTIONAL: [(&str, &str); 1] = [("cardseal-fields.js", "text/javascript; charset=utf-8")];

fn sri(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA384, bytes);
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

impl Assets {
    /// Loads `cardseal.js` and `cardseal_bg.wasm` from `dir` (the build's `pkg/snippet/`);
    /// `package_version` is the npm package's version.
    pub fn load(dir: &Path, package_version: &str) -> Result<Assets, String> {
        let mut files = Vec::new();
        let mut all = digest::Context::new(&digest::SHA256);
        let optional = OPTIONAL
            .into_iter()
            .filter(|(name, _)| dir.join(name).exists());
        for (name, content_type) in FILES.into_iter().chain(optional) {
            let path = dir.join(name);
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            all.update(&bytes);
            files.push(Asset {
                name,
                content_type,
                integrity: sri(&bytes),
                bytes,
            });
        }
        let hash = all.finish();
        let short: String = hash.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Assets {
            version: format!("{package_version}-{short}"),
            files,
            fields: crate::fields::Fields::load(dir, package_version)?.map(Arc::new),
        })
    }

    /// The URL path of a file, e.g. `/js/0.1.0-1a2b3c4d/cardseal.js`.
    pub fn path(&self, name: &str) -> String {
        format!("/js/{}/{name}", self.version)
    }

    /// The `integrity` value of a file.
    pub fn integrity(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.integrity.as_str())
    }

    /// The version segment of the paths.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The hosted fields' documents, when the directory holds their script.
    pub fn fields(&self) -> Option<Arc<crate::fields::Fields>> {
        self.fields.clone()
    }
}

/// The routes serving the snippet files. Responses are public, immutable for a year, and
/// readable cross-origin (a `crossorigin` script tag with `integrity=` needs CORS).
pub fn routes(assets: Arc<Assets>) -> Router {
    Router::new()
        .route("/js/{version}/{file}", get(serve))
        .with_state(assets)
}

async fn serve(
    State(assets): State<Arc<Assets>>,
    UrlPath((version, file)): UrlPath<(String, String)>,
) -> Response {
    let found = assets
        .files
        .iter()
        .find(|f| f.name == file)
        .filter(|_| version == assets.version);
    let Some(asset) = found else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            "not found",
        )
            .into_response();
    };
    let mut res = asset.bytes.clone().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
