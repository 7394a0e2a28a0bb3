//! `POST /v1/forward`: one HTTPS request to the merchant's processor with the card filled in.
//! What makes it safe, the order of its steps, is in [`crate::domain::forward`].

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Auth, JsonBody, Replay, invalid, json_response, keep, missing};
use crate::domain::charge::ChargeSource;
use crate::domain::forward::{self, NewForward};
use crate::error::{ApiCode, ApiError, ErrorCode};
use crate::forward::client;
use crate::forward::destination;
use crate::forward::template::Template;
use crate::processor::Interaction;
use crate::{AppState, ids};

#[derive(Deserialize, ToSchema)]
pub(crate) struct ForwardBody {
    /// A card token (`tok_…`, used up) or a saved card (`card_…`).
    source: Option<String>,
    /// The processor's `https` URL; its host must be on the account's forward allow-list.
    destination: Option<String>,
    /// `POST` (default), `PUT`, `PATCH`, `GET` or `DELETE`.
    method: Option<String>,
    /// Request headers for the processor (no placeholders); `Content-Type` picks the escaping.
    headers: Option<BTreeMap<String, String>>,
    /// The body, with `{{card.number}}`, `{{card.exp_month}}`, `{{card.exp_year}}`,
    /// `{{card.exp_year2}}`, `{{card.cvc}}` and `{{card.name}}` filled in.
    body: Option<String>,
    /// As for charges; a merchant-initiated one never fills a CVC.
    interaction: Option<String>,
}

/// The processor's answer, masked.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ForwardAnswer {
    /// The processor's HTTP status.
    status: u16,
    /// The allow-listed response headers.
    headers: BTreeMap<String, String>,
    /// The body, with any card number in it masked.
    body: String,
}

fn check(body: ForwardBody) -> Result<NewForward, ApiError> {
    let source = body.source.ok_or_else(|| {
        missing(
            "source",
            "Send `source`: a card token (tok_…) or a saved card (card_…).",
        )
    })?;
    let source = ChargeSource::parse(&source)
        .filter(|s| ids::is_id(s.id(), "tok_") || ids::is_id(s.id(), "card_"))
        .ok_or_else(|| ApiError::not_found(Some("source")))?;
    let destination = destination::parse(&body.destination.ok_or_else(|| {
        missing(
            "destination",
            "Send `destination`: the processor's https URL.",
        )
    })?)?;
    let method = match body.method.as_deref().unwrap_or("POST") {
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "GET" => Method::GET,
        "DELETE" => Method::DELETE,
        _ => {
            return Err(invalid(
                "method",
                "method must be POST, PUT, PATCH, GET or DELETE.",
            ));
        }
    };
    let headers: Vec<(String, String)> = body.headers.unwrap_or_default().into_iter().collect();
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    let template = Template::parse(body.body.as_deref().unwrap_or_default(), content_type)?;
    let headers = client::check_headers(&headers)?;
    let interaction = match body.interaction.as_deref() {
        None => Interaction::OneTime,
        Some(s) => Interaction::parse(s).ok_or_else(|| {
            invalid(
                "interaction",
                "interaction must be ONE_TIME, SETUP_COF_ONSESSION, SETUP_COF_RECURRING, SETUP_COF_UNSCHEDULED, COF_ONSESSION, COF_RECURRING or COF_UNSCHEDULED.",
            )
        })?,
    };
    Ok(NewForward {
        source,
        destination,
        method,
        headers,
        template,
        interaction,
    })
}

#[utoipa::path(
    post, path = "/v1/forward", operation_id = "forwardCard", tag = "forward",
    request_body = ForwardBody,
    responses(
        (status = 200, description = "The processor's answer, whatever its status.", body = ForwardAnswer),
        (status = 402, response = super::schemas::CardError),
        (status = 404, response = super::schemas::NotFound),
        (status = 502, response = super::schemas::BadGateway),
        (status = 504, response = super::schemas::GatewayTimeout),
    ),
    security(("sk" = []), ("rk" = ["forward"])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    replay: Option<Extension<Replay>>,
    JsonBody(body): JsonBody<ForwardBody>,
) -> Result<Response, ApiError> {
    auth.require_secret("forward")?;
    // Per key, as token creation: a forward is a use of a card, which card testing abuses.
    state
        .key_limiter()
        .check(&auth.0.key_ref)
        .map_err(ApiError::rate_limited)?;
    let f = check(body)?;
    let sent = forward::forward(&state, auth.0, f, move |tx, text| {
        keep(tx, replay.as_deref(), text)?;
        Ok(replay.is_some())
    })
    .await?;
    let unreadable = sent.status != StatusCode::OK;
    let mut response = json_response(sent.text, sent.kept);
    if unreadable {
        *response.status_mut() = sent.status;
        response
            .extensions_mut()
            .insert(ErrorCode(ApiCode::ForwardResponseUnreadable));
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
