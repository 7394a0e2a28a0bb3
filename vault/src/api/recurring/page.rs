//! Stripe's list parameters for the recurring charges list: `limit` (1 to 100, default 10),
//! `starting_after`, `ending_before` and `created[gt|gte|lt|lte]`. (The charges and refunds
//! lists have a helper of their own with the same semantics; the two are to become one.)

use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::{invalid, page_limit};
use crate::error::ApiError;
use crate::store::RecurringPage;

/// A list's query string, as sent.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// 1 to 100; 10 by default.
    limit: Option<String>,
    /// An id: the page after (older than) it.
    starting_after: Option<String>,
    /// An id: the page before (newer than) it.
    ending_before: Option<String>,
    /// Only objects created at this Unix time.
    created: Option<String>,
    /// Only objects created after this Unix time.
    #[serde(rename = "created[gt]")]
    #[param(rename = "created[gt]")]
    created_gt: Option<String>,
    /// Only objects created at or after this Unix time.
    #[serde(rename = "created[gte]")]
    #[param(rename = "created[gte]")]
    created_gte: Option<String>,
    /// Only objects created before this Unix time.
    #[serde(rename = "created[lt]")]
    #[param(rename = "created[lt]")]
    created_lt: Option<String>,
    /// Only objects created at or before this Unix time.
    #[serde(rename = "created[lte]")]
    #[param(rename = "created[lte]")]
    created_lte: Option<String>,
}

fn unix(value: Option<&str>, param: &'static str) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|t| *t >= 0)
                .ok_or_else(|| invalid(param, "created bounds must be Unix times in seconds."))
        })
        .transpose()
}

fn cursor(
    value: Option<String>,
    prefix: &str,
    param: &'static str,
) -> Result<Option<String>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if crate::ids::is_id(&v, prefix) => Ok(Some(v)),
        Some(_) => Err(invalid(
            param,
            "The cursor must be the id of an object of this list.",
        )),
        None => Ok(None),
    }
}

impl PageParams {
    /// The page to read, asking one row more than the limit (to learn `has_more`), or the
    /// first parameter that does not parse. Ids must start with `prefix`.
    pub(crate) fn parse(self, prefix: &str) -> Result<(RecurringPage, usize), ApiError> {
        let limit = page_limit(self.limit.as_deref())?;
        let starting_after = cursor(self.starting_after, prefix, "starting_after")?;
        let ending_before = cursor(self.ending_before, prefix, "ending_before")?;
        if starting_after.is_some() && ending_before.is_some() {
            return Err(invalid(
                "ending_before",
                "Send starting_after or ending_before, not both.",
            ));
        }
        let exact = unix(self.created.as_deref(), "created")?;
        let gt = unix(self.created_gt.as_deref(), "created[gt]")?;
        let gte = unix(self.created_gte.as_deref(), "created[gte]")?;
        let lt = unix(self.created_lt.as_deref(), "created[lt]")?;
        let lte = unix(self.created_lte.as_deref(), "created[lte]")?;
        let lower = [exact, gt.map(|t| t.saturating_add(1)), gte]
            .into_iter()
            .flatten()
            .max();
        let upper = [exact, lt.map(|t| t.saturating_sub(1)), lte]
            .into_iter()
            .flatten()
            .min();
        Ok((
            RecurringPage {
                limit: limit + 1,
                starting_after,
                ending_before,
                created_gte: lower,
                created_lte: upper,
            },
            limit,
        ))
    }
}
