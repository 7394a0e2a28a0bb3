//! Saved cards: `POST /v1/cards`, `GET /v1/cards/{id}`, `GET /v1/cards`,
//! `DELETE /v1/cards/{id}` and `POST /v1/cards/{id}/cvc`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{
    Auth, JsonBody, List, QueryParams, Replay, invalid, json_response, keep, missing, page_limit,
};
use crate::domain::{Work, card};
use crate::error::{ApiError, internal, tx_failed};
use crate::store::{CardRecord, CardSummary, Tx};
use crate::{AppState, ids, store};

/// Metadata limits, as Stripe's: keys, key length, value length.
const METADATA_KEYS: usize = 50;
const METADATA_KEY_LEN: usize = 40;
const METADATA_VALUE_LEN: usize = 500;
const CUSTOMER_LEN: usize = 255;

/// The Card object, fields in DESIGN.md's order.
#[derive(Serialize, ToSchema)]
#[schema(as = Card)]
pub(crate) struct CardObject<'a> {
    /// `card_…`.
    id: &'a str,
    #[schema(value_type = String, pattern = "^card$")]
    object: &'static str,
    customer: Option<&'a str>,
    brand: &'a str,
    bin: &'a str,
    last4: &'a str,
    exp_month: u8,
    exp_year: u16,
    funding: Option<&'a str>,
    country: Option<&'a str>,
    issuer: Option<&'a str>,
    currency: Option<&'a str>,
    fingerprint: String,
    /// Until when a CVC is kept for the next charge (Unix seconds), if one is.
    cvc_available_until: Option<i64>,
    created: i64,
    #[schema(value_type = HashMap<String, String>)]
    metadata: serde_json::Value,
}

/// A page of cards.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the handler serializes [`super::List`].
pub(crate) struct CardList<'a> {
    #[schema(pattern = "^list$")]
    object: String,
    #[schema(pattern = "^/v1/cards$")]
    url: String,
    data: Vec<CardObject<'a>>,
    has_more: bool,
}

/// A deleted card.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeletedCard {
    /// `card_…`.
    id: String,
    #[schema(value_type = String, pattern = "^card$")]
    object: &'static str,
    deleted: bool,
}

/// The public fingerprint: 16 characters of the account-keyed HMAC.
fn fingerprint(summary: &CardSummary) -> String {
    URL_SAFE_NO_PAD.encode(&summary.fingerprint[..12])
}

