//! `POST /v1/forward`: one HTTPS request to the merchant's processor with the card filled in.
//!
//! The order is what makes it safe (see `crate::forward` for the outbound pieces):
//! 1. Everything that can be refused is refused first, with nothing used and nothing sent:
//!    the key and its scope, the rate limit, the body's placeholders, the destination and its
//!    allow-list, the DNS answer, the connection and the TLS handshake.
//! 2. The card is used, in one committed transaction: a token is consumed (its sealed card
//!    destroyed), a stored CVC taken and deleted, `token.used` written. A CVC asked for and
//!    not there rolls it all back (402 `cvc_unavailable`).
//! 3. Only then does the request leave: the token cannot be forwarded twice, however the call
//!    ends. The processor is never called inside a database transaction.
//! 4. The answer is masked, then `card.forwarded` and the idempotent replay copy are written
//!    in one transaction.
//!
//! A crash between 3 and 4 leaves the card used and no kept answer: the key's claim lapses,
//! and a retry with the same `Idempotency-Key` gets `token_already_used` for a token (or, for
//! a saved card, sends again, without the CVC that was used). The merchant then reconciles
//! with the processor, for which it should send the processor's own idempotency key in
//! `headers`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::{Instant, timeout_at};

use super::cards::{TxResult, card_key, event, open_card, open_cvc, tx_error, use_token};
use super::idempotency::{Kept, Replay};
use super::{ApiError, Auth, JsonBody, REQUEST_ID, internal};
use crate::forward::client::{self, Upstream};
use crate::forward::destination::{self, Destination};
use crate::forward::mask::mask;
use crate::forward::template::{CardFields, Field, Template};
use crate::processor::Interaction;
use crate::store::TokenType;
use crate::store::ledger::{self, TxError};
use crate::{AppState, Principal, ids};

#[derive(Deserialize)]
pub(crate) struct ForwardBody {
    source: Option<String>,
    destination: Option<String>,
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    interaction: Option<String>,
}

struct Checked {
    source: String,
    dest: Destination,
    method: Method,
    headers: Vec<(axum::http::HeaderName, HeaderValue)>,
    template: Template,
    interaction: Interaction,
}

/// The answer: the processor's status, allow-listed headers and body, masked.
#[derive(Serialize)]
struct Forwarded {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

fn missing(param: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid_request("parameter_missing", message).param(param)
}

fn cvc_unavailable() -> ApiError {
    ApiError::card(
        "cvc_unavailable",
        "body",
        "The body asks for {{card.cvc}} but no CVC is available: a saved card's CVC is used once (re-add one with POST /v1/cards/{id}/cvc), and a merchant-initiated interaction never sends one.",
    )
}

fn check(body: ForwardBody) -> Result<Checked, ApiError> {
    let source = body.source.ok_or_else(|| {
        missing(
            "source",
            "Send `source`: a card token (tok_…) or a saved card (card_…).",
        )
    })?;
    if !ids::is_id(&source, "tok_") && !ids::is_id(&source, "card_") {
        return Err(ApiError::not_found(Some("source")));
    }
    let dest = destination::parse(&body.destination.ok_or_else(|| {
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
            return Err(ApiError::invalid_request(
                "parameter_invalid",
                "method must be POST, PUT, PATCH, GET or DELETE.",
            )
            .param("method"));
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
            ApiError::invalid_request(
                "parameter_invalid",
                "interaction must be ONE_TIME, SETUP_COF_ONSESSION, SETUP_COF_RECURRING, SETUP_COF_UNSCHEDULED, COF_ONSESSION, COF_RECURRING or COF_UNSCHEDULED.",
            )
            .param("interaction")
        })?,
    };
    Ok(Checked {
        source,
        dest,
        method,
        headers,
        template,
        interaction,
    })
}

/// The card, once used.
struct Used {
    fields: CardFields,
    token_id: Option<String>,
}

/// Turns `source` into card data and uses it, in one committed transaction: a token is
/// consumed (its sealed card destroyed with it), a saved card's stored CVC taken when `cvc`
/// is asked for. No CVC where one is asked for rolls everything back.
///
/// The one place that knows what a source is: the domain's `ChargeSource::resolve()` takes
/// its place.
async fn use_source(
    state: &AppState,
    principal: Arc<Principal>,
    source: String,
    cvc: bool,
    used_for: String,
) -> Result<Used, ApiError> {
    let now = state.now();
    ledger::write(state.store(), move |tx| -> TxResult<Used> {
        let acct = principal.account_id.clone();
        let gone = || TxError::Abort(ApiError::not_found(Some("source")));
        let (mut data, summary, token_id, cvc_value) = if source.starts_with("card_") {
            let card = tx.card(&acct, &source)?.ok_or_else(gone)?;
            let key = card_key(&principal, &card)?;
            let data = open_card(&principal, &card, &key)?;
            let cvc_value = if cvc {
                match tx.take_cvc(&acct, &card.id, now)? {
                    Some(blob) => Some(open_cvc(&acct, &card.id, &key, &blob)?),
                    None => return Err(TxError::Abort(cvc_unavailable())),
                }
            } else {
                None
            };
            (data, card.summary, None, cvc_value)
        } else {
            let (token, mut data) =
                use_token(tx, &principal, &source, TokenType::Card, "source", now)?;
            let summary = token.card.clone().ok_or_else(gone)?;
            let cvc_value = if cvc {
                Some(data.cvc.take().ok_or(TxError::Abort(cvc_unavailable()))?)
            } else {
                None
            };
            tx.append_event(&event(
                &acct,
                "token.used",
                json!({"token": token.id, "used_for": used_for}),
                now,
            ))?;
            (data, summary, Some(token.id), cvc_value)
        };
        let number = data.number.take().ok_or_else(gone)?;
        Ok(Used {
            fields: CardFields {
                number,
                exp_month: summary.exp_month,
                exp_year: summary.exp_year,
                cvc: cvc_value,
                name: data.name.take(),
            },
            token_id,
        })
    })
    .await
    .map_err(tx_error("using the card for a forward failed"))
}

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
    let c = check(body)?;
    let settings = state.config().forward.clone();
    let deadline = Instant::now() + settings.timeout;
    let principal = Arc::clone(&auth.0);
    let hosts = state
        .store()
        .forward_hosts(&principal.account_id)
        .await
        .map_err(internal("reading the forward hosts failed"))?;
    if !destination::allowed(&c.dest, &hosts) {
        return Err(destination::not_allowed(
            "The destination's host is not on the account's forward allow-list (accounts update --forward-host).",
        ));
    }
    let wants_cvc = c.template.uses(Field::Cvc);
    if wants_cvc && c.interaction.is_merchant_initiated() {
        return Err(cvc_unavailable());
    }
    let conn = timeout_at(deadline, async {
        let addrs = destination::resolve(&c.dest, settings.allow_private).await?;
        client::connect(&settings, &c.dest, &addrs).await
    })
    .await
    .map_err(|_| client::timed_out())??;

