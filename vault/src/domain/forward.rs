//! Forwarding a card to the merchant's processor (`POST /v1/forward`). Unlike the rest of the
//! domain, a forward spans two transactions with the network between them, so [`forward`]
//! opens its own; what runs inside them ([`use_card`], [`record`]) is ordinary domain work.
//!
//! The order is what makes it safe (`crate::forward` has the outbound pieces):
//! 1. Everything that can be refused is refused first, with nothing used and nothing sent: the
//!    body's placeholders (the caller parsed them), the destination and its allow-list, the DNS
//!    answer, the connection and the TLS handshake.
//! 2. The card is used, in one committed transaction: a token is consumed (its sealed card
//!    destroyed), a stored CVC taken and deleted, `token.used` written. A CVC asked for and not
//!    there rolls it all back (402 `cvc_unavailable`).
//! 3. Only then does the request leave: the token cannot be forwarded twice, however the call
//!    ends. The processor is never called inside a database transaction.
//! 4. The answer is masked, then `card.forwarded` and the idempotent replay copy are written in
//!    one transaction.
//!
//! A crash between 3 and 4 leaves the card used and no kept answer: the key's claim lapses, and
//! a retry with the same `Idempotency-Key` gets `token_already_used` for a token (or, for a
//! saved card, sends again, without the CVC that was used). The merchant then reconciles with
//! the processor, for which it should send the processor's own idempotency key in `headers`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tokio::time::{Instant, timeout_at};

use super::charge::{ChargeSource, Purpose, Resolved};
use super::{Work, abort, event};
use crate::error::{ApiCode, ApiError, REQUEST_ID, internal, tx_failed};
use crate::forward::client::{self, Upstream};
use crate::forward::destination::{self, Destination};
use crate::forward::template::{CardFields, Field, Template};
use crate::pan_scan::{self, Forwarded as Spelled};
use crate::processor::Interaction;
use crate::store::{self, Tx};
use crate::{AppState, Principal};

/// A checked forward request. No `Debug`: its headers may hold the merchant's processor key.
pub struct NewForward {
    /// The card to send.
    pub source: ChargeSource,
    /// Where to send it.
    pub destination: Destination,
    /// The HTTP method.
    pub method: Method,
    /// The merchant's headers, sent as given.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body, its placeholders parsed.
    pub template: Template,
    /// Who is present: a merchant-initiated forward never sends a CVC.
    pub interaction: Interaction,
}

impl std::fmt::Debug for NewForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewForward")
            .field("source", &self.source)
            .field("host", &self.destination.host)
            .finish_non_exhaustive()
    }
}

