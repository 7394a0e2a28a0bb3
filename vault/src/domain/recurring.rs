//! Recurring charges the vault runs: a schedule on a saved card, and its runs.
//!
//! Periods are numbered from 0; period `k` is due `k × interval_count` intervals after
//! `start`. Months and years are counted on the calendar and anchored on the start's day: a
//! schedule started on 31 January is due on 28 (or 29) February, then on 31 March.
//!
//! A run is one transaction: the schedule's row is locked, the run's claim row
//! (schedule, period, attempt) is inserted, the charge is made through
//! [`charge::charge`], and the schedule's next state and the audit events are written. The
//! claim's primary key, not timing, is what makes each run happen once: a second instance
//! claiming the same run finds the row and does nothing, and a process killed before the
//! commit leaves neither the claim nor the charge behind.
//!
//! A declined run is retried [`RETRY_GAPS`] later (1, 3 and 5 days after the due date), then
//! the period is given up and the schedule is `past_due` until a later period is paid. A vault
//! that was down through due dates runs the latest due period once; the earlier ones it missed
//! are recorded as skipped, never charged in a burst.

use serde::Serialize;
use serde_json::json;
use time::{Date, Month, OffsetDateTime};

use super::charge::{self, NewCharge};
use super::{Work, abort, card, crypto_failed, event};
use crate::Principal;
use crate::bins::BinTable;
use crate::error::{ApiCode, ApiError};
use crate::ids;
use crate::processor::Interaction;
use crate::store::{RecurringRecord, RecurringRunRecord, Tx};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The waits before each retry of a declined period, each counted from the run before it:
/// with the vault up, retries fall 1, 3 and 5 days after the due date. A retry that would
/// fall on or after the next period's due date is not made.
pub const RETRY_GAPS: [i64; 3] = [DAY, 2 * DAY, 2 * DAY];

/// How far in the past `start` may be: a day, so that a clock a little behind, or a schedule
/// meant for "today", is accepted, but years of back-charges are not.
pub const MAX_START_AGE: i64 = DAY;

/// How often a schedule charges: one of Stripe's four intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// Every `interval_count` days.
    Day,
    /// Every `interval_count` weeks.
    Week,
    /// Every `interval_count` calendar months, on the start's day (or the month's last).
    Month,
    /// Every `interval_count` years, on the start's date (28 February for 29 February).
    Year,
}

impl Interval {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Interval::Day),
            "week" => Some(Interval::Week),
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    /// The largest `interval_count`: three years, as Stripe allows.
    pub fn max_count(self) -> i64 {
        match self {
            Interval::Day => 1095,
            Interval::Week => 156,
            Interval::Month => 36,
            Interval::Year => 3,
        }
    }
}

/// `months` calendar months after `start`, on the start's day of the month or the month's
/// last day, at the start's time of day (UTC).
fn add_months(start: i64, months: i64) -> Option<i64> {
    let at = OffsetDateTime::from_unix_timestamp(start).ok()?;
    let index = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + months;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let day = at.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(date.with_time(at.time()).assume_utc().unix_timestamp())
}

/// When period `k` of a schedule starting at `start` is due, whether or not it is in the term.
pub fn due_at(interval: Interval, interval_count: i64, start: i64, k: i64) -> Option<i64> {
    let steps = k.checked_mul(interval_count)?;
    match interval {
        Interval::Day => start.checked_add(steps.checked_mul(DAY)?),
        Interval::Week => start.checked_add(steps.checked_mul(7 * DAY)?),
        Interval::Month => add_months(start, steps),
        Interval::Year => add_months(start, steps.checked_mul(12)?),
    }
}

/// When period `k` of `r` is due, or `None` when the schedule has no period `k` (past its
/// `count`, or due at or after its `end`).
pub fn due(r: &RecurringRecord, k: i64) -> Option<i64> {
    let interval = Interval::parse(&r.interval)?;
    if r.count.is_some_and(|c| k >= c) {
        return None;
    }
    let at = due_at(interval, r.interval_count, r.start, k)?;
    r.end_at.is_none_or(|end| at < end).then_some(at)
}