    let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
    let used = use_source(
        &state,
        Arc::clone(&principal),
        c.source.clone(),
        wants_cvc,
        request_id.clone(),
    )
    .await?;
    let filled = c.template.fill(&used.fields);
    let result = timeout_at(
        deadline,
        client::send(&settings, conn, &c.dest, c.method, c.headers, filled),
    )
    .await
    .unwrap_or_else(|_| Err(client::timed_out()));

    let number = used.fields.number.expose();
    let cvc = used.fields.cvc.as_ref().map(|s| s.expose());
    let answer = result.map(
        |Upstream {
             status,
             headers,
             mut body,
         }| {
            mask(&mut body, Some(number), cvc);
            Forwarded {
                status,
                headers: headers
                    .into_iter()
                    .map(|(name, mut value)| {
                        mask(&mut value, Some(number), cvc);
                        (name, String::from_utf8_lossy(&value).into_owned())
                    })
                    .collect(),
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        },
    );
    let status = answer.as_ref().ok().map(|a| a.status);
    let error = answer.as_ref().err().map(|e| e.code);
    let text = match &answer {
        Ok(a) => Some(serde_json::to_string(a).map_err(internal("serializing a forward failed"))?),
        Err(_) => None,
    };
    let kept = replay.is_some() && text.is_some();
    let now = state.now();
    let acct = principal.account_id.clone();
    let to_keep = text.clone();
    let recorded = ledger::write(state.store(), move |tx| -> TxResult<()> {
        // The host, the outcome and the request: never the path, the headers or the body,
        // which may hold the merchant's processor key or the card.
        tx.append_event(&event(
            &acct,
            "card.forwarded",
            json!({
                "source": c.source, "token": used.token_id, "host": c.dest.host,
                "status": status, "error": error, "cvc_used": wants_cvc,
                "request_id": request_id,
            }),
            now,
        ))?;
        if let (Some(Extension(r)), Some(text)) = (&replay, &to_keep) {
            r.keep(tx, text.as_bytes())?;
        }
        Ok(())
    })
    .await;
    // Kept only if the replay copy committed; else the idempotency layer keeps it itself.
    let kept = kept && recorded.is_ok();
    if let Err(e) = recorded {
        // The card went out: the merchant needs the answer more than the vault needs the
        // event, so the failure is logged and the answer still given.
        let _ = tx_error("recording a forward failed")(e);
    }
    let text = match (answer, text) {
        (Ok(_), Some(text)) => text,
        (Err(e), _) => return Err(e),
        (Ok(_), None) => return Err(ApiError::internal()),
    };
    let mut response = super::charges::json_text(text);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if kept {
        response.extensions_mut().insert(Kept);
    }
    Ok(response)
}
