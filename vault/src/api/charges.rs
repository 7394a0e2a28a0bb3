//! `POST /v1/charges`, `GET /v1/charges/{id}`, `POST /v1/charges/{id}/capture` and
//! `GET /v1/charges`. A declined charge is a Charge too, answered with 200.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    Auth, JsonBody, OptionalBody, QueryParams, Replay, invalid, json_response, keep, missing,
};
use crate::domain::charge::{self, NewCharge};
use crate::domain::{Work, abort};
use crate::error::{ApiError, tx_failed};
use crate::pagination::{List, ListQuery};
use crate::processor::Interaction;
use crate::{AppState, ids, store};

/// Largest amount in minor units (Stripe's limit: eight digits).
pub(crate) const MAX_AMOUNT: i64 = 99_999_999;

/// An amount of 1 to [`MAX_AMOUNT`] minor units, a JSON integer (a form's digits arrive as
/// one, see [`super::form_scalar`]); `None` for anything else, which the caller answers as
/// `parameter_invalid` naming its parameter.
pub(crate) fn amount(v: &Value) -> Option<i64> {
    v.as_i64().filter(|a| (1..=MAX_AMOUNT).contains(a))
}

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
    #[serde(default, deserialize_with = "super::form_scalar")]
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
    /// `true` (default) captures at once; `false` only authorizes, for
    /// `POST /v1/charges/{id}/capture` within 7 days (`--authorization-expiry`).
    #[schema(value_type = Option<bool>)]
    #[serde(default, deserialize_with = "super::form_scalar")]
    capture: Option<Value>,
}

fn check(body: CreateCharge, authorization_secs: i64) -> Result<NewCharge, ApiError> {
    let amount = body
        .amount
        .ok_or_else(|| missing("amount", "Send `amount`, in the currency's minor unit."))
        .map(|v| amount(&v))?
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
    let capture = match &body.capture {
        None => true,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid("capture", "capture must be true or false."))?,
    };
    Ok(NewCharge {
        amount,
        currency,
        source,
        interaction,
        reference,
        authorize_only: (!capture).then_some(authorization_secs),
    })
}

/// Authorizes through the configured processor. A decline is a Charge too, with 200.
#[utoipa::path(
    post, path = "/v1/charges", operation_id = "createCharge", tag = "charges",
    request_body(content(
        (CreateCharge = "application/json"),
        (CreateCharge = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The charge, succeeded or failed.", body = charge::ChargeObject, links(
            ("RetrieveCharge" = (operation_id = "retrieveCharge", parameters(("id" = "$response.body#/id")))),
            ("CaptureCharge" = (operation_id = "captureCharge", parameters(("id" = "$response.body#/id")))),
            ("RefundCharge" = (operation_id = "createRefund", request_body = json!({"charge": "$response.body#/id"}))),
        )),
        (status = 400, response = super::schemas::BadRequest),
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
    let c = check(body, state.config().authorization_secs)?;
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

#[derive(Deserialize, ToSchema)]
pub(crate) struct CaptureCharge {
    /// At most the authorized amount (default: all of it); the rest is released.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 99_999_999)]
    #[serde(default, deserialize_with = "super::form_scalar")]
    amount: Option<Value>,
}

/// Captures an authorization (a charge made with `capture: false`), in full or in part.
#[utoipa::path(
    post, path = "/v1/charges/{id}/capture", operation_id = "captureCharge", tag = "charges",
    params(("id" = String, Path, description = "`ch_…`")),
    request_body(content(
        (CaptureCharge = "application/json"),
        (CaptureCharge = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The charge, captured.", body = charge::ChargeObject),
        (status = 400, response = super::schemas::BadRequest),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["charges_write"])),
)]
pub(crate) async fn capture(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    replay: Option<Extension<Replay>>,
    OptionalBody(body): OptionalBody<CaptureCharge>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_write")?;
    let amount = match body.and_then(|b| b.amount) {
        None => None,
        Some(v) => Some(amount(&v).ok_or_else(|| {
            invalid(
                "amount",
                "amount must be a positive integer in the currency's minor unit, at most the authorized amount.",
            )
        })?),
    };
    let kept = replay.is_some();
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let text = store::write_or_abort(state.store(), move |tx| {
        let text = charge::capture(tx, &principal, &id, amount, now)?;
        keep(tx, replay.as_deref(), &text)?;
        Ok(text)
    })
    .await
    .map_err(tx_failed("capturing a charge failed"))?;
    Ok(json_response(text, kept))
}

/// The account's charges, newest first, in pages.
#[utoipa::path(
    get, path = "/v1/charges", operation_id = "listCharges", tag = "charges",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of charges.", body = super::schemas::ChargeList),
        (status = 400, response = super::schemas::BadRequest),
    ),
    security(("sk" = []), ("rk" = ["charges_read"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_read")?;
    let page = query.page("ch_")?;
    let account = auth.0.account_id.clone();
    let rows = store::read(state.store(), move |tx| {
        tx.charges(&account, &page).map(|r| (r, page))
    })
    .await
    .map_err(|e| ApiError::store(&e))?;
    let (rows, page) = rows;
    let data = raw_objects(rows.into_iter().map(|r| r.object))?;
    let text = serde_json::to_string(&List::new(&page, "/v1/charges", data))
        .map_err(crate::error::internal("encoding a list failed"))?;
    Ok(json_response(text, false))
}

/// Stored objects (JSON text), to send as they are.
pub(crate) fn raw_objects(
    texts: impl Iterator<Item = String>,
) -> Result<Vec<Box<serde_json::value::RawValue>>, ApiError> {
    texts
        .map(serde_json::value::RawValue::from_string)
        .collect::<Result<_, _>>()
        .map_err(crate::error::internal("a stored object is not JSON"))
}