/// A checked schedule request.
#[derive(Debug)]
pub struct NewRecurring {
    /// The saved card, `card_…`.
    pub source: String,
    /// Minor units per period.
    pub amount: i64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// How often.
    pub interval: Interval,
    /// Intervals per period, 1 to [`Interval::max_count`].
    pub interval_count: i64,
    /// The first period's due time.
    pub start: i64,
    /// No period is due at or after this.
    pub end: Option<i64>,
    /// How many periods.
    pub count: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RunObject<'a> {
    /// The `ch_…` made (a Charge, succeeded or failed).
    id: Option<&'a str>,
    /// The period charged, from 0.
    period: i64,
    /// 0 for the period's first run, then 1, 2 and 3 for its retries.
    attempt: i64,
    #[schema(value_type = String, pattern = "^(succeeded|failed)$")]
    status: &'a str,
    created: i64,
}

/// The `recurring_charge` object.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RecurringCharge)]
pub(crate) struct RecurringObject<'a> {
    /// `rc_…`.
    id: &'a str,
    #[schema(value_type = String, pattern = "^recurring_charge$")]
    object: &'static str,
    #[schema(value_type = String, pattern = "^(active|past_due|canceled|completed)$")]
    status: &'a str,
    /// The saved card charged.
    source: &'a str,
    amount: i64,
    currency: &'a str,
    #[schema(value_type = String, pattern = "^(day|week|month|year)$")]
    interval: &'a str,
    interval_count: i64,
    /// The first period's due time (Unix seconds).
    start: i64,
    /// No period is due at or after this time.
    end: Option<i64>,
    /// How many periods the schedule has.
    count: Option<i64>,
    /// When the next run is due (a retry's time while retrying); `null` once canceled,
    /// completed, or past due with no period left.
    next_run: Option<i64>,
    /// The period the next run charges, from 0.
    period: i64,
    /// Declined runs of that period so far.
    attempt: i64,
    /// The charges made so far, oldest first, declined ones included.
    charges: Vec<RunObject<'a>>,
    created: i64,
    canceled_at: Option<i64>,
}

/// The schedule's API object, JSON, with its runs.
pub fn object(tx: &dyn Tx, r: &RecurringRecord) -> Work<String> {
    let runs = tx.recurring_runs(&r.id)?;
    let charges = runs
        .iter()
        .map(|run| RunObject {
            id: run.charge_id.as_deref(),
            period: run.period,
            attempt: run.attempt,
            status: &run.status,
            created: run.created,
        })
        .collect();
    serde_json::to_string(&RecurringObject {
        id: &r.id,
        object: "recurring_charge",
        status: &r.status,
        source: &r.source,
        amount: r.amount,
        currency: &r.currency,
        interval: &r.interval,
        interval_count: r.interval_count,
        start: r.start,
        end: r.end_at,
        count: r.count,
        next_run: r.next_run,
        period: r.period,
        attempt: r.attempt,
        charges,
        created: r.created,
        canceled_at: r.canceled_at,
    })
    .map_err(crypto_failed)
}

/// Creates a schedule on a saved card; when its start has come, its first run happens in the
/// same transaction (the customer is present: the card's CVC, if kept, is used). Returns the
/// schedule and, if the first run was made, its charge's status and decline code.
pub fn create(
    tx: &dyn Tx,
    principal: &Principal,
    n: &NewRecurring,
    bins: Option<&BinTable>,
    now: i64,
) -> Work<(RecurringRecord, Option<Outcome>)> {
    let acct = &principal.account_id;
    if !ids::is_id(&n.source, "card_") {
        return abort(ApiError::not_found(Some("source")));
    }
    card::saved(tx, principal, &n.source, "source")?;
    let mut r = RecurringRecord {
        id: ids::new_id("rc_"),
        account_id: acct.clone(),
        source: n.source.clone(),
        amount: n.amount,
        currency: n.currency.clone(),
        interval: n.interval.as_str().to_owned(),
        interval_count: n.interval_count,
        start: n.start,
        end_at: n.end,
        count: n.count,
        status: "active".to_owned(),
        period: 0,
        attempt: 0,
        next_run: None,
        created: now,
        canceled_at: None,
    };
    r.next_run = due(&r, 0);
    if r.next_run.is_none() {
        return abort(
            ApiError::invalid_request(
                ApiCode::ParameterInvalid,
                "end must be after start, so that the schedule has a period.",
            )
            .param("end"),
        );
    }
    tx.insert_recurring(&r)?;
    tx.append_event(&event(
        acct,
        "recurring_charge.created",
        json!({
            "recurring_charge": r.id, "source": r.source, "amount": r.amount,
            "currency": r.currency, "interval": r.interval, "interval_count": r.interval_count,
            "start": r.start, "end": r.end_at, "count": r.count,
        }),
        now,
    ))?;
    let first = run(tx, principal, &r, bins, now)?;
    let charged = first.as_ref().and_then(|f| f.charged);
    if let Some(f) = first {
        r = f.schedule;
    }
    Ok((r, charged))
}

