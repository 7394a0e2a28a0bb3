//! The HTTP API: routes, request ids and logs, authentication and CORS, and the extractors
//! and answers the handlers share. A handler extracts, calls [`crate::domain`] inside one
//! transaction, and answers; handlers never import each other.

mod cards;
mod charges;
mod detokenize;
mod events;
mod forward;
mod idempotency;
pub mod openapi;
mod raw_card;
mod recurring;
mod refunds;
pub(crate) mod schemas;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State,
};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::idempotency::{Kept, Replay};
use crate::accounts::origin_allowed;
use crate::domain::Work;
pub use crate::error::{ApiCode, ApiError, ErrorCode, REQUEST_ID};
use crate::store::{KeyKind, Tx};
use crate::{AppState, Principal, ids};

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("request-id");

/// The route templates, as metrics and logs name them (never the raw path).
const ROUTES: &[&str] = &[
    "/healthz",
    "/openapi.json",
    "/.well-known/jwks.json",
    "/v1/encryption_keys",
    "/v1/tokens",
    "/v1/tokens/{id}",
    "/v1/cards",
    "/v1/cards/{id}",
    "/v1/cards/{id}/cvc",
    "/v1/charges",
    "/v1/charges/{id}",
    "/v1/charges/{id}/capture",
    "/v1/refunds",
    "/v1/refunds/{id}",
    "/v1/detokenize",
    "/v1/events",
    "/v1/forward",
    "/v1/card",
    "/v1/card/{id}",
    "/js/{version}/{file}",
    "/fields/{version}/{file}",
    "/v1/recurring/charges",
    "/v1/recurring/charges/{id}",
    "/v1/recurring/charges/{id}/cancel",
];

pub(crate) fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(crate::health::healthz))
        .route("/openapi.json", get(openapi_json))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/encryption_keys", get(encryption_keys))
        .route("/v1/tokens", axum::routing::post(tokens::create))
        .route("/v1/tokens/{id}", get(tokens::retrieve))
        .route("/v1/cards", get(cards::list).post(cards::create))
        .route("/v1/cards/{id}", get(cards::retrieve).delete(cards::delete))
        .route("/v1/cards/{id}/cvc", axum::routing::post(cards::add_cvc))
        .route("/v1/charges", get(charges::list).post(charges::create))
        .route("/v1/charges/{id}", get(charges::retrieve))
        .route(
            "/v1/charges/{id}/capture",
            axum::routing::post(charges::capture),
        )
        .route("/v1/refunds", get(refunds::list).post(refunds::create))
        .route("/v1/refunds/{id}", get(refunds::retrieve))
        .route(
            "/v1/detokenize",
            axum::routing::post(detokenize::detokenize),
        )
        .route("/v1/events", get(events::list))
        .route("/v1/forward", axum::routing::post(forward::create))
        .route(
            "/v1/recurring/charges",
            get(recurring::list).post(recurring::create),
        )
        .route("/v1/recurring/charges/{id}", get(recurring::retrieve))
        .route(
            "/v1/recurring/charges/{id}/cancel",
            axum::routing::post(recurring::cancel),
        )
        .merge(raw_card::routes(&state))
        .with_state(state.clone());
    let routes = match &state.config().snippet {
        Some(snippet) => {
            let routes = routes.merge(crate::assets::routes(Arc::clone(snippet)));
            match snippet.fields() {
                Some(fields) => routes.merge(crate::fields::routes(state.clone(), fields)),
                None => routes,
            }
        }
        None => routes,
    };
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        // The one body limit: every reader of a body (the idempotency layer, [`JsonBody`])
        // buffers it through `Bytes`, which honours this.
        .layer(DefaultBodyLimit::max(state.config().body_limit))
        .layer(middleware::from_fn(publishable_scope))
        .layer(middleware::from_fn_with_state(state.clone(), limit_writes))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::health::unavailable_when_out_of_space,
        ))
        .layer(middleware::from_fn_with_state(state, observe))
}

