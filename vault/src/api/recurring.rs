//! `/v1/recurring/charges`: schedules of charges on a saved card that the vault runs itself
//! (see [`crate::domain::recurring`] and [`crate::recurring`]).

mod page;

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::charges::{CURRENCIES, MAX_AMOUNT};
use super::{Auth, JsonBody, QueryParams, Replay, invalid, json_response, keep, missing};
use crate::domain::recurring::{self, Interval, MAX_START_AGE, NewRecurring};
use crate::domain::{Work, abort};
use crate::error::{ApiError, tx_failed};
use crate::pagination::ListQuery;
use crate::{AppState, ids, store};

/// How far ahead `start` may be: five years.
const MAX_START_AHEAD: i64 = 5 * 366 * 86_400;

/// Most periods a schedule may have.
const MAX_COUNT: i64 = 10_000;

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateRecurring {
    /// The saved card to charge, `card_…`.
    source: Option<String>,
    /// Per period, in the currency's minor unit, 1 to 99999999.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 99_999_999)]
    amount: Option<Value>,
    /// An ISO 4217 code, such as `eur`.
    currency: Option<String>,
    /// `day`, `week`, `month` or `year`.
    #[schema(pattern = "^(day|week|month|year)$")]
    interval: Option<String>,
    /// Intervals per period: 1 (the default) up to three years' worth (1095 days, 156 weeks,
    /// 36 months, 3 years).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1095)]
    interval_count: Option<Value>,
    /// When the first period is due, Unix seconds; now by default, and at most a day ago.
    #[schema(value_type = Option<i64>)]
    start: Option<Value>,
    /// No period is due at or after this Unix time. Send `end` or `count`, or neither for a
    /// schedule that runs until canceled.
    #[schema(value_type = Option<i64>)]
    end: Option<Value>,
    /// How many periods, 1 to 10000.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10_000)]
    count: Option<Value>,
}

/// An integer, sent as a JSON number or as a string of digits (as a form body sends it).
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn check(body: CreateRecurring, now: i64) -> Result<NewRecurring, ApiError> {
    let source = body
        .source
        .ok_or_else(|| missing("source", "Send `source`: a saved card (card_…)."))?;
    if !source.starts_with("card_") {
        return Err(invalid(
            "source",
            "source must be a saved card (card_…); save a token with POST /v1/cards first.",
        ));
    }
    let amount = body
        .amount
        .as_ref()
        .ok_or_else(|| missing("amount", "Send `amount`, in the currency's minor unit."))
        .map(integer)?
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
    let interval = body
        .interval
        .as_deref()
        .ok_or_else(|| missing("interval", "Send `interval`: day, week, month or year."))
        .map(Interval::parse)?
        .ok_or_else(|| invalid("interval", "interval must be day, week, month or year."))?;
    let interval_count = match &body.interval_count {
        None => 1,
        Some(v) => integer(v)
            .filter(|c| (1..=interval.max_count()).contains(c))
            .ok_or_else(|| {
                invalid(
                    "interval_count",
                    "interval_count must be a positive integer, at most three years of intervals (1095 days, 156 weeks, 36 months or 3 years).",
                )
            })?,
    };
    let start = match &body.start {
        None => now,
        Some(v) => integer(v)
            .filter(|t| (now - MAX_START_AGE..=now + MAX_START_AHEAD).contains(t))
            .ok_or_else(|| {
                invalid(
                    "start",
                    "start must be a Unix time in seconds, at most a day in the past and five years ahead.",
                )
            })?,
    };
    let end = body
        .end
        .as_ref()
        .map(|v| {
            integer(v)
                .filter(|t| *t > start)
                .ok_or_else(|| invalid("end", "end must be a Unix time in seconds after start."))
        })
        .transpose()?;
    let count = body
        .count
        .as_ref()
        .map(|v| {
            integer(v)
                .filter(|c| (1..=MAX_COUNT).contains(c))
                .ok_or_else(|| invalid("count", "count must be an integer from 1 to 10000."))
        })
        .transpose()?;
    if end.is_some() && count.is_some() {
        return Err(invalid("count", "Send end or count, not both."));
    }
    Ok(NewRecurring {
        source,
        amount,
        currency,
        interval,
        interval_count,
        start,
        end,
        count,
    })
}

