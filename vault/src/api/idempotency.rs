//! `Idempotency-Key` on every POST, as Stripe defines it.
//!
//! Keys are scoped to the API key that sent them. The first request with a key runs and its
//! successful response is kept for 24 hours; the same key with the same method, path and body replays that response (with
//! `Idempotent-Replayed: true`) without running anything, so a retried `POST /v1/tokens` gets
//! the same token before any decryption happens. The same key with another request is
//! `idempotency_key_mismatch`; a duplicate that arrives while the first still runs is 409
//! `idempotency_key_in_use`. A request refused before it ran (authentication, scope, rate
//! limit, size, validation) is not kept, so the key stays free for the real request. `POST /v1/detokenize` is never kept: its answer holds a card number.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::crypto::sha256;
use crate::error::{ApiCode, ApiError, ErrorCode, internal};
use crate::store::{self, Claim, StoreResult, Tx};
use crate::{AppState, Principal};

/// How long a kept response is replayed.
const KEEP_SECS: i64 = 24 * 3600;

/// After this long in flight, a key's first request is presumed dead and the key is free.
/// A forward holds its key longer: see [`lock_secs`].
const LOCK_SECS: i64 = 60;

/// How long a request holds its key. A forward may wait on the processor for the whole of
/// `--forward-timeout`; were the claim to lapse first, a retry with the same key would send the
/// card to the processor a second time. So a forward's claim lasts its own deadline and the
/// ordinary margin after it (for the lookup before and the recording after).
fn lock_secs(state: &AppState, path: &str) -> i64 {
    if path == "/v1/forward" {
        let timeout = state.config().forward.timeout;
        let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
        // Whole seconds, rounded up: the claim must not lapse a fraction before the deadline.
        let secs = secs.saturating_add(i64::from(timeout.subsec_nanos() > 0));
        LOCK_SECS.saturating_add(secs)
    } else {
        LOCK_SECS
    }
}

/// Longest key accepted (Stripe's limit).
const MAX_KEY_LEN: usize = 255;

/// Largest response body kept for replay; larger ones are answered but not kept.
const MAX_KEPT_BODY: usize = 64 * 1024;

/// Handed to the handler: lets it keep its success response in the transaction of its effect,
/// so that no crash can leave the effect committed and the key without its replay.
#[derive(Clone, Debug)]
pub(crate) struct Replay {
    account: String,
    key_hash: [u8; 32],
    now: i64,
}

impl Replay {
    /// Keeps `body` as the key's 200 response, inside the caller's transaction.
    pub(crate) fn keep(&self, tx: &dyn Tx, body: &[u8]) -> StoreResult<()> {
        tx.finish_key(
            &self.account,
            &self.key_hash,
            200,
            body,
            self.now + KEEP_SECS,
        )
    }
}

/// On a response whose replay copy the handler kept with its effect.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kept;

fn mismatch() -> ApiError {
    ApiError {
        kind: "idempotency_error",
        ..ApiError::invalid_request(
            ApiCode::IdempotencyKeyMismatch,
            "This Idempotency-Key was already used with a different request; use a new key for a new request.",
        )
    }
}

pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // An unknown route never runs, so its key is not claimed.
    if req.method() != Method::POST
        || req.uri().path() == "/v1/detokenize"
        || req.extensions().get::<MatchedPath>().is_none()
    {
        return next.run(req).await;
    }
    let (Some(key), Some(principal)) = (
        req.headers().get("idempotency-key").cloned(),
        req.extensions().get::<Arc<Principal>>().cloned(),
    ) else {
        return next.run(req).await;
    };

    match run(&state, key, principal, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(
    state: &AppState,
    key: HeaderValue,
    principal: Arc<Principal>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid_request(
            ApiCode::ParameterInvalid,
            "Idempotency-Key must be 1 to 255 characters.",
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = super::body_bytes(Request::from_parts(parts.clone(), body), state).await?;
    let mut request = Vec::with_capacity(bytes.len() + 64);
    request.extend_from_slice(parts.method.as_str().as_bytes());
    request.push(b' ');
    request.extend_from_slice(parts.uri.path().as_bytes());
    request.push(b'\n');
    request.extend_from_slice(&bytes);
    // Keyed: a raw-card request's body holds a card number, which a plain hash would expose
    // to a brute-force search.
    let request_hash = principal.keys.keyed_digest("idempotency-request", &request);
    drop(request);
    // Scoped to the API key that sent it: another key of the account (a publishable key is
    // public) can neither read this key's answer nor block it.
    let mut scoped = Vec::with_capacity(principal.key_ref.len() + 1 + key.len());
    scoped.extend_from_slice(principal.key_ref.as_bytes());
    scoped.push(b'\n');
    scoped.extend_from_slice(key.as_bytes());
    let key_hash = sha256(&scoped);
    let account = principal.account_id.clone();
    let now = state.now();

    let acct = account.clone();
    let lock = lock_secs(state, parts.uri.path());
    let claim = store::write(state.store(), move |tx| {
        tx.claim_key(&acct, &key_hash, &request_hash, now, lock)
    })
    .await
    .map_err(internal("claiming an idempotency key failed"))?;
    match claim {
        Claim::Done { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::InFlight => {
            return Err(ApiError::conflict(
                ApiCode::IdempotencyKeyInUse,
                "A request with this Idempotency-Key is still running; retry after it finishes.",
            ));
        }
        Claim::Mismatch => return Err(mismatch()),
        Claim::Fresh => {}
    }

    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(Replay {
        account: account.clone(),
        key_hash,
        now,
    });
    let response = next.run(req).await;
    let status = response.status();
    let (parts, body) = response.into_parts();
    if parts.extensions.get::<Kept>().is_some() {
        return Ok(Response::from_parts(parts, body));
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            release(state, account, key_hash).await;
            return Err(internal("reading a response failed")(e));
        }
    };
    let code = parts.extensions.get::<ErrorCode>().map(|c| c.0);
    if !ran(status, code) || body.len() > MAX_KEPT_BODY {
        release(state, account, key_hash).await;
    } else {
        let kept = body.to_vec();
        let code = status.as_u16();
        let done = store::write(state.store(), move |tx| {
            tx.finish_key(&account, &key_hash, code, &kept, now + KEEP_SECS)
        })
        .await;
        if let Err(e) = done {
            // The request's effect is committed; only the replay copy is missing. The lock
            // lapses, and a retry then runs again (a token retry gets `replayed_request`).
            internal("keeping an idempotent response failed")(e);
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Whether a response is the outcome of a request that ran, and so is kept for the key.
/// A request refused before it ran is not (the key stays free for the real request): an
/// authentication or permission refusal, a rate limit, a body too large or unreadable, a
/// parameter that fails validation. Nor is a failure to retry (5xx). As Stripe does.
fn ran(status: StatusCode, code: Option<ApiCode>) -> bool {
    if status.is_success() {
        return true;
    }
    if status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::TOO_MANY_REQUESTS
        )
    {
        // A 404 for an id that does not exist is an answer, but one a retry gets again.
        return false;
    }
    !matches!(
        code,
        None | Some(ApiCode::InvalidBody | ApiCode::ParameterMissing | ApiCode::ParameterInvalid)
    )
}

async fn release(state: &AppState, account: String, key_hash: [u8; 32]) {
    let released = store::write(state.store(), move |tx| tx.release_key(&account, &key_hash)).await;
    if let Err(e) = released {
        internal("releasing an idempotency key failed")(e);
    }
}