/// The admin listener's routes. Metrics name routes, keys and refusal counts an outsider has no
/// business reading, so they are served only here, never on the public listener.
pub(crate) fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Outermost: gives each request an id (the `Request-Id` header and error bodies), logs one
/// line per request (id, method, route, status, latency; never a body or a query), and counts
/// it for `/metrics`.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = ids::new_id("req_");
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| ROUTES.iter().copied().find(|r| *r == p.as_str()))
        .unwrap_or("unmatched");
    // No span per request: the fmt subscriber formats and stores span fields on creation,
    // which cost as much as the line itself. The one line below carries the id, and errors
    // logged inside the request take it from `REQUEST_ID`.
    let mut response = REQUEST_ID.scope(request_id.clone(), next.run(req)).await;
    let elapsed = start.elapsed();
    let status = response.status();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let error_code = response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0.as_str());
    let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let status_code = status.as_u16();
    if status.is_server_error() {
        tracing::error!(%request_id, %method, route, status = status_code, latency_ms, error_code, "request");
    } else {
        tracing::info!(%request_id, %method, route, status = status_code, latency_ms, error_code, "request");
    }
    state
        .metrics()
        .request(method.as_str(), route, status.as_u16(), elapsed);
    response
}

const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key";
const EXPOSE_HEADERS: &str = "Request-Id, Retry-After";

fn allow_origin(response: &mut Response, origin: &HeaderValue) {
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Authenticates the API key, if any, and applies CORS.
///
/// Browsers send no credentials in a preflight, so preflights are answered for any origin;
/// the real request is then refused unless a publishable key's account allows the origin.
/// Secret keys get no CORS headers, so a browser can never read what they return. Nor do
/// requests without a key: no page needs to read those, and whatever they answer (health,
/// errors) is none of another origin's business. The public JWKS sets its own header.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let mut response = StatusCode::NO_CONTENT.into_response();
            allow_origin(&mut response, origin);
            let h = response.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            return response;
        }
    }
    // A refused key's error is readable from any origin, so that a page with a mistyped key
    // learns why: it reveals nothing. A request with no key gets no CORS at all.
    let mut cors = origin.is_some();
    let result = match api_key(req.headers()) {
        Err(e) => Err(e),
        Ok(None) => {
            cors = false;
            Ok(())
        }
        Ok(Some(key)) => match state.authenticate(&key).await {
            Ok(Some(principal)) => {
                if principal.kind == KeyKind::Publishable {
                    if let Some(o) = &origin {
                        // The vault's own pages (the hosted fields) may use any account's key.
                        let allowed = o.to_str().is_ok_and(|o| {
                            origin_allowed(o, &principal.origins)
                                || same_origin(o, req.headers(), state.config().public_url.as_ref())
                        });
                        if !allowed {
                            // The one echo of a request value: an origin is public, and naming
                            // the one seen is what tells a developer which to allow.
                            let seen = o.to_str().unwrap_or("(not ASCII)");
                            let refused = ApiError {
                                message: format!(
                                    "This publishable key cannot be used from the origin {seen}; add it to the account's allowed origins (`accounts update --allowed-origin`)."
                                )
                                .into(),
                                ..ApiError::permission(ApiCode::OriginNotAllowed, "")
                            };
                            return with_cors(refused.into_response(), origin.as_ref());
                        }
                    }
                } else {
                    cors = false;
                }
                req.extensions_mut().insert(principal);
                Ok(())
            }
            Ok(None) => Err(ApiError::authentication(
                ApiCode::InvalidApiKey,
                "Invalid API key.",
            )),
            Err(e) => Err(ApiError::store(&e)),
        },
    };
    let response = match result {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    if cors {
        with_cors(response, origin.as_ref())
    } else {
        response
    }
}

/// Counts writes against the per-key and per-IP limits before anything else runs (the
/// idempotency layer included, so a refused write leaves no record): every POST of a
/// publishable key, whatever its route, and token creation with a secret key.
async fn limit_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    let counted = req.method() == Method::POST
        && principal
            .as_ref()
            .is_some_and(|p| p.kind == KeyKind::Publishable || req.uri().path() == "/v1/tokens");
    let Some(principal) = principal.filter(|_| counted) else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let ClientIp(ip) = match ClientIp::from_request_parts(&mut parts, &state).await {
        Ok(ip) => ip,
        Err(e) => return e.into_response(),
    };
    let limited = state
        .key_limiter()
        .check(&principal.key_ref)
        .and_then(|()| {
            state
                .ip_limiter()
                .check(&crate::ratelimit::client_bucket(ip.as_deref()))
        });
    if let Err(wait) = limited {
        if parts.uri.path() == "/v1/tokens" {
            state.metrics().token_rejected("rate_limit");
        }
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// What a publishable key may call. It is public by design, so it is refused everywhere else
/// before anything runs: before the body is parsed and before any idempotency key is claimed.
const PUBLISHABLE_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/v1/encryption_keys"),
    (Method::POST, "/v1/tokens"),
];

