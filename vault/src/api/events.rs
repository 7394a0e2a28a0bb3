//! `GET /v1/events`: the account's audit log, newest first.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Auth, QueryParams, page_limit};
use crate::error::{ApiError, internal};
use crate::{AppState, store};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// 1 to 100, default 10.
    #[param(value_type = Option<u8>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// An `evt_…` id: the page after it.
    starting_after: Option<String>,
}

/// An audit event, as stored (its canonical JSON is what the audit chain covers).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used: the bodies are spliced in as stored.
pub(crate) struct Event {
    /// `evt_…`.
    id: String,
    #[schema(pattern = "^event$")]
    object: String,
    /// `acct_…`.
    account: String,
    /// `token.created`, `token.used`, `card.created`, `card.cvc_added`, `charge.succeeded`, …
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    /// The ids the event concerns; never card data.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// A page of events.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub(crate) struct EventList {
    #[schema(pattern = "^list$")]
    object: String,
    #[schema(pattern = "^/v1/events$")]
    url: String,
    data: Vec<Event>,
    has_more: bool,
}

/// The account's audit log, newest first.
#[utoipa::path(
    get, path = "/v1/events", operation_id = "listEvents", tag = "events",
    params(ListParams),
    responses(
        (status = 200, description = "A page of events.", body = EventList),
        (status = 400, response = super::schemas::BadRequest),
    ),
    security(("sk" = []), ("rk" = ["events_read"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(params): QueryParams<ListParams>,
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
