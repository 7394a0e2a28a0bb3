//! Tokens: what a new one seals, and its one use.

use cardseal::card::{Cvc, Today};
use cardseal::jwe::Payload;
use zeroize::Zeroizing;

use super::plain::{PlainCard, summary};
use super::{Work, abort, crypto_failed};
use crate::Principal;
use crate::error::{ApiCode, ApiError};
use crate::ids;
use crate::store::{CardSummary, TokenRecord, TokenType, Tx};

/// The AAD `kind` of a token's sealed card data.
pub const RECORD_KIND: &str = "token";

/// A token that was used: its card data is gone.
pub fn already_used(param: &'static str) -> ApiError {
    ApiError::invalid_request(
        ApiCode::TokenAlreadyUsed,
        "This token was already used; tokens are single use. Tokenize the card again.",
    )
    .param(param)
}

/// A token past its 15 minutes.
pub fn expired(param: &'static str) -> ApiError {
    ApiError::invalid_request(
        ApiCode::TokenExpired,
        "This token has expired; tokens can be used for 15 minutes. Tokenize the card again.",
    )
    .param(param)
}

/// What a new token of `token_type` keeps from an opened payload: the card's summary (for a
/// card token) and the plaintext to seal. A card is parsed by the same rules as the
/// browser's, so a card the form accepts is never refused here.
pub fn contents(
    principal: &Principal,
    payload: &Payload,
    token_type: TokenType,
    now: i64,
) -> Result<(Option<CardSummary>, Zeroizing<Vec<u8>>), ApiError> {
    let encoding_failed = crate::error::internal("encoding a token failed");
    match token_type {
        TokenType::Card => {
            let card =
                payload
                    .to_card(Today::from_unix(now))
                    .map_err(|errors| match errors.first() {
                        Some(e) => ApiError::card(e.code, e.field.as_str()),
                        None => ApiError::internal(),
                    })?;
            let plain = PlainCard::of(&card).to_json().map_err(encoding_failed)?;
            Ok((Some(summary(principal, &card)), plain))
        }
        TokenType::Cvc => {
            if payload.number.is_some() {
                return Err(ApiError::invalid_request(
                    ApiCode::ParameterInvalid,
                    "A sealed CVC must hold only a CVC; send a sealed card as `card`.",
                )
                .param("cvc"));
            }
            let raw = payload.cvc.as_ref().map(|c| c.expose()).unwrap_or_default();
            let cvc = Cvc::parse(raw, None).map_err(|e| ApiError::card(e, "cvc"))?;
            let plain = PlainCard::cvc_only(&cvc)
                .to_json()
                .map_err(encoding_failed)?;
            Ok((None, plain))
        }
    }
}

fn open(principal: &Principal, token: &TokenRecord, sealed: &[u8]) -> Work<PlainCard> {
    let plain = principal
        .keys
        .open_record(&principal.account_id, RECORD_KIND, &token.id, sealed)
        .map_err(crypto_failed)?;
    PlainCard::from_json(&plain).map_err(crypto_failed)
}

/// Consumes the account's token of `want` type, or says precisely why not (`param` names the
/// token in the answer). The token's sealed card is destroyed in the same transaction: what
/// the caller gets back is the only copy, and a saved card keeps its own.
pub fn use_token(
    tx: &dyn Tx,
    principal: &Principal,
    id: &str,
    want: TokenType,
    param: &'static str,
    now: i64,
) -> Work<(TokenRecord, PlainCard)> {
    if !ids::is_id(id, "tok_") {
        return abort(ApiError::not_found(Some(param)));
    }
    let Some(token) = tx.use_token(&principal.account_id, id, now)? else {
        return abort(match tx.token(&principal.account_id, id)? {
            None => ApiError::not_found(Some(param)),
            Some(t) if t.used_at.is_some() => already_used(param),
            Some(_) => expired(param),
        });
    };
    if token.token_type != want {
        // Rolls back: a token of the wrong kind stays usable for what it is for.
        return abort(
            ApiError::invalid_request(
                ApiCode::ParameterInvalid,
                match want {
                    TokenType::Card => "This is a CVC token; a card token is needed here.",
                    TokenType::Cvc => "This is a card token; a CVC token is needed here.",
                },
            )
            .param(param),
        );
    }
    let Some(sealed) = token.sealed.as_deref() else {
        return abort(expired(param));
    };
    let plain = open(principal, &token, sealed)?;
    Ok((token, plain))
}

/// Opens the account's unused, unexpired token without using it (detokenize).
pub fn peek(
    tx: &dyn Tx,
    principal: &Principal,
    id: &str,
    param: &'static str,
    now: i64,
) -> Work<(TokenRecord, PlainCard)> {
    let Some(token) = tx.token(&principal.account_id, id)? else {
        return abort(ApiError::not_found(Some(param)));
    };
    // A used token's card is gone (the use destroyed it); say so rather than 404.
    if token.used_at.is_some() {
        return abort(already_used(param));
    }
    if token.expires_at <= now {
        return abort(expired(param));
    }
    let Some(sealed) = token.sealed.as_deref() else {
        return abort(expired(param));
    };
    let plain = open(principal, &token, sealed)?;
    Ok((token, plain))
}
