//! `POST /v1/tokens` and `GET /v1/tokens/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Auth, ClientIp, JsonBody, invalid, missing};
use crate::bins::BinTable;
use crate::crypto::sha256;
use crate::domain::token::{self, RECORD_KIND};
use crate::error::{ApiCode, ApiError, internal};
use crate::keys::Lookup;
use crate::store::{self, IssuerInfo, JtiRecord, KeyKind, StoreError, TokenRecord, TokenType};
use crate::unseal::{self, UnsealError};
use crate::{AppState, ids};

/// Exactly one of `card` and `cvc`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateToken {
    /// A sealed card: a compact JWE (RSA-OAEP-256 + A256GCM) from cardseal's `seal()`.
    card: Option<String>,
    /// A sealed CVC: a compact JWE from cardseal's `sealCvc()`.
    cvc: Option<String>,
}

/// The Token object of the API, fields in the documented order.
#[derive(Serialize, ToSchema)]
#[schema(as = Token)]
pub(crate) struct TokenObject<'a> {
    /// `tok_…`.
    id: &'a str,
    #[schema(value_type = String, pattern = "^token$")]
    object: &'static str,
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(card|cvc)$")]
    token_type: &'static str,
    /// The card's public details; `null` for a CVC token.
    #[schema(value_type = Option<TokenCard>)]
    card: Option<TokenCard<'a>>,
    client_ip: Option<&'a str>,
    created: i64,
    expires_at: i64,
    livemode: bool,
    used: bool,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TokenCard<'a> {
    brand: &'a str,
    last4: &'a str,
    exp_month: u8,
    exp_year: u16,
    funding: Option<String>,
    country: Option<String>,
}

impl<'a> TokenObject<'a> {
    /// The token as the API shows it; issuer metadata comes from the BIN table by the
    /// stored six-digit BIN.
    pub(crate) fn new(t: &'a TokenRecord, bins: Option<&BinTable>) -> Self {
        let issuer = match (bins, t.card.as_ref()) {
            (Some(b), Some(c)) => b.lookup(&c.bin),
            _ => IssuerInfo::default(),
        };
        Self {
            id: &t.id,
            object: "token",
            token_type: t.token_type.as_str(),
            card: t.card.as_ref().map(|c| TokenCard {
                brand: &c.brand,
                last4: &c.last4,
                exp_month: c.exp_month,
                exp_year: c.exp_year,
                funding: issuer.funding,
                country: issuer.country,
            }),
            client_ip: t.client_ip.as_deref(),
            created: t.created,
            expires_at: t.expires_at,
            livemode: false,
            used: t.used_at.is_some(),
        }
    }
}

fn unseal_error(e: UnsealError, param: &'static str) -> ApiError {
    match e {
        UnsealError::Header(message) => {
            ApiError::invalid_request(ApiCode::InvalidEncryptedPayload, message).param(param)
        }
        UnsealError::KeyExpired => ApiError::invalid_request(
            ApiCode::EncryptionKeyExpired,
            "The value was sealed with a vault key that is retired or unknown; fetch the keys again and reseal.",
        )
        .param(param),
        UnsealError::Opaque => ApiError::opaque_payload(param),
    }
}

