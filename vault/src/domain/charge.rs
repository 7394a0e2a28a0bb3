//! Charges, and the source a charge (or a detokenize, or a forward) names: a token or a saved
//! card.
//!
//! A charge runs in one transaction: the token is consumed (or the saved card's CVC taken),
//! the processor decides, and the charge, the card's network transaction id and the audit
//! events are written. A declined charge is a Charge too (`status: "failed"`), so the caller
//! always gets the object it can show and look up again.

use cardseal::Secret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::card;
use super::plain::PlainCard;
use super::token;
use super::{Work, abort, crypto_failed, event};
use crate::Principal;
use crate::bins::BinTable;
use crate::error::{ApiCode, ApiError};
use crate::ids;
use crate::processor::{Authorization, Interaction, Processor, TestProcessor};
use crate::store::{CardSummary, ChargeRecord, IssuerInfo, TokenType, Tx};

/// Where a card comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeSource {
    /// `tok_…`: a card token, used once.
    Token(String),
    /// `card_…`: a saved card.
    Card(String),
}

/// What the source's card is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A charge: a token is used up, and unless `merchant_initiated`, the CVC is taken.
    Charge {
        /// No customer present: no CVC, and a network transaction id is required.
        merchant_initiated: bool,
    },
    /// Detokenize: nothing is used up; the number leaves the vault.
    Reveal,
    /// A forward to the merchant's processor: a token is used up, and the CVC is taken only
    /// when `cvc` (the request's body asks for `{{card.cvc}}`), so that a forward without it
    /// leaves a saved card's CVC for the next use.
    Forward {
        /// Take the CVC.
        cvc: bool,
    },
}

impl Purpose {
    /// The request parameter that names the source: `source` of a charge, `token` of a
    /// detokenize.
    fn param(self) -> &'static str {
        match self {
            Purpose::Charge { .. } | Purpose::Forward { .. } => "source",
            Purpose::Reveal => "token",
        }
    }

    /// Whether the CVC is used (and a saved card's deleted): never by a merchant-initiated
    /// charge or a reveal.
    fn takes_cvc(self) -> bool {
        match self {
            Purpose::Charge { merchant_initiated } => !merchant_initiated,
            Purpose::Forward { cvc } => cvc,
            Purpose::Reveal => false,
        }
    }
}

/// A source's card, opened. `Debug` shows only ids.
pub struct Resolved {
    /// The card data.
    pub plain: PlainCard,
    /// Its non-secret facts.
    pub summary: CardSummary,
    /// From the saved card, or the BIN table for a token.
    pub issuer: IssuerInfo,
    /// The saved card's id.
    pub card_id: Option<String>,
    /// The token's id, once used.
    pub token_id: Option<String>,
    /// The CVC this charge uses (taken from a saved card, or the token's).
    pub cvc: Option<Secret>,
    /// The network transaction id a merchant-initiated charge refers to.
    pub reference: Option<String>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("card_id", &self.card_id)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

fn cof_reference_missing() -> ApiError {
    ApiError::invalid_request(
        ApiCode::CofReferenceMissing,
        "A merchant-initiated charge needs the network transaction id of a setup charge: charge the card with SETUP_COF_* first, or send `reference`.",
    )
    .param("reference")
}

impl ChargeSource {
    /// The source an id names, by its prefix.
    pub fn parse(id: &str) -> Option<Self> {
        if id.starts_with("card_") {
            Some(ChargeSource::Card(id.to_owned()))
        } else if id.starts_with("tok_") {
            Some(ChargeSource::Token(id.to_owned()))
        } else {
            None
        }
    }

    /// The id as given.
    pub fn id(&self) -> &str {
        match self {
            ChargeSource::Token(id) | ChargeSource::Card(id) => id,
        }
    }