/// The answer: the processor's status, allow-listed headers and body, masked.
#[derive(Serialize)]
struct Forwarded {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A forward's answer as JSON (what a replay sends, byte for byte), and whether the replay
/// copy was kept with `card.forwarded`.
#[derive(Debug)]
pub struct Sent {
    /// `{"status","headers","body"}`, or for an answer whose body could not be searched, the
    /// 502 `forward_response_unreadable` error with the processor's `status` and `headers`.
    pub text: String,
    /// 200, or 502 for an unreadable answer.
    pub status: StatusCode,
    /// The replay copy committed.
    pub kept: bool,
}

/// 502 `forward_response_unreadable`: the error body, with the processor's status and the
/// kept headers (masked) beside it, so that the merchant learns the outcome without the body.
fn unreadable(answer: &Forwarded) -> serde_json::Value {
    let request_id = REQUEST_ID.try_with(Clone::clone).ok();
    json!({
        "error": {
            "type": "api_error",
            "code": ApiCode::ForwardResponseUnreadable.as_str(),
            "param": null,
            "message": "The processor's answer is compressed, binary or in a charset other than UTF-8 and UTF-16, so it cannot be searched for the card: its body is withheld, its status and headers are here.",
            "request_id": request_id,
        },
        "status": answer.status,
        "headers": answer.headers,
    })
}

/// 402 `cvc_unavailable`.
fn cvc_unavailable() -> ApiError {
    ApiError {
        status: StatusCode::PAYMENT_REQUIRED,
        kind: "card_error",
        ..ApiError::invalid_request(
            ApiCode::CvcUnavailable,
            "The body asks for {{card.cvc}} but no CVC is available: a saved card's CVC is used once (re-add one with POST /v1/cards/{id}/cvc), and a merchant-initiated interaction never sends one.",
        )
        .param("body")
    }
}

/// The card a forward sends, once used.
pub struct Used {
    /// What fills the placeholders.
    pub fields: CardFields,
    /// The token consumed, if the source was one.
    pub token_id: Option<String>,
}

impl std::fmt::Debug for Used {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Used")
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// Uses the source's card for a forward: a token is consumed (its sealed card destroyed with
/// it), a saved card's stored CVC taken when `cvc` is asked for, `token.used` written with
/// `used_for`. No CVC where one is asked for rolls everything back.
pub fn use_card(
    tx: &dyn Tx,
    principal: &Principal,
    source: &ChargeSource,
    cvc: bool,
    used_for: &str,
    now: i64,
) -> Work<Used> {
    let Resolved {
        mut plain,
        summary,
        token_id,
        cvc: taken,
        ..
    } = source.resolve(tx, principal, Purpose::Forward { cvc }, None, None, now)?;
    if cvc && taken.is_none() {
        return abort(cvc_unavailable());
    }
    let Some(number) = plain.number.take() else {
        return abort(ApiError::not_found(Some("source")));
    };
    if let Some(token) = &token_id {
        tx.append_event(&event(
            &principal.account_id,
            "token.used",
            json!({"token": token, "used_for": used_for}),
            now,
        ))?;
    }
    Ok(Used {
        fields: CardFields {
            number,
            exp_month: summary.exp_month,
            exp_year: summary.exp_year,
            cvc: taken,
            name: plain.name.take(),
        },
        token_id,
    })
}

/// What `card.forwarded` says: the host, the outcome and the request; never the path, the
/// headers or the body, which may hold the merchant's processor key or the card.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The source as sent.
    pub source: &'a str,
    /// The token consumed.
    pub token_id: Option<&'a str>,
    /// The destination's host.
    pub host: &'a str,
    /// The processor's status, if it answered.
    pub status: Option<u16>,
    /// Why it did not, if it did not.
    pub error: Option<ApiCode>,
    /// Whether the CVC went out.
    pub cvc_used: bool,
    /// The request that forwarded.
    pub request_id: &'a str,
}

/// Records a forward's `card.forwarded`.
pub fn record(tx: &dyn Tx, principal: &Principal, o: &Outcome<'_>, now: i64) -> Work<()> {
    tx.append_event(&event(
        &principal.account_id,
        "card.forwarded",
        json!({
            "source": o.source, "token": o.token_id, "host": o.host,
            "status": o.status, "error": o.error.map(ApiCode::as_str), "cvc_used": o.cvc_used,
            "request_id": o.request_id,
        }),
        now,
    ))?;
    Ok(())
}

/// Masks the card's number and CVC in what the processor sent back, wherever and however it is
/// spelled out, and says whether the body could be searched (when not, it is left empty).
fn masked(upstream: Upstream, card: &CardFields) -> (Forwarded, bool) {
    let spelled = Spelled {
        number: Some(card.number.expose()),
        cvc: card.cvc.as_ref().map(|s| s.expose()),
    };
    let Upstream {
        status,
        headers,
        body,
        content_encoding,
    } = upstream;
    let content_type = headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let text = pan_scan::decode_answer(&body, content_type.as_deref(), content_encoding.as_deref());
    let readable = text.is_some();
    let answer = Forwarded {
        status,
        headers: headers
            .into_iter()
            .map(|(name, value)| {
                let value = pan_scan::mask(&String::from_utf8_lossy(&value), spelled);
                (name, value)
            })
            .collect(),
        body: text.map_or_else(String::new, |t| pan_scan::mask(&t, spelled)),
    };
    (answer, readable)
}

/// Forwards the card, in the order the module describes. `keep` keeps the answer as the
/// request's idempotent replay, in the transaction of `card.forwarded`, and says whether it
/// kept one.
pub async fn forward<K>(
    state: &AppState,
    principal: Arc<Principal>,
    f: NewForward,
    keep: K,
) -> Result<Sent, ApiError>
where
    K: FnOnce(&dyn Tx, &str) -> Work<bool> + Send + 'static,
{
    let NewForward {
        source,
        destination: dest,
        method,
        headers,
        template,
        interaction,
    } = f;
    let settings = state.config().forward.clone();
    let deadline = Instant::now() + settings.timeout;
    let account = principal.account_id.clone();
    let hosts = store::read(state.store(), move |tx| tx.forward_hosts(&account))
        .await
        .map_err(internal("reading the forward hosts failed"))?;
    if !destination::allowed(&dest, &hosts) {
        return Err(destination::not_allowed(
            "The destination's host is not on the account's forward allow-list (accounts update --forward-host).",
        ));
    }
    let wants_cvc = template.uses(Field::Cvc);
    if wants_cvc && interaction.is_merchant_initiated() {
        return Err(cvc_unavailable());
    }
    let conn = timeout_at(deadline, async {
        let addrs = destination::resolve(&dest, settings.allow_private).await?;
        client::connect(&settings, &dest, &addrs).await
    })
    .await
    .map_err(|_| client::timed_out())??;

    let request_id = REQUEST_ID.try_with(Clone::clone).unwrap_or_default();
    let now = state.now();
    let (p, s, used_for) = (Arc::clone(&principal), source.clone(), request_id.clone());
    let used = store::write_or_abort(state.store(), move |tx| {
        use_card(tx, &p, &s, wants_cvc, &used_for, now)
    })
    .await
    .map_err(tx_failed("using the card for a forward failed"))?;
    let filled = template.fill(&used.fields);
    let answer = timeout_at(
        deadline,
        client::send(&settings, conn, &dest, method, headers, filled),
    )
    .await
    .unwrap_or_else(|_| Err(client::timed_out()))
    .map(|upstream| masked(upstream, &used.fields));
    drop(used.fields);

    let text = match &answer {
        Ok((a, true)) => {
            Some(serde_json::to_string(a).map_err(internal("serializing a forward failed"))?)
        }
        Ok((a, false)) => Some(unreadable(a).to_string()),
        Err(_) => None,
    };
    let (status, error) = match &answer {
        Ok((a, true)) => (Some(a.status), None),
        Ok((a, false)) => (Some(a.status), Some(ApiCode::ForwardResponseUnreadable)),
        Err(e) => (None, Some(e.code)),
    };
    let readable = matches!(answer, Ok((_, true)));
    let now = state.now();
    let to_keep = text.clone();
    let recorded = store::write_or_abort(state.store(), move |tx| {
        record(
            tx,
            &principal,
            &Outcome {
                source: source.id(),
                token_id: used.token_id.as_deref(),
                host: &dest.host,
                status,
                error,
                cvc_used: wants_cvc,
                request_id: &request_id,
            },
            now,
        )?;
        match &to_keep {
            // An unreadable answer is a 502, which a retry may get differently: not kept.
            Some(text) if readable => keep(tx, text),
            _ => Ok(false),
        }
    })
    .await;
    // The card went out: the merchant needs the answer more than the vault needs the event, so
    // a failure is logged and the answer still given. Not kept, the idempotency layer keeps it.
    let kept = recorded.unwrap_or_else(|e| {
        let _ = tx_failed("recording a forward failed")(e);
        false
    });
    match (answer, text) {
        (Ok((_, readable)), Some(text)) => Ok(Sent {
            text,
            status: if readable {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            },
            kept,
        }),
        (Err(e), _) => Err(e),
        (Ok(_), None) => Err(ApiError::internal()),
    }
}
