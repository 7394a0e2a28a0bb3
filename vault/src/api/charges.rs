//! `POST /v1/charges` and `GET /v1/charges/{id}`.
//!
//! A charge runs in one transaction: the token is consumed (or the saved card's CVC taken),
//! the processor decides, and the charge, the card's network transaction id and the audit
//! events are written. A declined charge is a Charge too (`status: "failed"`, answered with
//! 200), so the caller always gets the object it can show and look up again.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cards::{TxResult, card_key, event, open_card, open_cvc, tx_error, use_token};
use super::idempotency::{Kept, Replay};
use super::{ApiError, Auth, JsonBody};
use crate::processor::{Authorization, Interaction, Processor, TestProcessor};
use crate::store::TokenType;
use crate::store::{self, ChargeRecord, IssuerInfo, TxError};
use crate::{AppState, ids};

/// Largest amount in minor units (Stripe's limit: eight digits).
const MAX_AMOUNT: i64 = 99_999_999;

/// ISO 4217 codes in use, lower case.
const CURRENCIES: &[&str] = &[
    "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd", "bdt",
    "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "btn", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cup", "cve", "czk", "djf", "dkk", "dop", "dzd",
    "egp", "ern", "etb", "eur", "fjd", "fkp", "gbp", "gel", "ghs", "gip", "gmd", "gnf", "gtq",
    "gyd", "hkd", "hnl", "htg", "huf", "idr", "ils", "inr", "iqd", "irr", "isk", "jmd", "jod",
    "jpy", "kes", "kgs", "khr", "kmf", "kpw", "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr",
    "lrd", "lsl", "lyd", "mad", "mdl", "mga", "mkd", "mmk", "mnt", "mop", "mru", "mur", "mvr",
    "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok", "npr", "nzd", "omr", "pab", "pen",
    "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd", "rub", "rwf", "sar", "sbd", "scr",
    "sdg", "sek", "sgd", "shp", "sle", "sos", "srd", "ssp", "stn", "svc", "syp", "szl", "thb",
    "tjs", "tmt", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "usd", "uyu", "uzs",
    "ves", "vnd", "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw", "zwg",
];

#[derive(Deserialize)]
pub(crate) struct CreateCharge {
    amount: Option<Value>,
    currency: Option<String>,
    source: Option<String>,
    interaction: Option<String>,
    reference: Option<String>,
}

#[derive(Serialize)]
struct ChargeCard<'a> {
    id: Option<&'a str>,
    brand: &'a str,
    last4: &'a str,
    exp_month: u8,
    exp_year: u16,
    funding: Option<&'a str>,
    country: Option<&'a str>,
    cvc_check: Option<&'static str>,
}

#[derive(Serialize)]
struct Outcome<'a> {
    network_status: &'static str,
    decline_code: Option<&'static str>,
    network_transaction_id: Option<&'a str>,
}

/// The Charge object, fields in DESIGN.md's order.
#[derive(Serialize)]
struct ChargeObject<'a> {
    id: &'a str,
    object: &'static str,
    amount: i64,
    currency: &'a str,
    status: &'static str,
    source: &'a str,
    card: ChargeCard<'a>,
    outcome: Outcome<'a>,
    interaction: &'static str,
    created: i64,
}

fn missing(param: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid_request("parameter_missing", message).param(param)
}

fn invalid(param: &'static str, message: &'static str) -> ApiError {
    ApiError::invalid_request("parameter_invalid", message).param(param)
}

struct Checked {
    amount: i64,
    currency: String,
    source: String,
    interaction: Interaction,
    reference: Option<String>,
}

