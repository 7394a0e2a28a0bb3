//! `POST /v1/charges` and `GET /v1/charges/{id}`. A declined charge is a Charge too, answered
//! with 200.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{Auth, JsonBody, Replay, invalid, json_response, keep, missing};
use crate::domain::charge::{self, NewCharge};
use crate::domain::{Work, abort};
use crate::error::{ApiError, tx_failed};
use crate::processor::Interaction;
use crate::{AppState, ids, store};

/// Largest amount in minor units (Stripe's limit: eight digits).
pub(crate) const MAX_AMOUNT: i64 = 99_999_999;

/// ISO 4217 codes in use, lower case.
pub(crate) const CURRENCIES: &[&str] = &[
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

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateCharge {
    /// In the currency's minor unit, 1 to 99999999.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 99_999_999)]
    amount: Option<Value>,
    /// An ISO 4217 code, such as `eur`.
    currency: Option<String>,
    /// A card token (`tok_…`, used up) or a saved card (`card_…`).
    source: Option<String>,
    /// `ONE_TIME` (default), `SETUP_COF_ONSESSION`, `SETUP_COF_RECURRING`,
    /// `SETUP_COF_UNSCHEDULED`, `COF_ONSESSION`, `COF_RECURRING` or `COF_UNSCHEDULED`.
    interaction: Option<String>,
    /// The `network_transaction_id` of the setup charge, for a merchant-initiated charge.
    reference: Option<String>,
}

fn check(body: CreateCharge) -> Result<NewCharge, ApiError> {
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
    Ok(NewCharge {
        amount,
        currency,
        source,
        interaction,
        reference,
    })
}

/// Authorizes through the configured processor. A decline is a Charge too, with 200.
#[utoipa::path(
    post, path = "/v1/charges", operation_id = "createCharge", tag = "charges",
    request_body = CreateCharge,
    responses(
        (status = 200, description = "The charge, succeeded or failed.", body = charge::ChargeObject, links(
            ("RetrieveCharge" = (operation_id = "retrieveCharge", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["charges_write"])),
)]
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
    let charged = store::write_or_abort(state.store(), move |tx| {
        let charged = charge::charge(tx, &principal, &c, bins.as_deref(), now)?;
        keep(tx, replay.as_deref(), &charged.object)?;
        Ok(charged)
    })
    .await
    .map_err(tx_failed("charging failed"))?;
    state.metrics().charge(charged.status, charged.decline_code);
    if charged.decline_code.is_some() {
        // The bucket may already be empty; this decline then only keeps it so.
        let _ = state.decline_limiter().check(&auth.0.account_id);
    }
    Ok(json_response(charged.object, kept))
}

/// A charge.
#[utoipa::path(
    get, path = "/v1/charges/{id}", operation_id = "retrieveCharge", tag = "charges",
    params(("id" = String, Path, description = "`ch_…`")),
    responses(
        (status = 200, description = "The charge.", body = charge::ChargeObject),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["charges_read"])),
)]
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
    let charge = store::read_or_abort(state.store(), move |tx| -> Work<_> {
        match tx.charge(&account, &id)? {
            Some(c) => Ok(c),
            None => abort(ApiError::not_found(Some("id"))),
        }
    })
    .await
    .map_err(tx_failed("reading a charge failed"))?;
    Ok(json_response(charge.object, false))
}
