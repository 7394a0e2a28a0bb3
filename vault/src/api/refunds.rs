//! `POST /v1/refunds`, `GET /v1/refunds/{id}` and `GET /v1/refunds?charge=`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::cards::looks_like_card_number;
use super::charges::{amount, raw_objects};
use super::{Auth, JsonBody, QueryParams, Replay, invalid, json_response, keep, missing};
use crate::domain::refund::NewRefund;
use crate::domain::{Work, abort, charge};
use crate::error::{ApiError, internal, tx_failed};
use crate::pagination::{List, ListQuery};
use crate::{AppState, ids, store};

/// Stripe's refund reasons.
const REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateRefund {
    /// The `ch_…` to refund: a captured charge.
    charge: Option<String>,
    /// Minor units, at most what is left to refund (default: all of it).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 99_999_999)]
    #[serde(default, deserialize_with = "super::form_scalar")]
    amount: Option<Value>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    reason: Option<String>,
    /// At most 50 keys of 1 to 40 characters, string values of at most 500; never a card
    /// number.
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    metadata: Option<BTreeMap<String, Value>>,
}

/// Checks the merchant's metadata as a saved card's is checked: bounded, strings, and no card
/// numbers (they would be stored and answered in clear).
fn check_metadata(m: Option<BTreeMap<String, Value>>) -> Result<String, ApiError> {
    let m = m.unwrap_or_default();
    let bad = |message| Err(invalid("metadata", message));
    if m.len() > 50 {
        return bad("metadata holds at most 50 keys.");
    }
    for (k, v) in &m {
        if k.is_empty() || k.chars().count() > 40 {
            return bad("metadata keys are 1 to 40 characters.");
        }
        if looks_like_card_number(k) || v.as_str().is_some_and(looks_like_card_number) {
            return bad("metadata must not hold card numbers.");
        }
        if v.as_str().is_none_or(|s| s.chars().count() > 500) {
            return bad("metadata values are strings of at most 500 characters.");
        }
    }
    serde_json::to_string(&m).map_err(internal("encoding metadata failed"))
}

fn check(body: CreateRefund) -> Result<NewRefund, ApiError> {
    let charge = body
        .charge
        .ok_or_else(|| missing("charge", "Send `charge`, the `ch_…` to refund."))?;
    let amount = body
        .amount
        .map(|v| {
            amount(&v).ok_or_else(|| {
                invalid(
                    "amount",
                    "amount must be a positive integer in the charge's minor unit, at most what is left to refund.",
                )
            })
        })
        .transpose()?;
    if let Some(reason) = &body.reason {
        if looks_like_card_number(reason) || !REASONS.contains(&reason.as_str()) {
            return Err(invalid(
                "reason",
                "reason must be duplicate, fraudulent or requested_by_customer.",
            ));
        }
    }
    Ok(NewRefund {
        charge,
        amount,
        reason: body.reason,
        metadata: check_metadata(body.metadata)?,
    })
}

/// Refunds a captured charge, in full or in part; several partial refunds may follow one
/// another, never more in total than was captured.
#[utoipa::path(
    post, path = "/v1/refunds", operation_id = "createRefund", tag = "refunds",
    request_body(content(
        (CreateRefund = "application/json"),
        (CreateRefund = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The refund.", body = crate::domain::refund::RefundObject, links(
            ("RetrieveRefund" = (operation_id = "retrieveRefund", parameters(("id" = "$response.body#/id")))),
            ("RetrieveCharge" = (operation_id = "retrieveCharge", parameters(("id" = "$response.body#/charge")))),
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
    JsonBody(body): JsonBody<CreateRefund>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_write")?;
    let r = check(body)?;
    let kept = replay.is_some();
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let text = store::write_or_abort(state.store(), move |tx| {
        let text = charge::refund(tx, &principal, &r, now)?;
        keep(tx, replay.as_deref(), &text)?;
        Ok(text)
    })
    .await
    .map_err(tx_failed("refunding failed"))?;
    Ok(json_response(text, kept))
}

/// A refund.
#[utoipa::path(
    get, path = "/v1/refunds/{id}", operation_id = "retrieveRefund", tag = "refunds",
    params(("id" = String, Path, description = "`re_…`")),
    responses(
        (status = 200, description = "The refund.", body = crate::domain::refund::RefundObject),
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
    if !ids::is_id(&id, "re_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let account = auth.0.account_id.clone();
    let refund = store::read_or_abort(state.store(), move |tx| -> Work<_> {
        match tx.refund(&account, &id)? {
            Some(r) => Ok(r),
            None => abort(ApiError::not_found(Some("id"))),
        }
    })
    .await
    .map_err(tx_failed("reading a refund failed"))?;
    Ok(json_response(refund.object, false))
}

/// `charge`: only this charge's refunds.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RefundFilter {
    /// A `ch_…`: only its refunds.
    charge: Option<String>,
}

/// The account's refunds (or one charge's), newest first, in pages.
#[utoipa::path(
    get, path = "/v1/refunds", operation_id = "listRefunds", tag = "refunds",
    params(RefundFilter, ListQuery),
    responses(
        (status = 200, description = "A page of refunds.", body = super::schemas::RefundList),
        (status = 400, response = super::schemas::BadRequest),
    ),
    security(("sk" = []), ("rk" = ["charges_read"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(filter): QueryParams<RefundFilter>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    auth.require_secret("charges_read")?;
    let page = query.page("re_")?;
    let account = auth.0.account_id.clone();
    // An unknown charge has no refunds: an empty list, as for any filter that matches nothing.
    let charge = filter.charge;
    let (rows, page) = store::read(state.store(), move |tx| {
        tx.refunds(&account, charge.as_deref(), &page)
            .map(|r| (r, page))
    })
    .await
    .map_err(|e| ApiError::store(&e))?;
    let data = raw_objects(rows.into_iter().map(|r| r.object))?;
    let text = serde_json::to_string(&List::new(&page, "/v1/refunds", data))
        .map_err(internal("encoding a list failed"))?;
    Ok(json_response(text, false))
}
