//! Refunds: the Refund object, made inside [`super::charge::refund`]'s transaction while the
//! charge is locked.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Work, crypto_failed};
use crate::Principal;
use crate::ids;
use crate::store::RefundRecord;

/// A checked refund request.
#[derive(Debug)]
pub struct NewRefund {
    /// The `ch_…` to refund.
    pub charge: String,
    /// Minor units; `None` refunds what is left.
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
    /// The merchant's metadata, checked, as JSON (an object of strings).
    pub metadata: String,
}

/// The Refund object, in Stripe's shape.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Refund)]
pub(crate) struct RefundObject<'a> {
    /// `re_…`.
    id: &'a str,
    #[schema(value_type = String, pattern = "^refund$")]
    object: &'static str,
    /// Minor units.
    amount: i64,
    /// The refunded `ch_…`.
    charge: &'a str,
    currency: &'a str,
    #[schema(value_type = Option<String>, pattern = "^(duplicate|fraudulent|requested_by_customer)$")]
    reason: Option<&'a str>,
    #[schema(value_type = std::collections::HashMap<String, String>)]
    metadata: &'a RawValue,
    /// The test processor refunds at once.
    #[schema(value_type = String, pattern = "^succeeded$")]
    status: &'static str,
    created: i64,
}

/// The refund's record and its object (the same JSON), for a charge already checked.
pub(super) fn record(
    principal: &Principal,
    r: &NewRefund,
    charge: &str,
    amount: i64,
    currency: &str,
    now: i64,
) -> Work<(RefundRecord, serde_json::Value)> {
    let id = ids::new_id("re_");
    let metadata = RawValue::from_string(r.metadata.clone()).map_err(crypto_failed)?;
    let object = RefundObject {
        id: &id,
        object: "refund",
        amount,
        charge,
        currency,
        reason: r.reason.as_deref(),
        metadata: &metadata,
        status: "succeeded",
        created: now,
    };
    let text = serde_json::to_string(&object).map_err(crypto_failed)?;
    let value = serde_json::to_value(&object).map_err(crypto_failed)?;
    Ok((
        RefundRecord {
            id: id.clone(),
            account_id: principal.account_id.clone(),
            charge_id: charge.to_owned(),
            object: text,
            created: now,
        },
        value,
    ))
}