impl<'a> CardObject<'a> {
    fn new(c: &'a CardRecord, cvc_available_until: Option<i64>) -> Self {
        Self {
            id: &c.id,
            object: "card",
            customer: c.customer.as_deref(),
            brand: &c.summary.brand,
            bin: &c.summary.bin,
            last4: &c.summary.last4,
            exp_month: c.summary.exp_month,
            exp_year: c.summary.exp_year,
            funding: c.issuer.funding.as_deref(),
            country: c.issuer.country.as_deref(),
            issuer: c.issuer.issuer.as_deref(),
            currency: c.issuer.currency.as_deref(),
            fingerprint: fingerprint(&c.summary),
            cvc_available_until,
            created: c.created,
            metadata: serde_json::from_str(&c.metadata).unwrap_or_else(|_| json!({})),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateCard {
    /// A card token (`tok_…`); it is used up.
    token: Option<String>,
    /// The merchant's customer reference, at most 255 characters, not a card number.
    customer: Option<String>,
    /// At most 50 keys of 1 to 40 characters, string values of at most 500.
    #[schema(value_type = Option<HashMap<String, String>>)]
    metadata: Option<BTreeMap<String, serde_json::Value>>,
}

/// Whether `text` holds what looks like a card number; the one detector is
/// [`crate::pan_scan::contains_card_number`], which every free-text field goes through.
pub(crate) fn looks_like_card_number(text: &str) -> bool {
    crate::pan_scan::contains_card_number(text)
}

fn check_metadata(m: Option<BTreeMap<String, serde_json::Value>>) -> Result<String, ApiError> {
    let invalid = |msg: &'static str| invalid("metadata", msg);
    let m = m.unwrap_or_default();
    if m.len() > METADATA_KEYS {
        return Err(invalid("metadata holds at most 50 keys."));
    }
    for (k, v) in &m {
        if k.is_empty() || k.chars().count() > METADATA_KEY_LEN {
            return Err(invalid("metadata keys are 1 to 40 characters."));
        }
        if looks_like_card_number(k) || v.as_str().is_some_and(looks_like_card_number) {
            return Err(invalid("metadata must not hold card numbers."));
        }
        match v.as_str() {
            Some(s) if s.chars().count() <= METADATA_VALUE_LEN => {}
            _ => {
                return Err(invalid(
                    "metadata values are strings of at most 500 characters.",
                ));
            }
        }
    }
    serde_json::to_string(&m).map_err(internal("encoding metadata failed"))
}

/// The Card's JSON, kept as the idempotent replay in the same transaction when there is a key.
fn keep_card(
    tx: &dyn Tx,
    replay: Option<&Replay>,
    card: &CardRecord,
    until: Option<i64>,
) -> Work<String> {
    let text = serde_json::to_string(&CardObject::new(card, until))
        .map_err(crate::domain::crypto_failed)?;
    keep(tx, replay, &text)?;
    Ok(text)
}

/// Saves a reusable card from a card token; the token's CVC is kept for the next charge.
#[utoipa::path(
    post, path = "/v1/cards", operation_id = "createCard", tag = "cards",
    request_body = CreateCard,
    responses(
        (status = 200, description = "The saved card.", body = CardObject, links(
            ("RetrieveCard" = (operation_id = "retrieveCard", parameters(("id" = "$response.body#/id")))),
            ("AddCvc" = (operation_id = "addCardCvc", parameters(("id" = "$response.body#/id")))),
            ("Charge" = (operation_id = "createCharge", request_body = json!({"amount": 1000, "currency": "eur", "source": "$response.body#/id"}))),
            ("DeleteCard" = (operation_id = "deleteCard", parameters(("id" = "$response.body#/id")))),
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
    JsonBody(body): JsonBody<CreateCard>,
) -> Result<Response, ApiError> {
    let kept = replay.is_some();
    auth.require_secret("cards_write")?;
    let token_id = body
        .token
        .ok_or_else(|| missing("token", "Send `token`: a card token."))?;
    let customer = body.customer.filter(|c| !c.is_empty());
    if customer
        .as_ref()
        .is_some_and(|c| c.chars().count() > CUSTOMER_LEN || looks_like_card_number(c))
    {
        return Err(invalid(
            "customer",
            "customer is a reference of at most 255 characters, and not a card number.",
        ));
    }
    let metadata = check_metadata(body.metadata)?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let bins = state.config().bin_table.clone();
    let text = store::write_or_abort(state.store(), move |tx| {
        let (card, until) = card::save_token(
            tx,
            &principal,
            &token_id,
            customer,
            metadata,
            bins.as_deref(),
            now,
        )?;
        keep_card(tx, replay.as_deref(), &card, until)
    })
    .await
    .map_err(tx_failed("saving a card failed"))?;
    Ok(json_response(text, kept))
}

/// A saved card, masked.
#[utoipa::path(
    get, path = "/v1/cards/{id}", operation_id = "retrieveCard", tag = "cards",
    params(("id" = String, Path, description = "`card_…`")),
    responses(
        (status = 200, description = "The card.", body = CardObject),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["cards_read"])),
)]
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("cards_read")?;
    if !ids::is_id(&id, "card_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let (card, until) = store::read_or_abort(state.store(), move |tx| {
        let card = card::saved(tx, &principal, &id, "id")?;
        let until = tx.cvc_until(&principal.account_id, &id, now)?;
        Ok((card, until))
    })
    .await
    .map_err(tx_failed("reading a card failed"))?;
    Ok(Json(CardObject::new(&card, until)).into_response())
}