fn check(body: CreateCharge) -> Result<Checked, ApiError> {
    let amount = body
        .amount
        .ok_or_else(|| missing("amount", "Send `amount`, in the currency's minor unit."))?
        .as_i64()
        .filter(|a| (1..=MAX_AMOUNT).contains(a))
        .ok_or_else(|| {
            invalid(
                "amount",
                "amount must be a positive integer in the currency's minor unit, at most 99999999.",
            )
        })?;
    let currency = body
        .currency
        .ok_or_else(|| missing("currency", "Send `currency`, an ISO 4217 code."))?
        .to_ascii_lowercase();
    if !CURRENCIES.contains(&currency.as_str()) {
        return Err(invalid(
            "currency",
            "currency must be an ISO 4217 code such as eur or usd.",
        ));
    }
    let source = body.source.ok_or_else(|| {
        missing(
            "source",
            "Send `source`: a card token (tok_…) or a saved card (card_…).",
        )
    })?;
    let interaction = match body.interaction.as_deref() {
        None => Interaction::OneTime,
        Some(s) => Interaction::parse(s).ok_or_else(|| {
            invalid(
                "interaction",
                "interaction must be ONE_TIME, SETUP_COF_ONSESSION, SETUP_COF_RECURRING, SETUP_COF_UNSCHEDULED, COF_ONSESSION, COF_RECURRING or COF_UNSCHEDULED.",
            )
        })?,
    };
    let reference = body.reference.filter(|r| !r.is_empty());
    if reference
        .as_ref()
        .is_some_and(|r| r.len() > 64 || !r.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid(
            "reference",
            "reference must be a network transaction id (letters and digits).",
        ));
    }
    Ok(Checked {
        amount,
        currency,
        source,
        interaction,
        reference,
    })
}

fn cof_reference_missing() -> ApiError {
    ApiError::invalid_request(
        "cof_reference_missing",
        "A merchant-initiated charge needs the network transaction id of a setup charge: charge the card with SETUP_COF_* first, or send `reference`.",
    )
    .param("reference")
}

pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    replay: Option<Extension<Replay>>,
    JsonBody(body): JsonBody<CreateCharge>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_write")?;
    let c = check(body)?;
    // A run of declines is what card testing looks like from here: slow the account down.
    state
        .decline_limiter()
        .peek(&auth.0.account_id)
        .map_err(|wait| ApiError {
            message: "Too many declined charges in the last minute; retry later.".into(),
            ..ApiError::rate_limited(wait)
        })?;
    let kept = replay.is_some();
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let bins = state.config().bin_table.clone();
    let (object, status, decline_code) = store::write_or_abort(
        state.store(),
        move |tx| -> TxResult<(String, &'static str, Option<&'static str>)> {
            let acct = principal.account_id.clone();
            let id = ids::new_id("ch_");
            let mic = c.interaction.is_merchant_initiated();
            // Everything the processor needs, opened inside the transaction.
            let (data, summary, issuer, card_id, cvc, reference, token_id) =
                if c.source.starts_with("card_") {
                    let Some(card) = tx.card(&acct, &c.source)? else {
                        return Err(TxError::Abort(ApiError::not_found(Some("source"))));
                    };
                    let key = card_key(&principal, &card)?;
                    let data = open_card(&principal, &card, &key)?;
                    let reference = c
                        .reference
                        .clone()
                        .or_else(|| card.network_transaction_id.clone());
                    if mic && reference.is_none() {
                        return Err(TxError::Abort(cof_reference_missing()));
                    }
                    // A stored CVC is used by this charge and deleted in this same transaction; a
                    // merchant-initiated charge never touches it.
                    let cvc = if mic {
                        None
                    } else {
                        match tx.take_cvc(&acct, &card.id, now)? {
                            Some(blob) => Some(open_cvc(&acct, &card.id, &key, &blob)?),
                            None => None,
                        }
                    };
                    (
                        data,
                        card.summary,
                        card.issuer,
                        Some(card.id),
                        cvc,
                        reference,
                        None,
                    )
                } else if c.source.starts_with("tok_") {
                    if mic && c.reference.is_none() {
                        return Err(TxError::Abort(cof_reference_missing()));
                    }
                    let (token, mut data) =
                        use_token(tx, &principal, &c.source, TokenType::Card, "source", now)?;
                    let Some(summary) = token.card else {
                        return Err(TxError::Abort(ApiError::not_found(Some("source"))));
                    };
                    let cvc = if mic { None } else { data.cvc.take() };
                    let issuer = match (&bins, data.number.as_ref()) {
                        (Some(b), Some(n)) => b.lookup(n.expose()),
                        _ => IssuerInfo::default(),
                    };
                    (
                        data,
                        summary,
                        issuer,
                        None,
                        cvc,
                        c.reference.clone(),
                        Some(token.id),
                    )
                } else {
                    return Err(TxError::Abort(ApiError::not_found(Some("source"))));
                };
            let Some(number) = data.number.as_ref() else {
                return Err(TxError::Abort(ApiError::not_found(Some("source"))));
            };
            let decision = TestProcessor.authorize(
                &Authorization {
                    number: number.expose(),
                    exp_month: summary.exp_month,
                    exp_year: summary.exp_year,
                    cvc: cvc.as_ref().map(|s| s.expose()),
                    amount: c.amount,
                    currency: &c.currency,
                    interaction: c.interaction,
                    reference: reference.as_deref(),
                },
                now,
            );
            let status = if decision.approved {
                "succeeded"
            } else {
                "failed"
            };
            let object = ChargeObject {
                id: &id,
                object: "charge",
                amount: c.amount,
                currency: &c.currency,
                status,
                source: &c.source,
                card: ChargeCard {
                    id: card_id.as_deref(),
                    brand: &summary.brand,
                    last4: &summary.last4,
                    exp_month: summary.exp_month,
                    exp_year: summary.exp_year,
                    funding: issuer.funding.as_deref(),
                    country: issuer.country.as_deref(),
                    cvc_check: decision
                        .cvc_check
                        .map(|ok| if ok { "pass" } else { "fail" }),
                },
                outcome: Outcome {
                    network_status: if decision.approved {
                        "approved_by_network"
                    } else {
                        "declined_by_network"
                    },
                    decline_code: decision.decline_code,
                    network_transaction_id: decision.network_transaction_id.as_deref(),
                },
                interaction: c.interaction.as_str(),
                created: now,
            };
            let text = serde_json::to_string(&object)
                .map_err(|e| TxError::Store(store::StoreError::Backend(e.to_string())))?;
            tx.insert_charge(&ChargeRecord {
                id: id.clone(),
                account_id: acct.clone(),
                object: text.clone(),
                created: now,
            })?;
            if let (Some(card), Some(ntid), true) = (
                &card_id,
                &decision.network_transaction_id,
                c.interaction.is_setup(),
            ) {
                tx.set_network_transaction_id(&acct, card, ntid)?;
            }
            if let Some(token) = &token_id {
                tx.append_event(&event(
                    &acct,
                    "token.used",
                    json!({"token": token, "used_for": id}),
                    now,
                ))?;
            }
            tx.append_event(&event(
                &acct,
                if decision.approved {
                    "charge.succeeded"
                } else {
                    "charge.failed"
                },
                json!({
                    "charge": id, "source": c.source, "amount": c.amount, "currency": c.currency,
                    "interaction": c.interaction.as_str(), "decline_code": decision.decline_code,
                    "cvc_used": cvc.is_some(),
                }),
                now,
            ))?;
            if let Some(Extension(r)) = &replay {
                r.keep(tx, text.as_bytes())?;
            }
            Ok((text, status, decision.decline_code))
        },
    )
    .await
    .map_err(tx_error("charging failed"))?;
    state.metrics().charge(status, decline_code);
    if decline_code.is_some() {
        // The bucket may already be empty; this decline then only keeps it so.
        let _ = state.decline_limiter().check(&auth.0.account_id);
    }
    let mut response = json_text(object);
    if kept {
        response.extensions_mut().insert(Kept);
    }
    Ok(response)
}

/// A JSON body already serialized (so that the replay copy is byte for byte the answer).
pub(crate) fn json_text(text: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

pub(crate) async fn retrieve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_read")?;
    if !ids::is_id(&id, "ch_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let account = auth.0.account_id.clone();
    let charge = store::read_or_abort(state.store(), move |tx| match tx.charge(&account, &id)? {
        Some(c) => Ok(c),
        None => Err(TxError::Abort(ApiError::not_found(Some("id")))),
    })
    .await
    .map_err(tx_error("reading a charge failed"))?;
    Ok(json_text(charge.object))
}
