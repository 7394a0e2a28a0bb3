//! `/healthz`, and what the API answers while storage is out of space: 503
//! `service_unavailable` with `Retry-After` instead of 500s, until writes work again (found by
//! the next write, or by a probe from `/healthz` or the upkeep), with no restart.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, OUT_OF_SPACE_RETRY_AFTER_SECS};

/// Whether the store can write: `false` while it is out of space. Asks the store to try a
/// write first if it was, so that space that came back is seen at once.
pub async fn writable(state: &AppState) -> bool {
    let store = state.store();
    if !store.out_of_space() {
        return true;
    }
    match store.probe_write().await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "write probe failed");
            false
        }
    }
}

/// `200 {"status":"ok"}`, or `503 {"status":"degraded","reason":"out_of_space"}` while
/// nothing can be stored. Always with the instance id, so that a probe behind a balancer can
/// tell instances apart.
#[utoipa::path(
    get, path = "/healthz", operation_id = "healthz", tag = "meta",
    responses(
        (status = 200, description = "The vault is up.", body = crate::api::schemas::Health),
        (status = 503, description = "Degraded: nothing can be stored now (`reason`).", body = crate::api::schemas::Health),
    ),
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let instance = state.metrics().instance_id();
    if writable(&state).await {
        Json(json!({ "status": "ok", "instance": instance })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "degraded", "reason": "out_of_space", "instance": instance })),
        )
            .into_response()
    }
}

/// Turns the 500s of failed writes into 503 `service_unavailable` with `Retry-After` while
/// the store is out of space: the request may well work later, and the client (cardseal's
/// own retries included) should retry rather than give up.
pub async fn unavailable_when_out_of_space(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let response = next.run(req).await;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && state.store().out_of_space() {
        return ApiError::unavailable(OUT_OF_SPACE_RETRY_AFTER_SECS).into_response();
    }
    response
}