/// What a run did: the schedule's new state, and the charge's status and decline code when it
/// made one (not when the card was gone).
#[derive(Debug)]
pub struct Run {
    /// The schedule after the run.
    pub schedule: RecurringRecord,
    /// `succeeded` or `failed`, and why it was declined.
    pub charged: Option<Outcome>,
}

/// A run's charge: `succeeded` or `failed`, and the decline code.
pub type Outcome = (&'static str, Option<&'static str>);

/// Makes the run of `r` that is due at `now`, if one is; `None` when nothing was due or
/// another process made the run first. `r` must have been read with its row locked in this
/// transaction.
pub fn run(
    tx: &dyn Tx,
    principal: &Principal,
    r: &RecurringRecord,
    bins: Option<&BinTable>,
    now: i64,
) -> Work<Option<Run>> {
    if r.next_run.is_none_or(|t| t > now) || !matches!(r.status.as_str(), "active" | "past_due") {
        return Ok(None);
    }
    let acct = &principal.account_id;
    let mut next = r.clone();
    // Down through due dates: only the latest due period runs. A period whose retries were
    // cut short by this is given up (past due); one never tried is skipped.
    let mut skipped = Vec::new();
    while let Some(later) = due(&next, next.period + 1).filter(|t| *t <= now) {
        if next.attempt > 0 {
            give_up(tx, acct, &mut next, now)?;
        } else {
            skipped.push(next.period);
        }
        next.period += 1;
        next.attempt = 0;
        next.next_run = Some(later);
    }
    if !skipped.is_empty() {
        tx.append_event(&event(
            acct,
            "recurring_charge.periods_skipped",
            json!({"recurring_charge": r.id, "periods": skipped}),
            now,
        ))?;
    }
    let Some(card) = tx.card(acct, &r.source)? else {
        // The card was deleted: nothing can be charged again.
        next.status = "canceled".to_owned();
        next.next_run = None;
        next.canceled_at = Some(now);
        tx.update_recurring(&next)?;
        tx.append_event(&event(
            acct,
            "recurring_charge.canceled",
            json!({"recurring_charge": r.id, "reason": "card_deleted"}),
            now,
        ))?;
        return Ok(Some(Run {
            schedule: next,
            charged: None,
        }));
    };
    let mut claim = RecurringRunRecord {
        recurring_id: r.id.clone(),
        period: next.period,
        attempt: next.attempt,
        charge_id: None,
        status: "pending".to_owned(),
        created: now,
    };
    if !tx.claim_recurring_run(&claim)? {
        return Ok(None);
    }
    // The first charge of a card not set up yet sets it up, customer-initiated; every later
    // one is merchant-initiated on the network transaction id that setup stored.
    let interaction = if card.network_transaction_id.is_some() {
        Interaction::CofRecurring
    } else {
        Interaction::SetupCofRecurring
    };
    let charged = charge::charge(
        tx,
        principal,
        &NewCharge {
            amount: r.amount,
            currency: r.currency.clone(),
            source: r.source.clone(),
            interaction,
            reference: None,
            // A renewal is captured at once: nobody is there to capture it later.
            authorize_only: None,
        },
        bins,
        now,
    )?;
    let charge_id = serde_json::from_str::<serde_json::Value>(&charged.object)
        .map_err(crypto_failed)?
        .get("id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    claim.charge_id = charge_id.clone();
    claim.status = charged.status.to_owned();
    tx.finish_recurring_run(&claim)?;
    let step = json!({
        "recurring_charge": r.id, "charge": charge_id, "period": next.period,
        "attempt": next.attempt, "interaction": interaction.as_str(),
        "decline_code": charged.decline_code,
    });
    if charged.status == "succeeded" {
        tx.append_event(&event(acct, "recurring_charge.paid", step, now))?;
        next.status = "active".to_owned();
        next.period += 1;
        next.attempt = 0;
        next.next_run = due(&next, next.period);
    } else {
        tx.append_event(&event(acct, "recurring_charge.declined", step, now))?;
        let gap = usize::try_from(next.attempt)
            .ok()
            .and_then(|a| RETRY_GAPS.get(a).copied());
        let retry_at = gap
            .map(|g| now + g)
            .filter(|t| due(&next, next.period + 1).is_none_or(|following| *t < following));
        if let Some(at) = retry_at {
            next.attempt += 1;
            next.next_run = Some(at);
            tx.append_event(&event(
                acct,
                "recurring_charge.retry_scheduled",
                json!({"recurring_charge": r.id, "period": next.period, "attempt": next.attempt, "at": at}),
                now,
            ))?;
        } else {
            give_up(tx, acct, &mut next, now)?;
            next.period += 1;
            next.attempt = 0;
            next.next_run = due(&next, next.period);
        }
    }
    if next.next_run.is_none() && next.status == "active" {
        next.status = "completed".to_owned();
        tx.append_event(&event(
            acct,
            "recurring_charge.completed",
            json!({"recurring_charge": r.id, "periods": next.period}),
            now,
        ))?;
    }
    tx.update_recurring(&next)?;
    Ok(Some(Run {
        schedule: next,
        charged: Some((charged.status, charged.decline_code)),
    }))
}

/// The current period of `r` is given up unpaid: the schedule is past due.
fn give_up(tx: &dyn Tx, acct: &str, r: &mut RecurringRecord, now: i64) -> Work<()> {
    r.status = "past_due".to_owned();
    tx.append_event(&event(
        acct,
        "recurring_charge.past_due",
        json!({"recurring_charge": r.id, "period": r.period, "attempts": r.attempt + 1}),
        now,
    ))?;
    Ok(())
}

/// Cancels a schedule: no run is made after this. Canceling a canceled or completed schedule
/// changes nothing and answers it as it is.
pub fn cancel(tx: &dyn Tx, principal: &Principal, id: &str, now: i64) -> Work<RecurringRecord> {
    let acct = &principal.account_id;
    let Some(mut r) = tx.recurring(acct, id, true)? else {
        return abort(ApiError::not_found(Some("id")));
    };
    if matches!(r.status.as_str(), "canceled" | "completed") {
        return Ok(r);
    }
    r.status = "canceled".to_owned();
    r.next_run = None;
    r.canceled_at = Some(now);
    tx.update_recurring(&r)?;
    tx.append_event(&event(
        acct,
        "recurring_charge.canceled",
        json!({"recurring_charge": r.id, "reason": "requested"}),
        now,
    ))?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2027-01-31T10:00:00Z.
    const JAN_31: i64 = 1_801_389_600;

    fn ymd(t: i64) -> (i32, u8, u8) {
        let d = OffsetDateTime::from_unix_timestamp(t).unwrap();
        (d.year(), u8::from(d.month()), d.day())
    }

    #[test]
    fn month_ends_anchor_on_the_start_day() {
        assert_eq!(ymd(JAN_31), (2027, 1, 31));
        let months: Vec<_> = (0..4)
            .map(|k| ymd(due_at(Interval::Month, 1, JAN_31, k).unwrap()))
            .collect();
        assert_eq!(
            months,
            [(2027, 1, 31), (2027, 2, 28), (2027, 3, 31), (2027, 4, 30)]
        );
        // A leap year's February has 29 days.
        let leap = due_at(Interval::Month, 1, JAN_31, 13).unwrap();
        assert_eq!(ymd(leap), (2028, 2, 29));
        // The time of day is kept.
        assert_eq!(leap.rem_euclid(DAY), JAN_31.rem_euclid(DAY));
    }

    #[test]
    fn years_from_29_february_fall_on_28_february() {
        let feb_29 = due_at(Interval::Month, 1, JAN_31, 13).unwrap();
        let next = due_at(Interval::Year, 1, feb_29, 1).unwrap();
        assert_eq!(ymd(next), (2029, 2, 28));
        assert_eq!(
            ymd(due_at(Interval::Year, 1, feb_29, 4).unwrap()),
            (2032, 2, 29)
        );
    }

    #[test]
    fn days_and_weeks_are_fixed_lengths() {
        assert_eq!(due_at(Interval::Day, 3, 100, 2), Some(100 + 6 * DAY));
        assert_eq!(due_at(Interval::Week, 2, 100, 3), Some(100 + 42 * DAY));
        assert_eq!(due_at(Interval::Day, 1, 0, i64::MAX), None);
    }
}