/// `customer`, `limit` and `starting_after`, as Stripe's lists take them.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this customer's cards.
    customer: Option<String>,
    /// 1 to 100, default 10.
    #[param(value_type = Option<u8>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// A `card_…` id: the page after it.
    starting_after: Option<String>,
}

/// Saved cards, newest first.
#[utoipa::path(
    get, path = "/v1/cards", operation_id = "listCards", tag = "cards",
    params(ListParams),
    responses(
        (status = 200, description = "A page of cards.", body = CardList),
        (status = 400, response = super::schemas::BadRequest),
    ),
    security(("sk" = []), ("rk" = ["cards_read"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    auth.require_secret("cards_read")?;
    let limit = page_limit(params.limit.as_deref())?;
    let account = auth.0.account_id.clone();
    let now = state.now();
    let (cards, has_more) = store::read(state.store(), move |tx| {
        let mut cards = tx.cards(
            &account,
            params.customer.as_deref(),
            params.starting_after.as_deref(),
            limit + 1,
        )?;
        let has_more = cards.len() > limit;
        cards.truncate(limit);
        let mut out = Vec::with_capacity(cards.len());
        for c in cards {
            let until = tx.cvc_until(&account, &c.id, now)?;
            out.push((c, until));
        }
        Ok((out, has_more))
    })
    .await
    .map_err(internal("listing cards failed"))?;
    let data: Vec<CardObject<'_>> = cards.iter().map(|(c, u)| CardObject::new(c, *u)).collect();
    Ok(Json(List {
        object: "list",
        url: "/v1/cards",
        data,
        has_more,
    })
    .into_response())
}

/// Destroys a saved card's data.
#[utoipa::path(
    delete, path = "/v1/cards/{id}", operation_id = "deleteCard", tag = "cards",
    params(("id" = String, Path, description = "`card_…`")),
    responses(
        (status = 200, description = "The card is gone.", body = DeletedCard),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["cards_write"])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("cards_write")?;
    if !ids::is_id(&id, "card_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let card_id = id.clone();
    store::write_or_abort(state.store(), move |tx| {
        card::delete(tx, &principal, &card_id, now)
    })
    .await
    .map_err(tx_failed("deleting a card failed"))?;
    Ok(Json(DeletedCard {
        id,
        object: "card",
        deleted: true,
    })
    .into_response())
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct AddCvc {
    /// A CVC token (`tok_…` of type `cvc`); it is used up.
    token: Option<String>,
}

/// Keeps a CVC for the card's next charge, at most 1 hour.
#[utoipa::path(
    post, path = "/v1/cards/{id}/cvc", operation_id = "addCardCvc", tag = "cards",
    params(("id" = String, Path, description = "`card_…`")),
    request_body = AddCvc,
    responses(
        (status = 200, description = "The card, with `cvc_available_until`.", body = CardObject),
        (status = 402, response = super::schemas::CardError),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["cards_write"])),
)]
pub(crate) async fn add_cvc(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    replay: Option<Extension<Replay>>,
    JsonBody(body): JsonBody<AddCvc>,
) -> Result<Response, ApiError> {
    let kept = replay.is_some();
    auth.require_secret("cards_write")?;
    if !ids::is_id(&id, "card_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let token_id = body
        .token
        .ok_or_else(|| missing("token", "Send `token`: a CVC token."))?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let text = store::write_or_abort(state.store(), move |tx| {
        let (card, until) = card::add_cvc_token(tx, &principal, &id, &token_id, now)?;
        keep_card(tx, replay.as_deref(), &card, Some(until))
    })
    .await
    .map_err(tx_failed("adding a CVC failed"))?;
    Ok(json_response(text, kept))
}