/// Turns a sealed card (or CVC) into a single-use token that expires in 15 minutes.
#[utoipa::path(
    post, path = "/v1/tokens", operation_id = "createToken", tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 200, description = "The token.", body = TokenObject, links(
            ("RetrieveToken" = (operation_id = "retrieveToken", parameters(("id" = "$response.body#/id")))),
            ("SaveCard" = (operation_id = "createCard", request_body = json!({"token": "$response.body#/id"}))),
            ("Charge" = (operation_id = "createCharge", request_body = json!({"amount": 1000, "currency": "eur", "source": "$response.body#/id"}))),
        )),
        (status = 402, response = super::schemas::CardError),
        (status = 409, response = super::schemas::Conflict),
    ),
    security(("pk" = []), ("sk" = [])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<Response, ApiError> {
    let result = create_inner(&state, &auth, client_ip, &headers, body).await;
    match &result {
        Ok(t) => state
            .metrics()
            .token_created(t.token_type == TokenType::Cvc),
        Err(e) => state.metrics().token_rejected(e.code.as_str()),
    }
    let bins = state.config().bin_table.as_deref();
    result.map(|t| Json(TokenObject::new(&t, bins)).into_response())
}

async fn create_inner(
    state: &AppState,
    auth: &Auth,
    client_ip: Option<String>,
    headers: &HeaderMap,
    body: CreateToken,
) -> Result<TokenRecord, ApiError> {
    let principal = &auth.0;
    if principal.kind == KeyKind::Restricted {
        return Err(ApiError::permission(
            ApiCode::InsufficientScope,
            "Tokens are created with a publishable or secret key.",
        ));
    }
    // The per-key and per-IP limits were taken by the API's write limiter.

    let (param, token_type, jwe) = match (body.card, body.cvc) {
        (Some(jwe), None) => ("card", TokenType::Card, jwe),
        (None, Some(jwe)) => ("cvc", TokenType::Cvc, jwe),
        (None, None) => {
            return Err(missing(
                "card",
                "Send `card` (a sealed card) or `cvc` (a sealed CVC).",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid("cvc", "Send either `card` or `cvc`, not both."));
        }
    };

    let now = state.now();
    let grace = state.config().key_grace_secs;
    // RSA decryption is CPU-bound (about a quarter millisecond); it runs on the worker thread,
    // whose count matches the cores, rather than bouncing through the blocking pool.
    let unsealed = match unseal::unseal(state.keys(), &jwe, now, grace) {
        // A kid this process has not seen may come from a `keys rotate` run by another
        // process. (Refused before any decryption, so trying again costs only the header.)
        Err(UnsealError::KeyExpired)
            if unseal::header_kid(&jwe).is_ok_and(|kid| {
                matches!(state.keys().lookup(&kid, now, grace), Lookup::Unknown)
            }) =>
        {
            state.reload_keys_throttled().await;
            unseal::unseal(state.keys(), &jwe, now, grace)
        }
        unsealed => unsealed,
    }
    .map_err(|e| unseal_error(e, param))?;
    drop(jwe);
    let payload = unsealed.payload;

    let window = state.config().iat_window_secs;
    // `iat` is whatever i64 the sender chose: `now - iat` can overflow (a panic in debug, and
    // in release a wrap that lets `iat = now - 2^63` pass), so the distance is taken as a u64,
    // which cannot overflow.
    let window_u64 = u64::try_from(window).unwrap_or(0);
    if now.abs_diff(payload.iat) > window_u64 {
        return Err(ApiError::invalid_request(
            ApiCode::RequestExpired,
            "The value was sealed more than 5 minutes from the vault's time; check the device clock and seal again.",
        )
        .param(param));
    }

    let id = ids::new_id("tok_");
    let (card, plaintext) = token::contents(principal, &payload, token_type, now)?;
    if let Some(card) = &card {
        // Card testing tokenizes one card again and again with guessed expiries and CVCs.
        let bucket = format!(
            "{}/{}",
            principal.account_id,
            hex::encode(&card.fingerprint[..16])
        );
        state
            .card_limiter()
            .check(&bucket)
            .map_err(|wait| ApiError {
                message: "This card was tokenized too many times in the last minutes; retry later."
                    .into(),
                ..ApiError::rate_limited(wait)
            })?;
    }
    let sealed = principal
        .keys
        .seal_record(&principal.account_id, RECORD_KIND, &id, plaintext)
        .map_err(internal("sealing a token failed"))?;

    let idempotency_key = headers.get("idempotency-key").map(|v| sha256(v.as_bytes()));
    let record = TokenRecord {
        id: id.clone(),
        account_id: principal.account_id.clone(),
        token_type,
        card,
        sealed: Some(sealed),
        client_ip,
        created: now,
        expires_at: now + state.config().token_ttl_secs,
        used_at: None,
    };
    let jti = JtiRecord {
        jti_hash: sha256(payload.jti.as_bytes()),
        // No request with this jti passes the iat check after this.
        expires_at: payload.iat.saturating_add(window).saturating_add(1),
        account_id: principal.account_id.clone(),
        token_id: id,
        idempotency_key,
    };
    let (stored, kept) = (record.clone(), jti.clone());
    match store::write(state.store(), move |tx| tx.add_token(&stored, &kept)).await {
        Ok(()) => Ok(record),
        Err(StoreError::Duplicate) => {
            let earlier = store::read(state.store(), move |tx| tx.replayed_token(&jti))
                .await
                .map_err(internal("reading a replayed token failed"))?;
            if let Some(t) = earlier {
                return Ok(t);
            }
            Err(ApiError::conflict(
                ApiCode::ReplayedRequest,
                "This sealed value was already used; seal the card again.",
            )
            .param(param))
        }
        Err(e) => Err(internal("storing a token failed")(e)),
    }
}

/// A token, with whether it was used.
#[utoipa::path(
    get, path = "/v1/tokens/{id}", operation_id = "retrieveToken", tag = "tokens",
    params(("id" = String, Path, description = "`tok_…`")),
    responses(
        (status = 200, description = "The token.", body = TokenObject),
        (status = 404, response = super::schemas::NotFound),
    ),
    security(("sk" = []), ("rk" = ["tokens_read"])),
)]
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_secret("tokens_read")?;
    if !ids::is_id(&id, "tok_") {
        return Err(ApiError::not_found(Some("id")));
    }
    let account = auth.0.account_id.clone();
    let token = store::read(state.store(), move |tx| tx.token(&account, &id))
        .await
        .map_err(internal("reading a token failed"))?
        .ok_or_else(|| ApiError::not_found(Some("id")))?;
    Ok(Json(TokenObject::new(
        &token,
        state.config().bin_table.as_deref(),
    ))
    .into_response())
}
