//! Card data in the clear, and saved cards.
//!
//! Each saved card has its own AES-256 key, sealed with the account's data key. The card's
//! number and its pre-authorization CVC are sealed with that key, so deleting a card is erasing
//! one small key: crypto-shredding, which also reaches copies in backups.

use cardseal::Secret;
use cardseal::card::{Brand, Card, Cvc};
use serde_json::json;
use zeroize::Zeroizing;

use super::plain::{PlainCard, summary};
use super::{Work, abort, crypto_failed, event, token};
use crate::Principal;
use crate::crypto::BlobKey;
use crate::error::ApiError;
use crate::ids;
use crate::store::{CardRecord, CardSummary, IssuerInfo, TokenType, Tx};

/// How long a CVC is kept for the next charge.
pub const CVC_TTL_SECS: i64 = 3600;

/// The AAD `kind` of a card's own key, sealed with the account's data key.
const CARD_KEY_KIND: &str = "card-key";

fn card_aad(account_id: &str, card_id: &str, what: &str) -> Vec<u8> {
    format!("cardseal-vault/v1/card-{what}/{account_id}/{card_id}").into_bytes()
}

/// The account's saved card, or 404 naming `param`.
pub fn saved(
    tx: &dyn Tx,
    principal: &Principal,
    id: &str,
    param: &'static str,
) -> Work<CardRecord> {
    match tx.card(&principal.account_id, id)? {
        Some(card) => Ok(card),
        None => abort(ApiError::not_found(Some(param))),
    }
}

/// The card's own key, opened with the account's data key.
pub fn card_key(principal: &Principal, card: &CardRecord) -> Work<BlobKey> {
    let Some(wrapped) = card.wrapped_key.as_deref() else {
        return abort(ApiError::not_found(Some("id")));
    };
    let raw = principal
        .keys
        .open_record(&principal.account_id, CARD_KEY_KIND, &card.id, wrapped)
        .map_err(crypto_failed)?;
    let bytes: &[u8; 32] = raw.as_slice().try_into().map_err(crypto_failed)?;
    Ok(BlobKey::new(bytes))
}

/// Opens a saved card's number and expiry.
pub fn open(principal: &Principal, card: &CardRecord, key: &BlobKey) -> Work<PlainCard> {
    let Some(sealed) = card.sealed.as_deref() else {
        return abort(ApiError::not_found(Some("id")));
    };
    let plain = key
        .open(&card_aad(&principal.account_id, &card.id, "data"), sealed)
        .map_err(crypto_failed)?;
    PlainCard::from_json(&plain).map_err(crypto_failed)
}

/// Seals `cvc` with the card's key and keeps it for [`CVC_TTL_SECS`]; returns until when.
pub fn put_cvc(
    tx: &dyn Tx,
    principal: &Principal,
    card_id: &str,
    key: &BlobKey,
    cvc: &str,
    now: i64,
) -> Work<i64> {
    let acct = &principal.account_id;
    let blob = key
        .seal(
            &card_aad(acct, card_id, "cvc"),
            Zeroizing::new(cvc.as_bytes().to_vec()),
        )
        .map_err(crypto_failed)?;
    let until = now + CVC_TTL_SECS;
    tx.put_cvc(acct, card_id, &blob, until)?;
    Ok(until)
}

/// Takes the card's CVC, if it has an unexpired one: this use deletes it.
pub fn take_cvc(
    tx: &dyn Tx,
    principal: &Principal,
    card_id: &str,
    key: &BlobKey,
    now: i64,
) -> Work<Option<Secret>> {
    let acct = &principal.account_id;
    let Some(blob) = tx.take_cvc(acct, card_id, now)? else {
        return Ok(None);
    };
    let plain = key
        .open(&card_aad(acct, card_id, "cvc"), &blob)
        .map_err(crypto_failed)?;
    let text = String::from_utf8(plain.to_vec()).map_err(crypto_failed)?;
    Ok(Some(Secret::new(text)))
}

/// A card to save, already validated. `Debug` shows only the masked number.
pub struct NewCard<'a> {
    /// Its non-secret facts.
    pub summary: CardSummary,
    /// The number.
    pub number: &'a Secret,
    /// The cardholder name.
    pub name: Option<&'a str>,
    /// A CVC to keep for the next charge.
    pub cvc: Option<&'a Secret>,
    /// The merchant's customer reference.
    pub customer: Option<String>,
    /// Checked metadata, a JSON object.
    pub metadata: String,
    /// From the BIN table.
    pub issuer: IssuerInfo,
}

impl std::fmt::Debug for NewCard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCard")
            .field("number", self.number)
            .finish_non_exhaustive()
    }
}

/// Stores a new card under its own key, with its CVC (if any) for an hour. Returns the card
/// and until when its CVC is kept.
pub fn insert(
    tx: &dyn Tx,
    principal: &Principal,
    new: NewCard<'_>,
    now: i64,
) -> Work<(CardRecord, Option<i64>)> {
    insert_with_id(tx, principal, ids::new_id("card_"), new, now)
}

