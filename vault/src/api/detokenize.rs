//! `POST /v1/detokenize`: the card number behind a token or saved card, for a payment
//! provider's connector. Only a restricted key with the `detokenize` scope may call it; the
//! event is committed before the number leaves, and the answer is never cached or stored.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Auth, JsonBody, missing};
use crate::domain::charge;
use crate::error::{ApiCode, ApiError, tx_failed};
use crate::store::KeyKind;
use crate::{AppState, store};

#[derive(Deserialize, ToSchema)]
pub(crate) struct Detokenize {
    /// `tok_…` or `card_…`.
    token: Option<String>,
    /// `card_…`, as an alternative name.
    card: Option<String>,
}

/// No `Debug`: it holds the number.
#[derive(Serialize, ToSchema)]
pub(crate) struct Detokenized {
    #[schema(value_type = String, pattern = "^detokenized_card$")]
    object: &'static str,
    source: String,
    /// The card number.
    #[schema(value_type = String)]
    number: cardseal::Secret,
    exp_month: u8,
    exp_year: u16,
    brand: String,
}

/// The card number behind a token or saved card, for a payment provider's connector; audited,
/// never cached.
#[utoipa::path(
    post, path = "/v1/detokenize", operation_id = "detokenize", tag = "detokenize",
    request_body = Detokenize,
    responses(
        (status = 200, description = "The card number and expiry.", body = Detokenized),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("rk" = ["detokenize"])),
)]
pub(crate) async fn detokenize(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody<Detokenize>,
) -> Result<Response, ApiError> {
    let p = &auth.0;
    if p.kind != KeyKind::Restricted || !p.scopes.iter().any(|s| s == "detokenize") {
        return Err(ApiError::permission(
            ApiCode::InsufficientScope,
            "Detokenize needs a restricted key (rk_…) with the detokenize scope.",
        ));
    }
    let source = body
        .token
        .or(body.card)
        .ok_or_else(|| missing("token", "Send `token`: a tok_… or card_… id."))?;
    let principal = Arc::clone(&auth.0);
    let now = state.now();
    let out = store::write_or_abort(state.store(), move |tx| {
        let (number, summary) = charge::reveal(tx, &principal, &source, now)?;
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
    .map_err(tx_failed("detokenizing failed"))?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(out),
    )
        .into_response())
}