async fn publishable_scope(req: Request, next: Next) -> Response {
    let refused = req
        .extensions()
        .get::<Arc<Principal>>()
        .is_some_and(|p| p.kind == KeyKind::Publishable)
        // An unknown route answers 404 whoever asks.
        && req.extensions().get::<MatchedPath>().is_some()
        && !matches!(
            req.uri().path(),
            "/healthz" | "/openapi.json" | "/.well-known/jwks.json"
        )
        && !PUBLISHABLE_ROUTES
            .iter()
            .any(|(m, p)| m == req.method() && *p == req.uri().path());
    if refused {
        return ApiError::permission(
            ApiCode::SecretKeyRequired,
            "This request needs a secret key; publishable keys may only create tokens and read keys.",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether `origin` is the vault's own: its configured public URL (`--public-url`), or without
/// one, the request's `Host`. A browser sets `Origin` itself, so a page elsewhere cannot claim
/// this. Behind a proxy the `Host` is the upstream address (nginx sends `proxy_pass`'s), so the
/// public URL is what the vault's own pages are recognized by; with it the `Host` is ignored.
fn same_origin(
    origin: &str,
    headers: &HeaderMap,
    public: Option<&crate::config::PublicUrl>,
) -> bool {
    if let Some(public) = public {
        return origin.eq_ignore_ascii_case(public.as_str());
    }
    let authority = origin.split_once("://").map(|(_, a)| a);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

fn with_cors(mut response: Response, origin: Option<&HeaderValue>) -> Response {
    if let Some(o) = origin {
        allow_origin(&mut response, o);
    }
    response
}

/// The key from `Authorization: Bearer KEY` or `Authorization: Basic base64(KEY:)`.
fn api_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let malformed = || {
        ApiError::authentication(
            ApiCode::InvalidApiKey,
            "Send the API key as `Authorization: Bearer KEY`.",
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| malformed())?;
        let text = String::from_utf8(decoded).map_err(|_| malformed())?;
        text.split(':').next().unwrap_or_default().to_owned()
    } else {
        return Err(malformed());
    };
    if key.is_empty() || key.len() > 128 {
        return Err(malformed());
    }
    Ok(Some(key))
}

/// The authenticated caller.
pub(crate) struct Auth(pub Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| {
                ApiError::authentication(
                    ApiCode::ApiKeyRequired,
                    "An API key is required: send `Authorization: Bearer KEY`.",
                )
            })
    }
}

impl Auth {
    /// Refuses publishable keys.
    pub(crate) fn require_secret(&self, scope: &str) -> Result<(), ApiError> {
        match self.0.kind {
            KeyKind::Secret => Ok(()),
            KeyKind::Restricted if self.0.scopes.iter().any(|s| s == scope) => Ok(()),
            KeyKind::Restricted => Err(ApiError::permission(
                ApiCode::InsufficientScope,
                "This restricted key lacks the scope for this request.",
            )),
            KeyKind::Publishable => Err(ApiError::permission(
                ApiCode::SecretKeyRequired,
                "This request needs a secret key; publishable keys may only create tokens and read keys.",
            )),
        }
    }
}

/// The client's IP: the socket peer, or the last `X-Forwarded-For` hop behind a trusted proxy.
pub(crate) struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config().trust_forwarded_for {
            // The last hop is the one our proxy added; earlier ones are the client's word.
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok());
            if let Some(ip) = forwarded {
                return Ok(ClientIp(Some(ip.to_string())));
            }
        }
        // Through the extractor, so that tests' `MockConnectInfo` works too.
        let peer = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .ok();
        Ok(ClientIp(peer.map(|c| c.0.ip().to_string())))
    }
}