/// Starts a schedule. When `start` has come (by default it has), the first charge is made
/// before the answer: `SETUP_COF_RECURRING` with the card's CVC if the card was never set up,
/// else `COF_RECURRING`. Every later run is `COF_RECURRING`, without CVC.
#[utoipa::path(
    post, path = "/v1/recurring/charges", operation_id = "createRecurringCharge", tag = "recurring",
    request_body = CreateRecurring,
    responses(
        (status = 200, description = "The schedule, with its first charge if it was due.", body = recurring::RecurringObject, links(
            ("RetrieveRecurringCharge" = (operation_id = "retrieveRecurringCharge", parameters(("id" = "$response.body#/id")))),
            ("CancelRecurringCharge" = (operation_id = "cancelRecurringCharge", parameters(("id" = "$response.body#/id")))),
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
    JsonBody(body): JsonBody<CreateRecurring>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_write")?;
    let now = state.now();
    let n = check(body, now)?;
    let kept = replay.is_some();
    let principal = Arc::clone(&auth.0);
    let bins = state.config().bin_table.clone();
    let (text, charged) = store::write_or_abort(state.store(), move |tx| {
        let (r, charged) = recurring::create(tx, &principal, &n, bins.as_deref(), now)?;
        let text = recurring::object(tx, &r)?;
        keep(tx, replay.as_deref(), &text)?;
        Ok((text, charged))
    })
    .await
    .map_err(tx_failed("creating a recurring charge failed"))?;
    if let Some((status, decline_code)) = charged {
        state.metrics().charge(status, decline_code);
    }
    Ok(json_response(text, kept))
}

/// A schedule, with the charges it made.
#[utoipa::path(
    get, path = "/v1/recurring/charges/{id}", operation_id = "retrieveRecurringCharge", tag = "recurring",
    params(("id" = String, Path, description = "`rc_…`")),
    responses(
        (status = 200, description = "The schedule.", body = recurring::RecurringObject),
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
    if !ids::is_id(&id, "rc_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let account = auth.0.account_id.clone();
    let text = store::read_or_abort(state.store(), move |tx| -> Work<_> {
        match tx.recurring(&account, &id, false)? {
            Some(r) => recurring::object(tx, &r),
            None => abort(ApiError::not_found(Some("id"))),
        }
    })
    .await
    .map_err(tx_failed("reading a recurring charge failed"))?;
    Ok(json_response(text, false))
}

/// Stops a schedule: no charge is made after this. A canceled or completed schedule is
/// answered as it is.
#[utoipa::path(
    post, path = "/v1/recurring/charges/{id}/cancel", operation_id = "cancelRecurringCharge", tag = "recurring",
    params(("id" = String, Path, description = "`rc_…`")),
    responses(
        (status = 200, description = "The schedule, canceled.", body = recurring::RecurringObject),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["charges_write"])),
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    replay: Option<Extension<Replay>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_write")?;
    if !ids::is_id(&id, "rc_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let kept = replay.is_some();
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let text = store::write_or_abort(state.store(), move |tx| {
        let r = recurring::cancel(tx, &principal, &id, now)?;
        let text = recurring::object(tx, &r)?;
        keep(tx, replay.as_deref(), &text)?;
        Ok(text)
    })
    .await
    .map_err(tx_failed("canceling a recurring charge failed"))?;
    Ok(json_response(text, kept))
}

/// A page of `recurring_charge` objects (documented shape of the list).
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the handler writes the list itself.
pub(crate) struct RecurringList {
    #[schema(pattern = "^list$")]
    object: String,
    #[schema(pattern = "^/v1/recurring/charges$")]
    url: String,
    data: Vec<recurring::RecurringObject<'static>>,
    has_more: bool,
}

/// Schedules, newest first, in Stripe's list shape. The order is by creation time, then by
/// insertion, so a cursor keeps its place while schedules are added.
#[utoipa::path(
    get, path = "/v1/recurring/charges", operation_id = "listRecurringCharges", tag = "recurring",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of schedules.", body = RecurringList),
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
    let (page, limit) = page::parse(&query)?;
    let account = auth.0.account_id.clone();
    let text = store::read_or_abort(state.store(), move |tx| -> Work<_> {
        for (cursor, param) in [
            (&page.starting_after, "starting_after"),
            (&page.ending_before, "ending_before"),
        ] {
            if let Some(id) = cursor {
                if tx.recurring(&account, id, false)?.is_none() {
                    return abort(invalid(param, "No such object in this list."));
                }
            }
        }
        let backwards = page.ending_before.is_some();
        let mut rows = tx.recurring_page(&account, &page)?;
        let has_more = rows.len() > limit;
        if has_more {
            // The extra row is the one farthest from the cursor: the oldest going forwards,
            // the newest going backwards (which the store returns first).
            if backwards {
                rows.remove(0);
            } else {
                rows.truncate(limit);
            }
        }
        let mut data = Vec::with_capacity(rows.len());
        for r in &rows {
            let text = recurring::object(tx, r)?;
            data.push(serde_json::from_str::<Value>(&text).map_err(crate::domain::crypto_failed)?);
        }
        serde_json::to_string(&super::List {
            object: "list",
            url: "/v1/recurring/charges",
            data,
            has_more,
        })
        .map_err(crate::domain::crypto_failed)
    })
    .await
    .map_err(tx_failed("listing recurring charges failed"))?;
    Ok(json_response(text, false))
}
