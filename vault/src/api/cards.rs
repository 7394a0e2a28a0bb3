//! Saved cards: `POST /v1/cards`, `GET /v1/cards/{id}`, `GET /v1/cards`,
//! `DELETE /v1/cards/{id}` and `POST /v1/cards/{id}/cvc`.
//!
//! Each card has its own AES-256 key, sealed with the account's data key. The card's number
//! and its pre-authorization CVC are sealed with that key, so deleting a card is erasing one
//! small key: crypto-shredding, which also reaches copies in backups.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cardseal::Secret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use super::idempotency::{Kept, Replay};
use super::{ApiError, Auth, JsonBody, internal};
use crate::crypto::BlobKey;
use crate::store::{self, CardRecord, IssuerInfo, NewEvent, Tx, TxError};
use crate::store::{CardSummary, TokenRecord, TokenType};
use crate::{AppState, Principal, ids};

/// How long a CVC is kept for the next charge.
pub(crate) const CVC_TTL_SECS: i64 = 3600;

/// Metadata limits, as Stripe's: keys, key length, value length.
const METADATA_KEYS: usize = 50;
const METADATA_KEY_LEN: usize = 40;
const METADATA_VALUE_LEN: usize = 500;
const CUSTOMER_LEN: usize = 255;

/// Card data opened from a token or a saved card. No `Debug`: it holds the number.
#[derive(Deserialize, Default)]
pub(crate) struct CardData {
    pub number: Option<Secret>,
    pub cvc: Option<Secret>,
    pub name: Option<String>,
}

/// What a saved card keeps sealed (no CVC: that has its own table).
#[derive(Serialize)]
struct SavedCard<'a> {
    number: &'a str,
    exp_month: u8,
    exp_year: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

pub(crate) type TxResult<T> = Result<T, TxError<ApiError>>;

/// Maps a transaction's failure to the response.
pub(crate) fn tx_error(what: &'static str) -> impl FnOnce(TxError<ApiError>) -> ApiError {
    move |e| match e {
        TxError::Abort(e) => e,
        TxError::Store(e) => internal(what)(e),
    }
}

fn abort<T>(e: ApiError) -> TxResult<T> {
    Err(TxError::Abort(e))
}

fn crypto_failed<T>(_: T) -> TxError<ApiError> {
    tracing::error!("opening or sealing card data failed");
    TxError::Abort(ApiError::internal())
}

/// A new audit event.
pub(crate) fn event(
    account_id: &str,
    event_type: &str,
    data: serde_json::Value,
    now: i64,
) -> NewEvent {
    NewEvent {
        id: ids::new_id("evt_"),
        account_id: account_id.to_owned(),
        event_type: event_type.to_owned(),
        data,
        created: now,
    }
}

/// A token that was used: its card data is gone.
pub(crate) fn token_already_used(param: &'static str) -> ApiError {
    ApiError::invalid_request(
        "token_already_used",
        "This token was already used; tokens are single use. Tokenize the card again.",
    )
    .param(param)
}

/// A token past its 15 minutes.
pub(crate) fn token_expired(param: &'static str) -> ApiError {
    ApiError::invalid_request(
        "token_expired",
        "This token has expired; tokens can be used for 15 minutes. Tokenize the card again.",
    )
    .param(param)
}

/// Consumes the account's token of `want` type inside `tx`, or says precisely why not. The
/// token's sealed card is destroyed in the same transaction: what the caller gets back is the
/// only copy, and a saved card keeps its own.
pub(crate) fn use_token(
    tx: &dyn Tx,
    principal: &Principal,
    id: &str,
    want: TokenType,
    param: &'static str,
    now: i64,
) -> TxResult<(TokenRecord, CardData)> {
    if !ids::is_id(id, "tok_") {
        return abort(ApiError::not_found(Some(param)));
    }
    let Some(token) = tx.use_token(&principal.account_id, id, now)? else {
        return abort(match tx.token(&principal.account_id, id)? {
            None => ApiError::not_found(Some(param)),
            Some(t) if t.used_at.is_some() => token_already_used(param),
            Some(_) => token_expired(param),
        });
    };
    if token.token_type != want {
        // Rolls back: a token of the wrong kind stays usable for what it is for.
        return abort(
            ApiError::invalid_request(
                "parameter_invalid",
                match want {
                    TokenType::Card => "This is a CVC token; a card token is needed here.",
                    TokenType::Cvc => "This is a card token; a CVC token is needed here.",
                },
            )
            .param(param),
        );
    }
    let Some(sealed) = token.sealed.as_deref() else {
        return abort(token_expired(param));
    };
    let plain = principal
        .keys
        .open_record(
            &principal.account_id,
            super::tokens::RECORD_KIND,
            &token.id,
            sealed,
        )
        .map_err(crypto_failed)?;
    let data: CardData = serde_json::from_slice(&plain).map_err(crypto_failed)?;
    Ok((token, data))
}