/// The request's body, within the one body limit.
pub(crate) async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.config().body_limit)
        } else {
            ApiError::invalid_request(ApiCode::InvalidBody, "The request body could not be read.")
        }
    })
}

/// A request body of at most the configured size: JSON, or Stripe's form encoding
/// (`application/x-www-form-urlencoded` with bracket notation: `card[number]=…`,
/// `metadata[order]=…`, `expand[]=…`, `items[0][x]=…`), which the Stripe client libraries
/// send. Both reach the handler as the same `T`, so the same checks and errors apply. Parse
/// errors never echo the input.
pub(crate) struct JsonBody<T>(pub T);

/// How deep a form's brackets may nest (`a[b][c][d]`): deeper than any documented body, and a
/// bound on the work one request can cause.
const FORM_DEPTH: usize = 5;

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let bytes = body_bytes(req, state).await?;
        if form {
            return parse_form(&bytes).map(JsonBody).map_err(|()| {
                ApiError::invalid_request(
                    ApiCode::InvalidBody,
                    "The form body must be of the documented shape, each name once, brackets balanced (`card[number]=…`).",
                )
            });
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|_| {
            ApiError::invalid_request(
                ApiCode::InvalidBody,
                "The request body must be a JSON object of the documented shape.",
            )
        })
    }
}

/// A body that may be empty (`POST /v1/charges/{id}/capture` with no parameters, as the Stripe
/// libraries send it): `None` then, else what [`JsonBody`] reads.
pub(crate) struct OptionalBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = body_bytes(Request::from_parts(parts.clone(), body), state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        JsonBody::from_request(req, state)
            .await
            .map(|JsonBody(b)| OptionalBody(Some(b)))
    }
}

/// The one reading of Stripe's bracket notation, for bodies and query strings alike.
/// `use_form_encoding` so that brackets sent percent-encoded (`card%5Bnumber%5D`, as
/// stripe-python sends them) are brackets; a repeated scalar is an error, as a repeated JSON
/// field is.
fn form_config() -> serde_qs::Config {
    serde_qs::Config::new()
        .max_depth(FORM_DEPTH)
        .use_form_encoding(true)
        .duplicate_key_behavior(serde_qs::DuplicateKeyBehavior::Error)
}

thread_local! {
    /// Set while [`parse_form`] deserializes, for [`form_scalar`].
    static IN_FORM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Parses a form (or query string) in Stripe's bracket notation.
pub(crate) fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ()> {
    if !brackets_well_formed(bytes) {
        return Err(());
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_FORM.with(|f| f.set(false));
        }
    }
    IN_FORM.with(|f| f.set(true));
    let _reset = Reset;
    form_config().deserialize_bytes(bytes).map_err(drop)
}

/// For a field the handler checks itself (`#[serde(default, deserialize_with = …)]` on an
/// `Option<serde_json::Value>`, such as an amount): a form sends every value as text, so there
/// an integer's digits (`1999`, `-5`) become the JSON number and `true`/`false` the boolean
/// they stand for, and the handler's one check (and its `parameter_invalid`) applies to both
/// encodings. In a JSON body, `"1999"` stays a string, which the check refuses.
pub(crate) fn form_scalar<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    use serde::Deserialize;
    use serde_json::Value;
    let v = Option::<Value>::deserialize(d)?;
    if !IN_FORM.with(std::cell::Cell::get) {
        return Ok(v);
    }
    Ok(v.map(|v| match v {
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(&s);
            let integer = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            match s.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ if integer => s.parse::<i64>().map_or(Value::String(s), Value::from),
                _ => Value::String(s),
            }
        }
        other => other,
    }))
}

