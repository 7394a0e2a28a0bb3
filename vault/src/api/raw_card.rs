//! The raw-card API of older vaults, for merchants who capture cards themselves:
//! `POST /v1/card` saves a card sent in clear, `POST /v1/card/{id}` re-adds its CVV.
//!
//! It is off unless the vault runs with `--allow-raw-card-api` (then both answer 404 like any
//! unknown URL): a caller that handles card numbers is in full PCI DSS scope. The card is
//! validated by the cardseal core, as a sealed card is, and saved like `POST /v1/cards` saves
//! one, so charges, CVC rules, deletion and the audit log all apply.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use cardseal::Secret;
use cardseal::card::{Card, CardInput, Today};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Auth, JsonBody, Replay, json_response, keep, missing};
use crate::domain::{Work, card, crypto_failed};
use crate::error::{ApiCode, ApiError, tx_failed};
use crate::store::{CardRecord, Tx};
use crate::{AppState, ids, store};

/// No `Debug`: it holds the number and CVV.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RawCard {
    #[schema(value_type = Option<String>, example = "4242424242424242")]
    card_number: Option<Secret>,
    #[schema(value_type = Option<String>, example = "123")]
    cvv: Option<Secret>,
    /// A number or a string.
    #[schema(value_type = Option<Value>, example = 12)]
    expiry_month: Option<Value>,
    /// A number or a string, 2 or 4 digits.
    #[schema(value_type = Option<Value>, example = 2030)]
    expiry_year: Option<Value>,
    /// The API key's account (`acct_…`).
    organisation: Option<String>,
}

/// No `Debug`: it holds the CVV.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RawCvv {
    #[schema(value_type = Option<String>, example = "123")]
    cvv: Option<Secret>,
    /// The API key's account (`acct_…`).
    organisation: Option<String>,
}

/// The answer, in the older vaults' shape.
#[derive(Serialize, ToSchema)]
pub(crate) struct RawCardObject<'a> {
    /// `card_…`.
    #[serde(rename = "_id")]
    id: &'a str,
    organisation: &'a str,
    brand: &'a str,
    last4: &'a str,
    expiry_month: u8,
    expiry_year: u16,
    issuer: Option<&'a str>,
    issuer_country: Option<&'a str>,
    currency: Option<&'a str>,
    #[serde(rename = "type")]
    funding: Option<&'a str>,
    cvv_available_until: Option<i64>,
}

impl<'a> RawCardObject<'a> {
    fn new(c: &'a CardRecord, until: Option<i64>) -> Self {
        Self {
            id: &c.id,
            organisation: &c.account_id,
            brand: &c.summary.brand,
            last4: &c.summary.last4,
            expiry_month: c.summary.exp_month,
            expiry_year: c.summary.exp_year,
            issuer: c.issuer.issuer.as_deref(),
            issuer_country: c.issuer.country.as_deref(),
            currency: c.issuer.currency.as_deref(),
            funding: c.issuer.funding.as_deref(),
            cvv_available_until: until,
        }
    }
}

/// The two routes, or none unless `--allow-raw-card-api` was given: then every caller, with a
/// key or without, gets the same 404 as for any unknown URL.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    if !state.config().allow_raw_card_api {
        return Router::new();
    }
    Router::new()
        .route("/v1/card", post(create))
        .route("/v1/card/{id}", post(add_cvv))
}

/// A secret key of the named organisation.
fn gate(auth: &Auth, organisation: Option<&str>) -> Result<(), ApiError> {
    auth.require_secret("cards_write")?;
    let organisation = organisation
        .ok_or_else(|| missing("organisation", "Send `organisation`: your account id."))?;
    if organisation != auth.0.account_id {
        return Err(ApiError::permission(
            ApiCode::OrganisationMismatch,
            "organisation must be the account of the API key.",
        ));
    }
    Ok(())
}

/// The answer's JSON, kept as the idempotent replay in the same transaction when there is a
/// key.
fn keep_card(
    tx: &dyn Tx,
    replay: Option<&Replay>,
    card: &CardRecord,
    until: Option<i64>,
) -> Work<String> {
    let text = serde_json::to_string(&RawCardObject::new(card, until)).map_err(crypto_failed)?;
    keep(tx, replay, &text)?;
    Ok(text)
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn card_error(e: cardseal::Error) -> ApiError {
    ApiError::card(e, e.field().map_or("number", |f| f.as_str()))
}

/// Saves a card sent in clear (only with `--allow-raw-card-api`; otherwise 404).
#[utoipa::path(
    post, path = "/v1/card", operation_id = "createRawCard", tag = "raw card",
    request_body = RawCard,
    responses(
        (status = 200, description = "The saved card.", body = RawCardObject, links(
            ("AddCvv" = (operation_id = "addRawCardCvv", parameters(("id" = "$response.body#/_id")))),
            ("RetrieveCard" = (operation_id = "retrieveCard", parameters(("id" = "$response.body#/_id")))),
            ("Charge" = (operation_id = "createCharge", request_body = json!({"amount": 1000, "currency": "eur", "source": "$response.body#/_id"}))),
        )),
        (status = 402, response = super::schemas::CardError),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["cards_write"])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    replay: Option<Extension<Replay>>,
    JsonBody(body): JsonBody<RawCard>,
) -> Result<Response, ApiError> {
    let kept = replay.is_some();
    gate(&auth, body.organisation.as_deref())?;
    let now = state.now();
    let input = CardInput {
        number: body.card_number.unwrap_or_default(),
        exp_month: text(body.expiry_month.as_ref()),
        exp_year: text(body.expiry_year.as_ref()),
        cvc: body.cvv,
        name: None,
    };
    let card = Card::parse(&input, Today::from_unix(now)).map_err(|errors| {
        errors
            .first()
            .map_or_else(ApiError::internal, |e| card_error(e.code))
    })?;
    drop(input);
    let principal = Arc::clone(&auth.0);
    let bins = state.config().bin_table.clone();
    let text = store::write_or_abort(state.store(), move |tx| {
        let (record, until) = card::save_raw(tx, &principal, &card, bins.as_deref(), now)?;
        keep_card(tx, replay.as_deref(), &record, until)
    })
    .await
    .map_err(tx_failed("saving a raw card failed"))?;
    Ok(json_response(text, kept))
}

/// Keeps a CVV for the card's next charge (only with `--allow-raw-card-api`; otherwise 404).
#[utoipa::path(
    post, path = "/v1/card/{id}", operation_id = "addRawCardCvv", tag = "raw card",
    params(("id" = String, Path, description = "`card_…`")),
    request_body = RawCvv,
    responses(
        (status = 200, description = "The card.", body = RawCardObject),
        (status = 402, response = super::schemas::CardError),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["cards_write"])),
)]
pub(crate) async fn add_cvv(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    replay: Option<Extension<Replay>>,
    JsonBody(body): JsonBody<RawCvv>,
) -> Result<Response, ApiError> {
    let kept = replay.is_some();
    gate(&auth, body.organisation.as_deref())?;
    if !ids::is_id(&id, "card_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let cvv = body.cvv.ok_or_else(|| missing("cvv", "Send `cvv`."))?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let text = store::write_or_abort(state.store(), move |tx| {
        let (record, until) = card::add_cvc_raw(tx, &principal, &id, &cvv, "cvv", now)?;
        keep_card(tx, replay.as_deref(), &record, Some(until))
    })
    .await
    .map_err(tx_failed("adding a raw CVV failed"))?;
    Ok(json_response(text, kept))
}
