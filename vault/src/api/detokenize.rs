//! `POST /v1/detokenize`: the card number behind a token or saved card, for a payment
//! provider's connector. Only a restricted key with the `detokenize` scope may call it; the
//! event is committed before the number leaves, and the answer is never cached or stored.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cards::{
    TxResult, card_key, event, open_card, token_already_used, token_expired, tx_error,
};
use super::{ApiError, Auth, JsonBody};
use crate::store::KeyKind;
use crate::store::{self, TxError};
use crate::{AppState, ids};

#[derive(Deserialize)]
pub(crate) struct Detokenize {
    /// `tok_…` or `card_…`.
    token: Option<String>,
    /// `card_…`, as an alternative name.
    card: Option<String>,
}

/// No `Debug`: it holds the number.
#[derive(Serialize)]
struct Detokenized {
    object: &'static str,
    source: String,
    number: cardseal::Secret,
    exp_month: u8,
    exp_year: u16,
    brand: String,
}

pub(crate) async fn detokenize(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<Detokenize>,
) -> Result<Response, ApiError> {
    let p = &auth.0;
    if p.kind != KeyKind::Restricted || !p.scopes.iter().any(|s| s == "detokenize") {
        return Err(ApiError::permission(
            "insufficient_scope",
            "Detokenize needs a restricted key (rk_…) with the detokenize scope.",
        ));
    }
    let source = body.token.or(body.card).ok_or_else(|| {
        ApiError::invalid_request("parameter_missing", "Send `token`: a tok_… or card_… id.")
            .param("token")
    })?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let out = store::write_or_abort(state.store(), move |tx| -> TxResult<Detokenized> {
        let acct = principal.account_id.clone();
        let missing = || TxError::Abort(ApiError::not_found(Some("token")));
        let (data, summary) = if ids::is_id(&source, "card_") {
            let card = tx.card(&acct, &source)?.ok_or_else(missing)?;
            let key = card_key(&principal, &card)?;
            (open_card(&principal, &card, &key)?, card.summary)
        } else if ids::is_id(&source, "tok_") {
            let token = tx.token(&acct, &source)?.ok_or_else(missing)?;
            // A used token's card is gone (the use destroyed it); say so rather than 404.
            if token.used_at.is_some() {
                return Err(TxError::Abort(token_already_used("token")));
            }
            if token.expires_at <= now {
                return Err(TxError::Abort(token_expired("token")));
            }
            let (Some(summary), Some(sealed)) = (token.card.clone(), token.sealed.as_deref())
            else {
                return Err(TxError::Abort(token_expired("token")));
            };
            let plain = principal
                .keys
                .open_record(&acct, super::tokens::RECORD_KIND, &token.id, sealed)
                .map_err(|_| TxError::Abort(ApiError::internal()))?;
            let data: super::cards::CardData =
                serde_json::from_slice(&plain).map_err(|_| TxError::Abort(ApiError::internal()))?;
            (data, summary)
        } else {
            return Err(missing());
        };
        let number = data.number.clone().ok_or_else(missing)?;
        tx.append_event(&event(
            &acct,
            "card.detokenized",
            json!({"source": source, "key": principal.key_ref}),
            now,
        ))?;
        Ok(Detokenized {
            object: "detokenized_card",
            source,
            number,
            exp_month: summary.exp_month,
            exp_year: summary.exp_year,
            brand: summary.brand,
        })
    })
    .await
    .map_err(tx_error("detokenizing failed"))?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(out),
    )
        .into_response())
}