fn card_aad(account_id: &str, card_id: &str, what: &str) -> Vec<u8> {
    format!("cardseal-vault/v1/card-{what}/{account_id}/{card_id}").into_bytes()
}

/// The card's own key, opened with the account's data key.
pub(crate) fn card_key(principal: &Principal, card: &CardRecord) -> TxResult<BlobKey> {
    let Some(wrapped) = card.wrapped_key.as_deref() else {
        return abort(ApiError::not_found(Some("id")));
    };
    let raw = principal
        .keys
        .open_record(&principal.account_id, "card-key", &card.id, wrapped)
        .map_err(crypto_failed)?;
    let bytes: &[u8; 32] = raw.as_slice().try_into().map_err(crypto_failed)?;
    Ok(BlobKey::new(bytes))
}

/// Opens a saved card's number and expiry.
pub(crate) fn open_card(
    principal: &Principal,
    card: &CardRecord,
    key: &BlobKey,
) -> TxResult<CardData> {
    let Some(sealed) = card.sealed.as_deref() else {
        return abort(ApiError::not_found(Some("id")));
    };
    let plain = key
        .open(&card_aad(&principal.account_id, &card.id, "data"), sealed)
        .map_err(crypto_failed)?;
    serde_json::from_slice(&plain).map_err(crypto_failed)
}

/// Seals a CVC with the card's key.
pub(crate) fn seal_cvc(
    account_id: &str,
    card_id: &str,
    key: &BlobKey,
    cvc: &Secret,
) -> TxResult<Vec<u8>> {
    key.seal(
        &card_aad(account_id, card_id, "cvc"),
        Zeroizing::new(cvc.expose().as_bytes().to_vec()),
    )
    .map_err(crypto_failed)
}

/// Opens a CVC sealed by [`seal_cvc`].
pub(crate) fn open_cvc(
    account_id: &str,
    card_id: &str,
    key: &BlobKey,
    blob: &[u8],
) -> TxResult<Secret> {
    let plain = key
        .open(&card_aad(account_id, card_id, "cvc"), blob)
        .map_err(crypto_failed)?;
    let text = String::from_utf8(plain.to_vec()).map_err(crypto_failed)?;
    Ok(Secret::new(text))
}

/// The Card object, fields in DESIGN.md's order.
#[derive(Serialize)]
pub(crate) struct CardObject<'a> {
    id: &'a str,
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
    cvc_available_until: Option<i64>,
    created: i64,
    metadata: serde_json::Value,
}

/// The public fingerprint: 16 characters of the account-keyed HMAC.
pub(crate) fn fingerprint(summary: &CardSummary) -> String {
    URL_SAFE_NO_PAD.encode(&summary.fingerprint[..12])
}