/// Whether every name is `word` followed by bracketed segments (`a`, `a[b]`, `a[]`, `a[0][b]`),
/// at most [`FORM_DEPTH`] deep. serde_qs takes a stray bracket (`card]number`, or `a[b]c`
/// past its depth) as part of a plain name, which a struct then ignores as an unknown field: a
/// merchant's typo would pass silently. (Checked on the raw bytes: a name's brackets may be
/// percent-encoded, `%5B` and `%5D`, and nothing else decodes to one.)
fn brackets_well_formed(bytes: &[u8]) -> bool {
    bytes
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .all(|pair| {
            let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
            // The name as `[`, `]` and `x` (any other byte).
            let mut tokens = Vec::with_capacity(name.len());
            let mut i = 0;
            while let Some(&b) = name.get(i) {
                let escaped = name.get(i + 1..i + 3).filter(|_| b == b'%');
                let (token, width) = match escaped {
                    Some(h) if h.eq_ignore_ascii_case(b"5b") => (b'[', 3),
                    Some(h) if h.eq_ignore_ascii_case(b"5d") => (b']', 3),
                    _ if b == b'[' || b == b']' => (b, 1),
                    _ => (b'x', 1),
                };
                tokens.push(token);
                i += width;
            }
            let head = tokens
                .iter()
                .position(|t| *t == b'[')
                .unwrap_or(tokens.len());
            if head == 0 || tokens[..head].contains(&b']') {
                return false;
            }
            let (mut depth, mut open) = (0, false);
            for t in &tokens[head..] {
                match (*t, open) {
                    (b'[', false) => {
                        open = true;
                        depth += 1;
                    }
                    (b']', true) => open = false,
                    (b'x', true) => {}
                    _ => return false,
                }
            }
            !open && depth <= FORM_DEPTH
        })
}

/// A query string of the documented shape, in the same bracket notation as form bodies
/// (`created[gte]=…`). axum's own `Query` answers a malformed one (a repeated `limit`, say) in
/// plain text, and knows no brackets; this answers the JSON error every client parses.
pub(crate) struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        parse_form(query.as_bytes()).map(QueryParams).map_err(|()| {
            ApiError::invalid_request(
                ApiCode::ParameterInvalid,
                "The query string must hold each documented parameter at most once.",
            )
        })
    }
}

/// 400 `parameter_missing`.
pub(crate) fn missing(param: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid_request(ApiCode::ParameterMissing, message).param(param)
}

/// 400 `parameter_invalid`.
pub(crate) fn invalid(param: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid_request(ApiCode::ParameterInvalid, message).param(param)
}

/// Checks a page size: 1 to 100, default 10.
pub(crate) fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(10),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| invalid("limit", "limit must be between 1 and 100.")),
    }
}

/// A page of a list, members in Stripe's order.
#[derive(Serialize)]
pub(crate) struct List<T> {
    pub object: &'static str,
    pub url: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
}

/// Keeps `text` as the idempotent replay of the request, in the transaction of its effect, when
/// the request has an `Idempotency-Key`.
pub(crate) fn keep(tx: &dyn Tx, replay: Option<&Replay>, text: &str) -> Work<()> {
    if let Some(r) = replay {
        r.keep(tx, text.as_bytes())?;
    }
    Ok(())
}

/// A JSON body already serialized (so that a replay copy is byte for byte the answer);
/// `kept` when the handler kept that copy with its effect.
pub(crate) fn json_response(text: String, kept: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    if kept {
        response.extensions_mut().insert(Kept);
    }
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render_with(&state.store().pool_stats()),
    )
        .into_response()
}

fn jwks_response(state: &AppState) -> Response {
    let body = state
        .keys()
        .jwks(state.now(), state.config().key_grace_secs);
    // Short enough that a rotation reaches browsers well within the grace period.
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body)).into_response()
}

/// The same public document for everyone, without credentials: any page may read it (the
/// browser tests and pages given `vaultKey` from it do), so `*` rather than an echoed origin.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", operation_id = "jwks", tag = "keys",
    responses((status = 200, description = "The JWKS: the active key (last) and the keys still in their grace period.", body = schemas::Jwks)),
)]
async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = jwks_response(&state);
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The JWKS, for a publishable key.
#[utoipa::path(
    get, path = "/v1/encryption_keys", operation_id = "encryptionKeys", tag = "keys",
    responses((status = 200, description = "The JWKS.", body = schemas::Jwks)),
    security(("pk" = []), ("sk" = [])),
)]
async fn encryption_keys(State(state): State<AppState>, _auth: Auth) -> Response {
    jwks_response(&state)
}

/// This contract, public like the JWKS.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        openapi::json(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError {
        message: "Unrecognized request URL.".into(),
        ..ApiError::not_found(None)
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        ..ApiError::invalid_request(
            ApiCode::MethodNotAllowed,
            "This method is not allowed on this URL.",
        )
    }
}
