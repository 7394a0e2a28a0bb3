//! `GET /v1/events`: the account's audit log, newest first.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Auth, page_limit};
use crate::error::{ApiError, internal};
use crate::{AppState, store};

#[derive(Deserialize)]
pub(crate) struct ListParams {
    limit: Option<String>,
    starting_after: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    auth.require_secret("events_read")?;
    let limit = page_limit(params.limit.as_deref())?;
    let account = auth.0.account_id.clone();
    let mut events = store::read(state.store(), move |tx| {
        tx.events(&account, params.starting_after.as_deref(), limit + 1)
    })
    .await
    .map_err(internal("listing events failed"))?;
    let has_more = events.len() > limit;
    events.truncate(limit);
    // The stored canonical bodies are the objects; they are spliced in as they are.
    let mut body = String::from(r#"{"object":"list","url":"/v1/events","data":["#);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.body);
    }
    body.push_str(&format!(r#"],"has_more":{has_more}}}"#));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