/// [`insert`] under a given `card_…` id, created at `now`: for `import`, which keeps the ids
/// (and creation times) of the vault the cards come from.
pub fn insert_with_id(
    tx: &dyn Tx,
    principal: &Principal,
    id: String,
    new: NewCard<'_>,
    now: i64,
) -> Work<(CardRecord, Option<i64>)> {
    let acct = &principal.account_id;
    let raw_key = Zeroizing::new(ids::random_bytes::<32>());
    let wrapped_key = principal
        .keys
        .seal_record(acct, CARD_KEY_KIND, &id, Zeroizing::new(raw_key.to_vec()))
        .map_err(crypto_failed)?;
    let key = BlobKey::new(&raw_key);
    let plain = PlainCard {
        number: Some(new.number.clone()),
        exp_month: Some(new.summary.exp_month),
        exp_year: Some(new.summary.exp_year),
        cvc: None,
        name: new.name.map(str::to_owned),
    }
    .to_json()
    .map_err(crypto_failed)?;
    let sealed = key
        .seal(&card_aad(acct, &id, "data"), plain)
        .map_err(crypto_failed)?;
    let card = CardRecord {
        id,
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
    let until = match new.cvc {
        Some(cvc) => Some(put_cvc(tx, principal, &card.id, &key, cvc.expose(), now)?),
        None => None,
    };
    Ok((card, until))
}

/// Saves the card behind a card token, consuming the token. Returns the card and until when
/// its CVC is kept.
pub fn save_token(
    tx: &dyn Tx,
    principal: &Principal,
    token_id: &str,
    customer: Option<String>,
    metadata: String,
    bins: Option<&crate::bins::BinTable>,
    now: i64,
) -> Work<(CardRecord, Option<i64>)> {
    let (token, plain) = token::use_token(tx, principal, token_id, TokenType::Card, "token", now)?;
    let (Some(summary), Some(number)) = (token.card.clone(), plain.number.as_ref()) else {
        return abort(token::expired("token"));
    };
    let (card, until) = insert(
        tx,
        principal,
        NewCard {
            summary,
            number,
            name: plain.name.as_deref(),
            cvc: plain.cvc.as_ref(),
            customer,
            metadata,
            issuer: bins.map(|b| b.lookup(number.expose())).unwrap_or_default(),
        },
        now,
    )?;
    let acct = &principal.account_id;
    tx.append_event(&event(
        acct,
        "token.used",
        json!({"token": token.id, "used_for": card.id}),
        now,
    ))?;
    tx.append_event(&event(
        acct,
        "card.created",
        json!({"card": card.id, "token": token.id, "customer": card.customer}),
        now,
    ))?;
    Ok((card, until))
}

/// Saves a card sent in clear (the raw-card API). Returns the card and until when its CVC is
/// kept.
pub fn save_raw(
    tx: &dyn Tx,
    principal: &Principal,
    card: &Card,
    bins: Option<&crate::bins::BinTable>,
    now: i64,
) -> Work<(CardRecord, Option<i64>)> {
    let number = Secret::new(card.number.expose());
    let cvc = card.cvc.as_ref().map(|c| Secret::new(c.expose()));
    let (record, until) = insert(
        tx,
        principal,
        NewCard {
            summary: summary(principal, card),
            number: &number,
            name: None,
            cvc: cvc.as_ref(),
            customer: None,
            metadata: "{}".to_owned(),
            issuer: bins.map(|b| b.lookup(number.expose())).unwrap_or_default(),
        },
        now,
    )?;
    tx.append_event(&event(
        &principal.account_id,
        "card.created",
        json!({"card": record.id, "via": "raw_card_api"}),
        now,
    ))?;
    Ok((record, until))
}

/// Keeps the CVC behind a CVC token for the saved card's next charge, consuming the token.
/// Returns the card and until when the CVC is kept.
pub fn add_cvc_token(
    tx: &dyn Tx,
    principal: &Principal,
    card_id: &str,
    token_id: &str,
    now: i64,
) -> Work<(CardRecord, i64)> {
    // The card first: a token must not be spent on a card that does not exist.
    let card = saved(tx, principal, card_id, "id")?;
    let key = card_key(principal, &card)?;
    let (token, plain) = token::use_token(tx, principal, token_id, TokenType::Cvc, "token", now)?;
    let Some(cvc) = plain.cvc.as_ref() else {
        return abort(token::expired("token"));
    };
    let brand = Brand::from_name(&card.summary.brand);
    if let Err(e) = Cvc::parse(cvc.expose(), brand) {
        return abort(ApiError::card(e, "cvc"));
    }
    let until = put_cvc(tx, principal, &card.id, &key, cvc.expose(), now)?;
    let acct = &principal.account_id;
    tx.append_event(&event(
        acct,
        "token.used",
        json!({"token": token.id, "used_for": card.id}),
        now,
    ))?;
    tx.append_event(&event(
        acct,
        "card.cvc_added",
        json!({"card": card.id, "token": token.id}),
        now,
    ))?;
    Ok((card, until))
}

/// Keeps a CVC sent in clear (the raw-card API, `param` names it) for the saved card's next
/// charge. Returns the card and until when the CVC is kept.
pub fn add_cvc_raw(
    tx: &dyn Tx,
    principal: &Principal,
    card_id: &str,
    cvc: &Secret,
    param: &'static str,
    now: i64,
) -> Work<(CardRecord, i64)> {
    let card = saved(tx, principal, card_id, "id")?;
    let brand = Brand::from_name(&card.summary.brand);
    let cvc = match Cvc::parse(cvc.expose(), brand) {
        Ok(cvc) => cvc,
        Err(e) => return abort(ApiError::card(e, param)),
    };
    let key = card_key(principal, &card)?;
    let until = put_cvc(tx, principal, &card.id, &key, cvc.expose(), now)?;
    tx.append_event(&event(
        &principal.account_id,
        "card.cvc_added",
        json!({"card": card.id, "via": "raw_card_api"}),
        now,
    ))?;
    Ok((card, until))
}

/// Erases a saved card (its key, data and CVC) and records it.
pub fn delete(tx: &dyn Tx, principal: &Principal, card_id: &str, now: i64) -> Work<()> {
    let acct = &principal.account_id;
    if !tx.delete_card(acct, card_id, now)? {
        return abort(ApiError::not_found(Some("id")));
    }
    tx.append_event(&event(acct, "card.deleted", json!({"card": card_id}), now))?;
    Ok(())
}