impl<'a> CardObject<'a> {
    pub(crate) fn new(c: &'a CardRecord, cvc_available_until: Option<i64>) -> Self {
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

/// The Card's JSON, kept as the idempotent replay in the same transaction when there is a key.
fn keep_card(
    tx: &dyn Tx,
    replay: Option<&Extension<Replay>>,
    card: &CardRecord,
    until: Option<i64>,
) -> TxResult<String> {
    let text = serde_json::to_string(&CardObject::new(card, until)).map_err(crypto_failed)?;
    if let Some(Extension(r)) = replay {
        r.keep(tx, text.as_bytes())?;
    }
    Ok(text)
}

fn card_response(text: String, kept: bool) -> Response {
    let mut response = super::charges::json_text(text);
    if kept {
        response.extensions_mut().insert(Kept);
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct CreateCard {
    token: Option<String>,
    customer: Option<String>,
    metadata: Option<BTreeMap<String, serde_json::Value>>,
}

/// Whether `text` holds what looks like a card number: 12 to 19 digits (spaces and dashes
/// between them allowed) that pass the Luhn check. Such text is refused where it would be
/// stored in clear, so a merchant's mistake cannot put a number in the database or the log.
pub(crate) fn looks_like_card_number(text: &str) -> bool {
    let mut digits = Vec::new();
    let flush = |digits: &mut Vec<u8>| {
        let found = (12..=19).contains(&digits.len()) && cardseal::card::number::luhn(digits);
        digits.clear();
        found
    };
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c as u8),
            ' ' | '-' if !digits.is_empty() => {}
            _ => {
                if flush(&mut digits) {
                    return true;
                }
            }
        }
    }
    flush(&mut digits)
}

fn check_metadata(m: Option<BTreeMap<String, serde_json::Value>>) -> Result<String, ApiError> {
    let invalid =
        |msg: &'static str| ApiError::invalid_request("parameter_invalid", msg).param("metadata");
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

/// A card to save, already validated.
pub(crate) struct NewCard<'a> {
    pub summary: CardSummary,
    pub number: &'a Secret,
    pub name: Option<&'a str>,
    pub cvc: Option<&'a Secret>,
    pub customer: Option<String>,
    pub metadata: String,
    pub issuer: IssuerInfo,
}

/// Stores a new card under its own key, with its CVC (if any) for an hour. Returns the card
/// and until when its CVC is kept.
pub(crate) fn insert_new_card(
    tx: &dyn Tx,
    principal: &Principal,
    new: NewCard<'_>,
    now: i64,
) -> TxResult<(CardRecord, Option<i64>)> {
    let acct = &principal.account_id;
    let id = ids::new_id("card_");
    let raw_key = Zeroizing::new(ids::random_bytes::<32>());
    let wrapped_key = principal
        .keys
        .seal_record(acct, "card-key", &id, Zeroizing::new(raw_key.to_vec()))
        .map_err(crypto_failed)?;
    let key = BlobKey::new(&raw_key);
    let mut plain = Zeroizing::new(Vec::with_capacity(256));
    serde_json::to_writer(
        &mut *plain,
        &SavedCard {
            number: new.number.expose(),
            exp_month: new.summary.exp_month,
            exp_year: new.summary.exp_year,
            name: new.name,
        },
    )
    .map_err(crypto_failed)?;
    let sealed = key
        .seal(&card_aad(acct, &id, "data"), plain)
        .map_err(crypto_failed)?;
    let card = CardRecord {
        id: id.clone(),
        account_id: acct.clone(),
        customer: new.customer,
        summary: new.summary,
        issuer: new.issuer,
        metadata: new.metadata,
        wrapped_key: Some(wrapped_key),
        sealed: Some(sealed),
        network_transaction_id: None,
        created: now,
    };
    tx.insert_card(&card)?;
    let mut until = None;
    if let Some(cvc) = new.cvc {
        let blob = seal_cvc(acct, &id, &key, cvc)?;
        tx.put_cvc(acct, &id, &blob, now + CVC_TTL_SECS)?;
        until = Some(now + CVC_TTL_SECS);
    }
    Ok((card, until))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    replay: Option<Extension<Replay>>,
    JsonBody(body): JsonBody<CreateCard>,
) -> Result<Response, ApiError> {
    let kept = replay.is_some();
    auth.require_secret("cards_write")?;
    let token_id = body.token.ok_or_else(|| {
        ApiError::invalid_request("parameter_missing", "Send `token`: a card token.").param("token")
    })?;
    let customer = body.customer.filter(|c| !c.is_empty());
    if customer
        .as_ref()
        .is_some_and(|c| c.chars().count() > CUSTOMER_LEN || looks_like_card_number(c))
    {
        return Err(ApiError::invalid_request(
            "parameter_invalid",
            "customer is a reference of at most 255 characters, and not a card number.",
        )
        .param("customer"));
    }
    let metadata = check_metadata(body.metadata)?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let bins = state.config().bin_table.clone();
    let text = store::write_or_abort(state.store(), move |tx| {
        let (token, data) = use_token(tx, &principal, &token_id, TokenType::Card, "token", now)?;
        let (Some(summary), Some(number)) = (token.card.clone(), data.number.as_ref()) else {
            return abort(token_expired("token"));
        };
        let (card, until) = insert_new_card(
            tx,
            &principal,
            NewCard {
                summary,
                number,
                name: data.name.as_deref(),
                cvc: data.cvc.as_ref(),
                customer,
                metadata,
                issuer: bins
                    .as_ref()
                    .map(|b| b.lookup(number.expose()))
                    .unwrap_or_default(),
            },
            now,
        )?;
        tx.append_event(&event(
            &principal.account_id,
            "token.used",
            json!({"token": token.id, "used_for": card.id}),
            now,
        ))?;
        tx.append_event(&event(
            &principal.account_id,
            "card.created",
            json!({"card": card.id, "token": token.id, "customer": card.customer}),
            now,
        ))?;
        keep_card(tx, replay.as_ref(), &card, until)
    })
    .await
    .map_err(tx_error("saving a card failed"))?;
    Ok(card_response(text, kept))
}

pub(crate) async fn retrieve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("cards_read")?;
    if !ids::is_id(&id, "card_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let account = auth.0.account_id.clone();
    let now = state.now();
    let (card, until) = store::read_or_abort(state.store(), move |tx| {
        let Some(card) = tx.card(&account, &id)? else {
            return abort(ApiError::not_found(Some("id")));
        };
        let until = tx.cvc_until(&account, &id, now)?;
        Ok((card, until))
    })
    .await
    .map_err(tx_error("reading a card failed"))?;
    Ok(Json(CardObject::new(&card, until)).into_response())
}

/// `limit` and `starting_after`, as Stripe's lists take them.
#[derive(Deserialize)]
pub(crate) struct ListParams {
    customer: Option<String>,
    limit: Option<String>,
    starting_after: Option<String>,
}

/// Checks a page size: 1 to 100, default 10.
pub(crate) fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(10),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request("parameter_invalid", "limit must be between 1 and 100.")
                    .param("limit")
            }),
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    auth.require_secret("cards_read")?;
    let limit = page_limit(params.limit.as_deref())?;
    let account = auth.0.account_id.clone();
    let now = state.now();
    let (cards, has_more) = store::read_or_abort(state.store(), move |tx| {
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
    .map_err(tx_error("listing cards failed"))?;
    let data: Vec<CardObject<'_>> = cards.iter().map(|(c, u)| CardObject::new(c, *u)).collect();
    Ok(Json(List {
        object: "list",
        url: "/v1/cards",
        data,
        has_more,
    })
    .into_response())
}

/// A page of a list, members in Stripe's order.
#[derive(Serialize)]
struct List<T> {
    object: &'static str,
    url: &'static str,
    data: Vec<T>,
    has_more: bool,
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("cards_write")?;
    if !ids::is_id(&id, "card_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let account = auth.0.account_id.clone();
    let now = state.now();
    let card_id = id.clone();
    store::write_or_abort(state.store(), move |tx| {
        if !tx.delete_card(&account, &card_id, now)? {
            return abort(ApiError::not_found(Some("id")));
        }
        tx.append_event(&event(
            &account,
            "card.deleted",
            json!({"card": card_id}),
            now,
        ))?;
        Ok(())
    })
    .await
    .map_err(tx_error("deleting a card failed"))?;
    Ok(Json(json!({"id": id, "object": "card", "deleted": true})).into_response())
}

#[derive(Deserialize)]
pub(crate) struct AddCvc {
    token: Option<String>,
}

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
    let token_id = body.token.ok_or_else(|| {
        ApiError::invalid_request("parameter_missing", "Send `token`: a CVC token.").param("token")
    })?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let text = store::write_or_abort(state.store(), move |tx| {
        let acct = principal.account_id.clone();
        // The card first: a token must not be spent on a card that does not exist.
        let Some(card) = tx.card(&acct, &id)? else {
            return abort(ApiError::not_found(Some("id")));
        };
        let key = card_key(&principal, &card)?;
        let (token, data) = use_token(tx, &principal, &token_id, TokenType::Cvc, "token", now)?;
        let Some(cvc) = data.cvc.as_ref() else {
            return abort(token_expired("token"));
        };
        let brand = cardseal::card::Brand::from_name(&card.summary.brand);
        if let Err(e) = cardseal::card::Cvc::parse(cvc.expose(), brand) {
            return abort(ApiError::card(e.code(), "cvc", e.message()));
        }
        let blob = seal_cvc(&acct, &id, &key, cvc)?;
        tx.put_cvc(&acct, &id, &blob, now + CVC_TTL_SECS)?;
        tx.append_event(&event(
            &acct,
            "token.used",
            json!({"token": token.id, "used_for": id}),
            now,
        ))?;
        tx.append_event(&event(
            &acct,
            "card.cvc_added",
            json!({"card": id, "token": token.id}),
            now,
        ))?;
        keep_card(tx, replay.as_ref(), &card, Some(now + CVC_TTL_SECS))
    })
    .await
    .map_err(tx_error("adding a CVC failed"))?;
    Ok(card_response(text, kept))
}

#[cfg(test)]
mod tests {
    use super::looks_like_card_number;

    #[test]
    fn card_numbers_are_spotted_in_text() {
        assert!(looks_like_card_number("4242424242424242"));
        assert!(looks_like_card_number("card 4242 4242 4242 4242 please"));
        assert!(looks_like_card_number("3782-822463-10005"));
        assert!(!looks_like_card_number("4242424242424241"));
        assert!(!looks_like_card_number("cus_1234567890123"));
        assert!(!looks_like_card_number("membership"));
        assert!(!looks_like_card_number("order 2024-11-23"));
    }
}
