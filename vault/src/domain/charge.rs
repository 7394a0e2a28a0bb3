//! Charges, and the source a charge (or a detokenize, or a forward) names: a token or a saved
//! card.
//!
//! A charge runs in one transaction: the token is consumed (or the saved card's CVC taken),
//! the processor decides, and the charge, the card's network transaction id and the audit
//! events are written. A declined charge is a Charge too (`status: "failed"`), so the caller
//! always gets the object it can show and look up again.

use cardseal::Secret;
use serde::Serialize;
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
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ChargeCard<'a> {
    /// The saved card's `card_…`, or `null` when a token paid.
    id: Option<&'a str>,
    brand: &'a str,
    last4: &'a str,
    exp_month: u8,
    exp_year: u16,
    funding: Option<&'a str>,
    country: Option<&'a str>,
    #[schema(value_type = Option<String>)]
    cvc_check: Option<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Outcome<'a> {
    #[schema(value_type = String)]
    network_status: &'static str,
    #[schema(value_type = Option<String>)]
    decline_code: Option<&'static str>,
    network_transaction_id: Option<&'a str>,
}

/// The Charge object, fields in DESIGN.md's order.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Charge)]
pub(crate) struct ChargeObject<'a> {
    /// `ch_…`.
    id: &'a str,
    #[schema(value_type = String, pattern = "^charge$")]
    object: &'static str,
    amount: i64,
    currency: &'a str,
    #[schema(value_type = String, pattern = "^(succeeded|failed)$")]
    status: &'static str,
    /// The `tok_…` or `card_…` charged.
    source: &'a str,
    card: ChargeCard<'a>,
    outcome: Outcome<'a>,
    #[schema(value_type = String)]
    interaction: &'static str,
    created: i64,
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
    let object = serde_json::to_string(&ChargeObject {
        id: &id,
        object: "charge",
        amount: c.amount,
        currency: &c.currency,
        status,
        source: &c.source,
        card: ChargeCard {
            id: card.card_id.as_deref(),
            brand: &summary.brand,
            last4: &summary.last4,
            exp_month: summary.exp_month,
            exp_year: summary.exp_year,
            funding: card.issuer.funding.as_deref(),
            country: card.issuer.country.as_deref(),
            cvc_check: decision
                .cvc_check
                .map(|ok| if ok { "pass" } else { "fail" }),
        },
        outcome: Outcome {
            network_status: if decision.approved {
                "approved_by_network"
            } else {
                "declined_by_network"
            },
            decline_code: decision.decline_code,
            network_transaction_id: decision.network_transaction_id.as_deref(),
        },
        interaction: c.interaction.as_str(),
        created: now,
    })
    .map_err(crypto_failed)?;
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
            "cvc_used": card.cvc.is_some(),
        }),
        now,
    ))?;
    Ok(Charged {
        object,
        status,
        decline_code: decision.decline_code,
    })
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