    /// Opens the source's card for `purpose`; `reference` is the network transaction id the
    /// request gave.
    pub fn resolve(
        &self,
        tx: &dyn Tx,
        principal: &Principal,
        purpose: Purpose,
        reference: Option<&str>,
        bins: Option<&BinTable>,
        now: i64,
    ) -> Work<Resolved> {
        let param = purpose.param();
        let mic = matches!(
            purpose,
            Purpose::Charge {
                merchant_initiated: true
            }
        );
        match self {
            ChargeSource::Card(id) => {
                let saved = card::saved(tx, principal, id, param)?;
                let key = card::card_key(principal, &saved)?;
                let plain = card::open(principal, &saved, &key)?;
                let reference = reference
                    .map(str::to_owned)
                    .or_else(|| saved.network_transaction_id.clone());
                if mic && reference.is_none() {
                    return abort(cof_reference_missing());
                }
                // A stored CVC is used by this charge (or forward) and deleted in this same
                // transaction; a merchant-initiated charge or a reveal never touches it.
                let cvc = if purpose.takes_cvc() {
                    card::take_cvc(tx, principal, &saved.id, &key, now)?
                } else {
                    None
                };
                Ok(Resolved {
                    plain,
                    summary: saved.summary,
                    issuer: saved.issuer,
                    card_id: Some(saved.id),
                    token_id: None,
                    cvc,
                    reference,
                })
            }
            ChargeSource::Token(id) if purpose == Purpose::Reveal => {
                if !ids::is_id(id, "tok_") {
                    return abort(ApiError::not_found(Some(param)));
                }
                let (token, plain) = token::peek(tx, principal, id, param, now)?;
                let Some(summary) = token.card else {
                    return abort(token::expired(param));
                };
                Ok(Resolved {
                    plain,
                    summary,
                    issuer: IssuerInfo::default(),
                    card_id: None,
                    token_id: None,
                    cvc: None,
                    reference: None,
                })
            }
            ChargeSource::Token(id) => {
                if mic && reference.is_none() {
                    return abort(cof_reference_missing());
                }
                let (token, mut plain) =
                    token::use_token(tx, principal, id, TokenType::Card, param, now)?;
                let Some(summary) = token.card else {
                    return abort(ApiError::not_found(Some(param)));
                };
                let cvc = if purpose.takes_cvc() {
                    plain.cvc.take()
                } else {
                    None
                };
                let issuer = match (bins, plain.number.as_ref()) {
                    (Some(b), Some(n)) => b.lookup(n.expose()),
                    _ => IssuerInfo::default(),
                };
                Ok(Resolved {
                    plain,
                    summary,
                    issuer,
                    card_id: None,
                    token_id: Some(token.id),
                    cvc,
                    reference: reference.map(str::to_owned),
                })
            }
        }
    }
}

/// A checked charge request.
#[derive(Debug)]
pub struct NewCharge {
    /// Minor units, 1 to 99 999 999.
    pub amount: i64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// The source as sent (kept on the Charge).
    pub source: String,
    /// Who is present and why.
    pub interaction: Interaction,
    /// A network transaction id to refer to.
    pub reference: Option<String>,
    /// `None` captures at once; `Some(secs)` only authorizes, for capture within `secs`.
    pub authorize_only: Option<i64>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct ChargeCard {
    /// The saved card's `card_…`, or `null` when a token paid.
    id: Option<String>,
    brand: String,
    last4: String,
    exp_month: u8,
    exp_year: u16,
    funding: Option<String>,
    country: Option<String>,
    #[schema(value_type = Option<String>)]
    cvc_check: Option<String>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Outcome {
    #[schema(value_type = String)]
    network_status: String,
    #[schema(value_type = Option<String>)]
    decline_code: Option<String>,
    network_transaction_id: Option<String>,
}

/// The charge's newest refunds, as Stripe embeds them.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ChargeRefunds)]
pub(crate) struct RefundList {
    #[schema(value_type = String, pattern = "^list$")]
    object: String,
    /// At most the 10 newest.
    #[schema(value_type = Vec<super::refund::RefundObject>)]
    data: Vec<serde_json::Value>,
    has_more: bool,
    /// `/v1/refunds?charge=ch_…`: all of them.
    url: String,
}

/// How many refunds a Charge object embeds.
const EMBEDDED_REFUNDS: usize = 10;

/// The Charge object, fields in DESIGN.md's order, and Stripe's names for capture and
/// refunds. Stored as the API answer, and read back to change when it is captured or refunded.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Charge)]
pub(crate) struct ChargeObject {
    /// `ch_…`.
    id: String,
    #[schema(value_type = String, pattern = "^charge$")]
    object: String,
    /// Authorized, in minor units.
    amount: i64,
    /// Captured so far: `amount` or less once captured, 0 before (and for a failed charge).
    amount_captured: i64,
    /// Refunded so far, at most `amount_captured`.
    amount_refunded: i64,
    currency: String,
    #[schema(value_type = String, pattern = "^(succeeded|failed)$")]
    status: String,
    /// Whether the charge was captured; `false` for an authorization (`capture: false`) until
    /// `POST /v1/charges/{id}/capture`.
    captured: bool,
    /// Until when an uncaptured authorization can be captured (Unix seconds); `null` once
    /// captured, or for a failed charge.
    capture_before: Option<i64>,
    /// Whether `amount_refunded` reached `amount_captured`.
    refunded: bool,
    refunds: RefundList,
    /// The `tok_…` or `card_…` charged.
    source: String,
    card: ChargeCard,
    outcome: Outcome,
    #[schema(value_type = String)]
    interaction: String,
    created: i64,
}

impl ChargeObject {
    /// The stored object.
    pub(crate) fn parse(text: &str) -> Work<Self> {
        serde_json::from_str(text).map_err(crypto_failed)
    }

    fn text(&self) -> Work<String> {
        serde_json::to_string(self).map_err(crypto_failed)
    }
}

/// A charge made: its object's JSON (the answer, as stored), status and decline code.
#[derive(Debug)]
pub struct Charged {
    /// The Charge object, JSON.
    pub object: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// Why the network declined.
    pub decline_code: Option<&'static str>,
}

/// Charges the source: opens it, asks the processor, and records the charge and its events.
pub fn charge(
    tx: &dyn Tx,
    principal: &Principal,
    c: &NewCharge,
    bins: Option<&BinTable>,
    now: i64,
) -> Work<Charged> {
    let acct = &principal.account_id;
    let id = ids::new_id("ch_");
    let Some(source) = ChargeSource::parse(&c.source) else {
        return abort(ApiError::not_found(Some("source")));
    };
    let purpose = Purpose::Charge {
        merchant_initiated: c.interaction.is_merchant_initiated(),
    };
    let card = source.resolve(tx, principal, purpose, c.reference.as_deref(), bins, now)?;
    let Some(number) = card.plain.number.as_ref() else {
        return abort(ApiError::not_found(Some("source")));
    };
    let summary = &card.summary;
    let decision = TestProcessor.authorize(
        &Authorization {
            number: number.expose(),
            exp_month: summary.exp_month,
            exp_year: summary.exp_year,
            cvc: card.cvc.as_ref().map(|s| s.expose()),
            amount: c.amount,
            currency: &c.currency,
            interaction: c.interaction,
            reference: card.reference.as_deref(),
        },
        now,
    );
    let status = if decision.approved {
        "succeeded"
    } else {
        "failed"
    };
    let captured = decision.approved && c.authorize_only.is_none();
    let object = ChargeObject {
        id: id.clone(),
        object: "charge".into(),
        amount: c.amount,
        amount_captured: if captured { c.amount } else { 0 },
        amount_refunded: 0,
        currency: c.currency.clone(),
        status: status.into(),
        captured,
        capture_before: c
            .authorize_only
            .filter(|_| decision.approved)
            .map(|secs| now.saturating_add(secs)),
        refunded: false,
        refunds: RefundList {
            object: "list".into(),
            data: Vec::new(),
            has_more: false,
            url: format!("/v1/refunds?charge={id}"),
        },
        source: c.source.clone(),
        card: ChargeCard {
            id: card.card_id.clone(),
            brand: summary.brand.clone(),
            last4: summary.last4.clone(),
            exp_month: summary.exp_month,
            exp_year: summary.exp_year,
            funding: card.issuer.funding.clone(),
            country: card.issuer.country.clone(),
            cvc_check: decision
                .cvc_check
                .map(|ok| if ok { "pass" } else { "fail" }.to_owned()),
        },
        outcome: Outcome {
            network_status: if decision.approved {
                "approved_by_network"
            } else {
                "declined_by_network"
            }
            .into(),
            decline_code: decision.decline_code.map(str::to_owned),
            network_transaction_id: decision.network_transaction_id.clone(),
        },
        interaction: c.interaction.as_str().into(),
        created: now,
    }
    .text()?;
    tx.insert_charge(&ChargeRecord {
        id: id.clone(),
        account_id: acct.clone(),
        object: object.clone(),
        created: now,
    })?;
    if let (Some(card_id), Some(ntid), true) = (
        &card.card_id,
        &decision.network_transaction_id,
        c.interaction.is_setup(),
    ) {
        tx.set_network_transaction_id(acct, card_id, ntid)?;
    }
    if let Some(token) = &card.token_id {
        tx.append_event(&event(
            acct,
            "token.used",
            json!({"token": token, "used_for": id}),
            now,
        ))?;
    }
    tx.append_event(&event(
        acct,
        if decision.approved {
            "charge.succeeded"
        } else {
            "charge.failed"
        },
        json!({
            "charge": id, "source": c.source, "amount": c.amount, "currency": c.currency,
            "interaction": c.interaction.as_str(), "decline_code": decision.decline_code,
            "cvc_used": card.cvc.is_some(), "captured": captured,
        }),
        now,
    ))?;
    Ok(Charged {
        object,
        status,
        decline_code: decision.decline_code,
    })
}

/// The account's charge, locked for the rest of the transaction; 404 naming `param` if there
/// is none.
fn locked(tx: &dyn Tx, account: &str, id: &str, param: &'static str) -> Work<ChargeObject> {
    if !ids::is_id(id, "ch_") {
        return abort(ApiError::not_found(Some(param)));
    }
    match tx.charge_for_update(account, id)? {
        Some(r) => ChargeObject::parse(&r.object),
        None => abort(ApiError::not_found(Some(param))),
    }
}

fn failed_charge(param: &'static str) -> ApiError {
    ApiError::invalid_request(
        ApiCode::ChargeNotCaptured,
        "This charge failed: nothing was authorized, so nothing can be captured or refunded.",
    )
    .param(param)
}

/// Captures an authorization: `amount` (the whole authorization by default) at most the
/// authorized amount; the rest is released. Answers the Charge object.
pub fn capture(
    tx: &dyn Tx,
    principal: &Principal,
    id: &str,
    amount: Option<i64>,
    now: i64,
) -> Work<String> {
    let acct = &principal.account_id;
    let mut c = locked(tx, acct, id, "id")?;
    if c.status != "succeeded" {
        return abort(failed_charge("id"));
    }
    if c.captured {
        return abort(ApiError::invalid_request(
            ApiCode::ChargeAlreadyCaptured,
            "This charge was captured already.",
        ));
    }
    if c.capture_before.is_some_and(|until| now >= until) {
        return abort(ApiError::invalid_request(
            ApiCode::ChargeExpiredForCapture,
            "This charge's authorization expired before it was captured; charge the card again.",
        ));
    }
    let amount = amount.unwrap_or(c.amount);
    if amount > c.amount {
        return abort(
            ApiError::invalid_request(
                ApiCode::ParameterInvalid,
                "amount must be at most the charge's authorized amount.",
            )
            .param("amount"),
        );
    }
    let ntid = c.outcome.network_transaction_id.clone().unwrap_or_default();
    if !TestProcessor.capture(&ntid, amount, now) {
        return abort(ApiError::internal());
    }
    c.captured = true;
    c.amount_captured = amount;
    c.capture_before = None;
    let text = c.text()?;
    tx.update_charge(acct, id, &text)?;
    tx.append_event(&event(
        acct,
        "charge.captured",
        json!({"charge": id, "amount_captured": amount, "released": c.amount - amount}),
        now,
    ))?;
    Ok(text)
}

/// Refunds part or all of a captured charge: records the refund, and updates the charge's
/// `amount_refunded`, `refunded` and `refunds` under its lock, so that concurrent refunds
/// together never exceed what was captured. Answers the Refund object.
pub fn refund(
    tx: &dyn Tx,
    principal: &Principal,
    r: &super::refund::NewRefund,
    now: i64,
) -> Work<String> {
    let acct = &principal.account_id;
    let mut c = locked(tx, acct, &r.charge, "charge")?;
    if c.status != "succeeded" {
        return abort(failed_charge("charge"));
    }
    if !c.captured {
        return abort(
            ApiError::invalid_request(
                ApiCode::ChargeNotCaptured,
                "This charge is authorized, not captured: capture it first (or let the authorization expire).",
            )
            .param("charge"),
        );
    }
    let left = c.amount_captured - c.amount_refunded;
    if left <= 0 {
        return abort(
            ApiError::invalid_request(
                ApiCode::ChargeAlreadyRefunded,
                "This charge was refunded in full already.",
            )
            .param("charge"),
        );
    }
    let amount = r.amount.unwrap_or(left);
    if amount > left {
        return abort(
            ApiError::invalid_request(
                ApiCode::ParameterInvalid,
                "amount must be at most what is left to refund of the charge (amount_captured - amount_refunded).",
            )
            .param("amount"),
        );
    }
    let ntid = c.outcome.network_transaction_id.clone().unwrap_or_default();
    if !TestProcessor.refund(&ntid, amount, now) {
        return abort(ApiError::internal());
    }
    let (record, object) = super::refund::record(principal, r, &c.id, amount, &c.currency, now)?;
    tx.insert_refund(&record)?;
    c.amount_refunded += amount;
    c.refunded = c.amount_refunded == c.amount_captured;
    c.refunds.data.insert(0, object);
    if c.refunds.data.len() > EMBEDDED_REFUNDS {
        c.refunds.data.truncate(EMBEDDED_REFUNDS);
        c.refunds.has_more = true;
    }
    tx.update_charge(acct, &c.id, &c.text()?)?;
    tx.append_event(&event(
        acct,
        "charge.refunded",
        json!({
            "charge": c.id, "refund": record.id, "amount": amount,
            "amount_refunded": c.amount_refunded, "refunded": c.refunded,
        }),
        now,
    ))?;
    Ok(record.object)
}

/// Reveals the number behind a source and records who saw it. The event is committed before
/// the number leaves the vault.
pub fn reveal(
    tx: &dyn Tx,
    principal: &Principal,
    source: &str,
    now: i64,
) -> Work<(Secret, CardSummary)> {
    let Some(parsed) = ChargeSource::parse(source) else {
        return abort(ApiError::not_found(Some("token")));
    };
    if let ChargeSource::Card(id) = &parsed {
        if !ids::is_id(id, "card_") {
            return abort(ApiError::not_found(Some("token")));
        }
    }
    let card = parsed.resolve(tx, principal, Purpose::Reveal, None, None, now)?;
    let Some(number) = card.plain.number else {
        return abort(ApiError::not_found(Some("token")));
    };
    tx.append_event(&event(
        &principal.account_id,
        "card.detokenized",
        json!({"source": source, "key": principal.key_ref}),
        now,
    ))?;
    Ok((number, card.summary))
}
