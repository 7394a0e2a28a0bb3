//! Recurring charges the vault runs (`/v1/recurring/charges`): calendar months, the retry
//! schedule and `past_due`, cancel, catch-up once after downtime, exactly one run per period
//! with two instances on one database, and a `kill -9` in the middle of runs. The clock is the
//! test's: it is moved, never waited for. On PostgreSQL when `CARDSEAL_TEST_DATABASE_URL` is
//! set, else on SQLite.

#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use cardseal_vault::AppState;
use cardseal_vault::clock::ManualClock;
use cardseal_vault::crypto::MasterKey;
use cardseal_vault::recurring::run_due;
use cardseal_vault::store::postgres::PostgresStore;
use cardseal_vault::store::{self, Store};
use serde_json::{Value, json};
use support::*;

const VISA: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const DAY: i64 = 86_400;

/// 2027-01-31T10:00:00Z.
const JAN_31_2027: i64 = 1_801_389_600;

async fn save_card(v: &TestVault, number: &str) -> String {
    let tok = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(number, "123") }),
        )
        .await;
    assert_eq!(tok.status, 200, "{}", String::from_utf8_lossy(&tok.body));
    let r = v
        .call(post_json(
            "/v1/cards",
            &v.account.secret_key,
            &json!({"token": tok.json()["id"]}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn schedule(v: &TestVault, body: Value) -> Reply {
    v.call(post_json(
        "/v1/recurring/charges",
        &v.account.secret_key,
        &body,
    ))
    .await
}

async fn created(v: &TestVault, body: Value) -> Value {
    let r = schedule(v, body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["object"], "recurring_charge");
    assert!(j["id"].as_str().unwrap().starts_with("rc_"));
    j
}

async fn get(v: &TestVault, id: &str) -> Value {
    let r = v
        .get(
            &format!("/v1/recurring/charges/{id}"),
            &v.account.secret_key,
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn charge(v: &TestVault, id: &Value) -> Value {
    let r = v
        .get(
            &format!("/v1/charges/{}", id.as_str().unwrap()),
            &v.account.secret_key,
        )
        .await;
    assert_eq!(r.status, 200);
    r.json()
}

/// One upkeep tick at the clock's time.
async fn tick(state: &AppState) -> usize {
    let ran = run_due(state).await.unwrap();
    assert_eq!(ran.failed, 0);
    ran.runs
}

/// The account's event types, oldest first, of recurring charges only.
async fn recurring_events(v: &TestVault) -> Vec<String> {
    let account = v.account.account.clone();
    store::read(v.store.as_ref(), |tx| tx.all_events())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.account_id == account && e.event_type.starts_with("recurring_charge."))
        .map(|e| e.event_type)
        .collect()
}

fn ymd(t: i64) -> (i64, i64, i64) {
    // Days to civil date (Howard Hinnant's algorithm), so the test does not reuse the code
    // under test.
    let z = t.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test]
async fn month_ends_follow_the_calendar_and_later_runs_are_merchant_initiated() {
    let v = TestVault::new().await;
    // Saved half an hour before the start: its CVC (kept an hour) is still there.
    v.clock.set(JAN_31_2027 - 1800);
    let card = save_card(&v, VISA).await;
    let rc = created(
        &v,
        json!({"source": card, "amount": 990, "currency": "eur", "interval": "month", "start": JAN_31_2027}),
    )
    .await;
    // Not due yet: nothing charged.
    assert_eq!(rc["status"], "active");
    assert_eq!(rc["charges"], json!([]));
    assert_eq!(rc["next_run"], JAN_31_2027);
    let id = rc["id"].as_str().unwrap().to_owned();

    let mut dates = Vec::new();
    for _ in 0..4 {
        let due = get(&v, &id).await["next_run"].as_i64().unwrap();
        dates.push(ymd(due));
        v.clock.set(due - 1);
        assert_eq!(tick(&v.state).await, 0, "charged before its due time");
        v.clock.set(due);
        assert_eq!(tick(&v.state).await, 1);
        // A second tick at the same time finds nothing due.
        assert_eq!(tick(&v.state).await, 0);
    }
    assert_eq!(
        dates,
        [(2027, 1, 31), (2027, 2, 28), (2027, 3, 31), (2027, 4, 30)]
    );
    // The vault's own charges are counted like the API's.
    assert!(
        v.metrics()
            .await
            .contains("cardseal_charges_total{status=\"succeeded\",decline_code=\"\"} 4")
    );
    let rc = get(&v, &id).await;
    assert_eq!(ymd(rc["next_run"].as_i64().unwrap()), (2027, 5, 31));
    let charges = rc["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 4);
    for (k, c) in charges.iter().enumerate() {
        assert_eq!(c["period"], k);
        assert_eq!(c["status"], "succeeded");
        let ch = charge(&v, &c["id"]).await;
        assert_eq!(ch["amount"], 990);
        assert_eq!(ch["source"], card.as_str());
        if k == 0 {
            // The first charge sets the card up, customer-initiated, with the CVC it kept.
            assert_eq!(ch["interaction"], "SETUP_COF_RECURRING");
            assert_eq!(ch["card"]["cvc_check"], "pass");
        } else {
            assert_eq!(ch["interaction"], "COF_RECURRING");
            assert_eq!(
                ch["card"]["cvc_check"],
                Value::Null,
                "a later run sent a CVC"
            );
        }
    }
}

#[tokio::test]
async fn a_card_already_set_up_starts_with_a_merchant_initiated_charge() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let setup = v
        .call(post_json(
            "/v1/charges",
            &v.account.secret_key,
            &json!({"amount": 100, "currency": "eur", "source": card, "interaction": "SETUP_COF_ONSESSION"}),
        ))
        .await;
    assert_eq!(setup.json()["status"], "succeeded");
    let rc = created(
        &v,
        json!({"source": card, "amount": 500, "currency": "usd", "interval": "week", "count": 2}),
    )
    .await;
    let first = &rc["charges"][0];
    assert_eq!(first["status"], "succeeded");
    let ch = charge(&v, &first["id"]).await;
    assert_eq!(ch["interaction"], "COF_RECURRING");
    assert_eq!(rc["next_run"], rc["start"].as_i64().unwrap() + 7 * DAY);
    // Two periods, then completed.
    v.clock.advance(7 * DAY);
    assert_eq!(tick(&v.state).await, 1);
    let rc = get(&v, rc["id"].as_str().unwrap()).await;
    assert_eq!(rc["status"], "completed");
    assert_eq!(rc["next_run"], Value::Null);
    assert_eq!(rc["charges"].as_array().unwrap().len(), 2);
    v.clock.advance(30 * DAY);
    assert_eq!(tick(&v.state).await, 0);
    assert!(
        recurring_events(&v)
            .await
            .contains(&"recurring_charge.completed".to_owned())
    );
}

#[tokio::test]
async fn a_declined_period_is_retried_after_1_3_and_5_days_then_past_due() {
    let v = TestVault::new().await;
    let card = save_card(&v, DECLINED).await;
    let start = v.now();
    let rc = created(
        &v,
        json!({"source": card, "amount": 1500, "currency": "eur", "interval": "month"}),
    )
    .await;
    let id = rc["id"].as_str().unwrap().to_owned();
    assert_eq!(rc["charges"][0]["status"], "failed");
    assert_eq!(rc["status"], "active");
    assert_eq!(rc["attempt"], 1);
    let mut retries = vec![rc["next_run"].as_i64().unwrap() - start];
    for _ in 0..2 {
        let due = get(&v, &id).await["next_run"].as_i64().unwrap();
        v.clock.set(due - 1);
        assert_eq!(tick(&v.state).await, 0);
        v.clock.set(due);
        assert_eq!(tick(&v.state).await, 1);
        retries.push(get(&v, &id).await["next_run"].as_i64().unwrap() - start);
    }
    assert_eq!(retries, [DAY, 3 * DAY, 5 * DAY]);
    v.clock.set(start + 5 * DAY);
    assert_eq!(tick(&v.state).await, 1);
    let rc = get(&v, &id).await;
    assert_eq!(rc["status"], "past_due");
    assert_eq!(rc["period"], 1);
    assert_eq!(rc["attempt"], 0);
    let next = rc["next_run"].as_i64().unwrap();
    assert_eq!(
        ymd(next).1,
        ymd(start).1 % 12 + 1,
        "the next period is next month's"
    );
    let attempts: Vec<_> = rc["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["period"].as_i64().unwrap(),
                c["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [(0, 0), (0, 1), (0, 2), (0, 3)]);
    // Every retry was of the setup charge: the card never got a network transaction id.
    for c in rc["charges"].as_array().unwrap() {
        let ch = charge(&v, &c["id"]).await;
        assert_eq!(ch["status"], "failed");
        assert_eq!(ch["interaction"], "SETUP_COF_RECURRING");
    }
    // Nothing more until the next period.
    v.clock.set(next - 1);
    assert_eq!(tick(&v.state).await, 0);
    // Each step is in the audit chain.
    let events = recurring_events(&v).await;
    let n = |t: &str| events.iter().filter(|e| *e == t).count();
    assert_eq!(n("recurring_charge.created"), 1);
    assert_eq!(n("recurring_charge.declined"), 4);
    assert_eq!(n("recurring_charge.retry_scheduled"), 3);
    assert_eq!(n("recurring_charge.past_due"), 1);
    assert_eq!(n("recurring_charge.paid"), 0);
    // The next period runs as scheduled, and is retried again.
    v.clock.set(next);
    assert_eq!(tick(&v.state).await, 1);
    let rc = get(&v, &id).await;
    assert_eq!(rc["period"], 1);
    assert_eq!(rc["attempt"], 1);
    assert_eq!(rc["next_run"], next + DAY);
}

#[tokio::test]
async fn retries_of_a_daily_schedule_stop_at_the_next_period() {
    let v = TestVault::new().await;
    let card = save_card(&v, DECLINED).await;
    let rc = created(
        &v,
        json!({"source": card, "amount": 100, "currency": "eur", "interval": "day", "interval_count": 2}),
    )
    .await;
    let id = rc["id"].as_str().unwrap().to_owned();
    let start = rc["start"].as_i64().unwrap();
    // The 1-day retry fits before the next period (2 days); the 3-day one does not.
    assert_eq!(rc["next_run"], start + DAY);
    v.clock.set(start + DAY);
    assert_eq!(tick(&v.state).await, 1);
    let rc = get(&v, &id).await;
    assert_eq!(rc["status"], "past_due");
    assert_eq!(rc["period"], 1);
    assert_eq!(rc["next_run"], start + 2 * DAY);
}

#[tokio::test]
async fn a_canceled_schedule_charges_nothing_more() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let rc = created(
        &v,
        json!({"source": card, "amount": 700, "currency": "eur", "interval": "month"}),
    )
    .await;
    let id = rc["id"].as_str().unwrap().to_owned();
    assert_eq!(rc["charges"].as_array().unwrap().len(), 1);
    let r = cancel(&v, id.clone()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["status"], "canceled");
    assert_eq!(j["next_run"], Value::Null);
    assert_eq!(j["canceled_at"], v.now());
    v.clock.advance(400 * DAY);
    assert_eq!(tick(&v.state).await, 0);
    let again = cancel(&v, id.clone()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["canceled_at"], j["canceled_at"]);
    assert_eq!(get(&v, &id).await["charges"].as_array().unwrap().len(), 1);
    let events = recurring_events(&v).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "recurring_charge.canceled")
            .count(),
        1
    );
    // Unknown, malformed and other accounts' ids are all 404.
    cancel(&v, "rc_0000000000000000000000".into())
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    cancel(&v, "nope".into())
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    v.get(&format!("/v1/recurring/charges/{id}"), &v.other.secret_key)
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    let other = v
        .call(post_json(
            &format!("/v1/recurring/charges/{id}/cancel"),
            &v.other.secret_key,
            &json!({}),
        ))
        .await;
    other.assert_error(404, "invalid_request_error", "resource_missing");
    // Publishable keys cannot touch schedules.
    v.get("/v1/recurring/charges", &v.account.publishable_key)
        .await
        .assert_error(403, "permission_error", "secret_key_required");
}

#[tokio::test]
async fn a_deleted_card_cancels_its_schedule() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let rc = created(
        &v,
        json!({"source": card, "amount": 700, "currency": "eur", "interval": "day"}),
    )
    .await;
    let del = v
        .call(
            Request::delete(format!("/v1/cards/{card}"))
                .header("authorization", format!("Bearer {}", v.account.secret_key))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(del.status, 200);
    v.clock.advance(DAY);
    assert_eq!(tick(&v.state).await, 1);
    let rc = get(&v, rc["id"].as_str().unwrap()).await;
    assert_eq!(rc["status"], "canceled");
    assert_eq!(rc["charges"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_vault_down_through_due_dates_catches_up_once() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let rc = created(
        &v,
        json!({"source": card, "amount": 1200, "currency": "eur", "interval": "month", "count": 12}),
    )
    .await;
    let id = rc["id"].as_str().unwrap().to_owned();
    let start = rc["start"].as_i64().unwrap();
    let second = get(&v, &id).await["next_run"].as_i64().unwrap();

    // Down for five days past the second due date: many ticks missed, one charge.
    v.clock.set(second + 5 * DAY);
    assert_eq!(tick(&v.state).await, 1);
    for _ in 0..3 {
        assert_eq!(tick(&v.state).await, 0);
    }
    let rc = get(&v, &id).await;
    assert_eq!(rc["charges"].as_array().unwrap().len(), 2);
    assert_eq!(rc["charges"][1]["period"], 1);
    let third = rc["next_run"].as_i64().unwrap();
    assert!(third > v.now());

    // Down for three periods: the latest is charged once, the two before it skipped.
    v.clock.set(third + 62 * DAY);
    assert_eq!(tick(&v.state).await, 1);
    assert_eq!(tick(&v.state).await, 0);
    let rc = get(&v, &id).await;
    let periods: Vec<_> = rc["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["period"].as_i64().unwrap())
        .collect();
    assert_eq!(periods, [0, 1, 4]);
    assert_eq!(rc["period"], 5);
    assert!(rc["next_run"].as_i64().unwrap() > v.now());
    assert_eq!(
        rc["next_run"].as_i64().unwrap(),
        get(&v, &id).await["next_run"].as_i64().unwrap()
    );
    assert_eq!(
        ymd(rc["next_run"].as_i64().unwrap()).1,
        (ymd(start).1 + 4) % 12 + 1
    );
    let events = recurring_events(&v).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "recurring_charge.periods_skipped")
            .count(),
        1
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_stores_nothing() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let now = v.now();
    let ok = json!({"source": card, "amount": 1000, "currency": "eur", "interval": "month"});
    let cases: &[(&str, Value, &str)] = &[
        ("interval_count", json!(0), "interval_count"),
        ("interval_count", json!(37), "interval_count"),
        ("interval_count", json!(1.5), "interval_count"),
        ("interval", json!("fortnight"), "interval"),
        ("start", json!(now - DAY - 1), "start"),
        ("start", json!("soon"), "start"),
        ("amount", json!(0), "amount"),
        ("amount", json!(-5), "amount"),
        ("amount", json!(10.5), "amount"),
        ("currency", json!("xxx"), "currency"),
        ("end", json!(now - 10), "end"),
        ("count", json!(0), "count"),
        ("source", json!("tok_0000000000000000000000"), "source"),
    ];
    for (field, value, param) in cases {
        let mut body = ok.clone();
        body[*field] = value.clone();
        let r = schedule(&v, body).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.json()["error"]["param"], *param, "{field}={value}");
        if let Some(sent) = value.as_str() {
            assert!(
                !String::from_utf8_lossy(&r.body).contains(sent),
                "the value was echoed"
            );
        }
    }
    let mut both = ok.clone();
    both["count"] = json!(3);
    both["end"] = json!(now + 100 * DAY);
    let r = schedule(&v, both).await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
    assert_eq!(r.json()["error"]["param"], "count");
    for missing in ["source", "amount", "currency", "interval"] {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(missing);
        let r = schedule(&v, body).await;
        r.assert_error(400, "invalid_request_error", "parameter_missing");
        assert_eq!(r.json()["error"]["param"], missing);
    }
    // An unknown card, and another account's card: 404 naming the source.
    for source in [
        "card_0000000000000000000000".to_owned(),
        save_card_other(&v).await,
    ] {
        let mut body = ok.clone();
        body["source"] = json!(source);
        let r = schedule(&v, body).await;
        r.assert_error(404, "invalid_request_error", "resource_missing");
        assert_eq!(r.json()["error"]["param"], "source");
    }
    // A start up to a day ago is fine.
    let mut body = ok.clone();
    body["start"] = json!(now - DAY + 60);
    assert_eq!(schedule(&v, body).await.status, 200);
    let list = v
        .get("/v1/recurring/charges", &v.account.secret_key)
        .await
        .json();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "a refused schedule was stored"
    );
    assert_eq!(
        recurring_events(&v)
            .await
            .iter()
            .filter(|e| *e == "recurring_charge.created")
            .count(),
        1
    );
}

async fn cancel(v: &TestVault, id: String) -> Reply {
    v.call(post_json(
        &format!("/v1/recurring/charges/{id}/cancel"),
        &v.account.secret_key,
        &json!({}),
    ))
    .await
}

async fn save_card_other(v: &TestVault) -> String {
    let tok = v
        .create_token(
            &v.other.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    let r = v
        .call(post_json(
            "/v1/cards",
            &v.other.secret_key,
            &json!({"token": tok.json()["id"]}),
        ))
        .await;
    assert_eq!(r.status, 200);
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_list_pages_like_stripe_and_stays_stable_while_schedules_are_added() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let body = json!({"source": card, "amount": 100, "currency": "eur", "interval": "year", "start": v.now() + 3600});
    let mut ids = Vec::new();
    for i in 0..7 {
        // Two schedules share each second: the order must not depend on the clock alone.
        if i % 2 == 0 {
            v.clock.advance(1);
        }
        ids.push(
            created(&v, body.clone()).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse(); // newest first
    let list = |q: String| {
        let v = &v;
        async move {
            let r = v
                .get(&format!("/v1/recurring/charges{q}"), &v.account.secret_key)
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let j = r.json();
            assert_eq!(j["object"], "list");
            assert_eq!(j["url"], "/v1/recurring/charges");
            let page: Vec<String> = j["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect();
            (page, j["has_more"].as_bool().unwrap())
        }
    };
    assert_eq!(list(String::new()).await, (ids.clone(), false));
    let (p1, more) = list("?limit=3".into()).await;
    assert_eq!((p1.as_slice(), more), (&ids[..3], true));
    // New schedules arrive between pages: the next page is unchanged.
    created(&v, body.clone()).await;
    let (p2, more) = list(format!("?limit=3&starting_after={}", p1[2])).await;
    assert_eq!((p2.as_slice(), more), (&ids[3..6], true));
    let (p3, more) = list(format!("?limit=3&starting_after={}", p2[2])).await;
    assert_eq!((p3.as_slice(), more), (&ids[6..], false));
    // Backwards from the last page.
    let (b, more) = list(format!("?limit=3&ending_before={}", ids[6])).await;
    assert_eq!((b.as_slice(), more), (&ids[3..6], true));
    let (b, more) = list(format!("?limit=3&ending_before={}", ids[3])).await;
    assert_eq!(b.as_slice(), &ids[..3]);
    assert!(more, "the schedule added later is newer still");
    // created bounds.
    let first = get(&v, &ids[6]).await["created"].as_i64().unwrap();
    let (c, _) = list(format!("?created[lte]={first}")).await;
    assert_eq!(c, ids[5..].to_vec());
    let (c, _) = list(format!("?created[gte]={}&limit=100", first + 3)).await;
    assert_eq!(c.len(), 2);
    // Bad parameters.
    for q in [
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?created[gte]=soon",
        "?starting_after=rc_0000000000000000000000",
        "?starting_after=ch_0000000000000000000000",
    ] {
        let r = v
            .get(&format!("/v1/recurring/charges{q}"), &v.account.secret_key)
            .await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
    }
    // Another account sees none of them.
    let r = v.get("/v1/recurring/charges", &v.other.secret_key).await;
    assert_eq!(r.json()["data"], json!([]));
}

/// A second vault instance on the same database as `v` (PostgreSQL only), with its own clock.
async fn second_instance(v: &TestVault) -> (AppState, Arc<ManualClock>) {
    let url = database_url_for(v.dir.path()).expect("on PostgreSQL");
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&url).await.unwrap());
    let master = MasterKey::load(None, v.dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(v.now()));
    let state = AppState::new(unlimited(), store, master, clock.clone())
        .await
        .unwrap();
    (state, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_at_once_make_each_run_once() {
    let v = TestVault::new().await;
    let good = save_card(&v, VISA).await;
    let bad = save_card(&v, DECLINED).await;
    let start = v.now() + 60;
    let mut ids = Vec::new();
    for i in 0..24 {
        let card = if i % 3 == 0 { &bad } else { &good };
        let rc = created(
            &v,
            json!({"source": card, "amount": 100 + i, "currency": "eur", "interval": "day", "start": start}),
        )
        .await;
        ids.push(rc["id"].as_str().unwrap().to_owned());
    }
    // Two instances on PostgreSQL; on SQLite, two schedulers in one process.
    let (other, other_clock) = if on_postgres() {
        let (s, c) = second_instance(&v).await;
        (s, Some(c))
    } else {
        (v.state.clone(), None)
    };
    let mut total = 0;
    // Three days, each tick raced by both schedulers, four times.
    for day in 0..3 {
        let at = start + day * DAY;
        v.clock.set(at);
        if let Some(c) = &other_clock {
            c.set(at);
        }
        for _ in 0..4 {
            let (a, b) = tokio::join!(run_due(&v.state), run_due(&other));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a.failed + b.failed, 0);
            total += a.runs + b.runs;
        }
    }
    // Each schedule ran once a day (the declined ones retry after a day: the same days).
    assert_eq!(total, 24 * 3);
    for id in &ids {
        let rc = get(&v, id).await;
        let runs = rc["charges"].as_array().unwrap();
        assert_eq!(runs.len(), 3, "{rc}");
        let keys: std::collections::BTreeSet<_> = runs
            .iter()
            .map(|c| (c["period"].as_i64(), c["attempt"].as_i64()))
            .collect();
        assert_eq!(keys.len(), 3, "a run was made twice: {rc}");
        if rc["source"] == good.as_str() {
            assert_eq!(rc["period"], 3);
        }
    }
    // Charges and runs match one to one.
    let charges: usize = {
        let ids = ids.clone();
        let account = v.account.account.clone();
        store::read(v.store.as_ref(), move |tx| {
            let mut n = 0;
            for id in &ids {
                for run in tx.recurring_runs(id)? {
                    let c = run.charge_id.unwrap();
                    assert!(tx.charge(&account, &c)?.is_some());
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
        .unwrap()
    };
    assert_eq!(charges, 24 * 3);
}

/// Like `http`, but a dropped connection is `None` instead of a panic.
async fn try_http(addr: std::net::SocketAddr, req: Request<Body>) -> Option<(u16, Value)> {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert("host", addr.to_string().parse().unwrap());
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, serde_json::from_slice(&body).ok()?))
}

fn create_request(i: usize, sk: &str, card: &str) -> Request<Body> {
    let mut req = post_json(
        "/v1/recurring/charges",
        sk,
        &json!({"source": card, "amount": 100 + i, "currency": "eur", "interval": "month"}),
    );
    req.headers_mut()
        .insert("idempotency-key", format!("rc-{i}").parse().unwrap());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_during_runs_leaves_each_run_whole_and_once() {
    const REQUESTS: usize = 160;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--demo", "--key-rate", "0", "--ip-rate", "0"];
    let mut server = spawn_server(data, &args);
    let pk = key_from(&server.stdout, "publishable_key");
    let sk = key_from(&server.stdout, "secret_key");
    let addr = server.addr;
    let jwks = http(
        addr,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let key = cardseal::jwe::VaultKey::parse(std::str::from_utf8(&jwks.body).unwrap()).unwrap();
    let mut cards = Vec::new();
    for _ in 0..4 {
        let sealed = cardseal::jwe::seal_payload(
            &key,
            &card_payload(VISA, 12, 2030, Some("123"), unix_now()),
        )
        .unwrap();
        let tok = http(
            addr,
            post_json("/v1/tokens", &pk, &json!({ "card": sealed })),
        )
        .await;
        let card = http(
            addr,
            post_json("/v1/cards", &sk, &json!({"token": tok.json()["id"]})),
        )
        .await;
        assert_eq!(card.status, 200);
        cards.push(card.json()["id"].as_str().unwrap().to_owned());
    }

    // Each creation makes its first run (claim, charge, events) in its transaction.
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        let (sk, card, counter) = (sk.clone(), cards[i % 4].clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let reply = try_http(addr, create_request(i, &sk, &card)).await;
            if matches!(reply, Some((200, _))) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            (i, card, reply)
        }));
        if i % 8 == 7 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if acked.load(std::sync::atomic::Ordering::SeqCst) >= REQUESTS / 4 {
            break;
        }
    }
    // A slower database may not have answered a quarter yet: wait for that (bounded).
    for _ in 0..6000 {
        if acked.load(std::sync::atomic::Ordering::SeqCst) >= REQUESTS / 4
            || tasks.iter().all(tokio::task::JoinHandle::is_finished)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let ok = replies
        .iter()
        .filter(|(_, _, r)| matches!(r, Some((200, _))))
        .count();
    let lost = replies.iter().filter(|(_, _, r)| r.is_none()).count();
    eprintln!("{ok} acknowledged, {lost} cut off by the kill");
    assert!(ok > 0);

    let server = spawn_server(data, &args);
    let addr = server.addr;
    let whole = |dir: &std::path::Path| {
        // Every schedule has exactly its first run, the run its charge, and nothing is pending.
        let schedules = db_number(dir, "SELECT count(*) FROM recurring_charges");
        let runs = db_number(dir, "SELECT count(*) FROM recurring_runs");
        let charged = db_number(
            dir,
            "SELECT count(*) FROM recurring_runs r JOIN charges c ON c.id = r.charge_id
             WHERE r.status = 'succeeded' AND r.period = 0 AND r.attempt = 0",
        );
        let charges = db_number(dir, "SELECT count(*) FROM charges");
        assert_eq!(
            runs, schedules,
            "a schedule without its run, or a run twice"
        );
        assert_eq!(charged, runs, "a run without its charge");
        assert_eq!(charges, runs, "a charge without its run");
        schedules
    };
    let before = whole(dir.path());
    for (_, _, reply) in &replies {
        if let Some((200, obj)) = reply {
            let id = obj["id"].as_str().unwrap();
            let r = http(
                addr,
                Request::get(format!("/v1/recurring/charges/{id}"))
                    .header("authorization", format!("Bearer {sk}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status, 200, "acknowledged {id} is gone");
            assert_eq!(&r.json(), obj);
        }
    }
    // Every request again with its Idempotency-Key: each schedule (and first charge) exists
    // once. On PostgreSQL a cut-off request's key stays claimed until the claim lapses.
    let mut still_claimed = 0;
    for (i, card, reply) in &replies {
        let r = http(addr, create_request(*i, &sk, card)).await;
        if on_postgres() && reply.is_none() && r.status == 409 {
            still_claimed += 1;
            continue;
        }
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        if let Some((200, first)) = reply {
            assert_eq!(&r.json(), first);
        }
    }
    let after = usize::try_from(whole(dir.path())).unwrap();
    assert!(usize::try_from(before).unwrap() >= ok);
    assert!(after <= replies.len() && after + still_claimed >= replies.len());
    drop(server);
    let out = vault_command(data)
        .args(["events", "verify", "--data-dir", data])
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store that, while `fail` is set, rolls back every write after its job has run: a
/// process dying between a run's writes and its commit.
#[derive(Debug)]
struct DiesBeforeCommit {
    inner: Arc<dyn Store>,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for DiesBeforeCommit {
    async fn transact(&self, job: store::TxJob) -> store::TxOutcome {
        if !self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return self.inner.transact(job).await;
        }
        self.inner
            .transact(Box::new(move |tx| {
                job(tx)?;
                Err(store::TxError::Store(store::StoreError::Unavailable(
                    "killed before the commit".into(),
                )))
            }))
            .await
    }
    async fn query(&self, job: store::TxJob) -> store::TxOutcome {
        self.inner.query(job).await
    }
    fn use_master_key(&self, master: Arc<MasterKey>) {
        self.inner.use_master_key(master);
    }
}

#[tokio::test]
async fn a_run_cut_off_before_its_commit_leaves_nothing_and_runs_once_later() {
    let v = TestVault::new().await;
    let card = save_card(&v, VISA).await;
    let rc = created(
        &v,
        json!({"source": card, "amount": 300, "currency": "eur", "interval": "day"}),
    )
    .await;
    let id = rc["id"].as_str().unwrap().to_owned();
    let dying = Arc::new(DiesBeforeCommit {
        inner: Arc::clone(&v.store),
        fail: std::sync::atomic::AtomicBool::new(false),
    });
    let master = MasterKey::load(None, v.dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(v.now() + DAY));
    let state = AppState::new(unlimited(), dying.clone(), master, clock.clone())
        .await
        .unwrap();
    dying.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let events = recurring_events(&v).await.len();
    let charges_before = count_charges(&v).await;
    for _ in 0..3 {
        let ran = run_due(&state).await.unwrap();
        assert_eq!((ran.runs, ran.failed), (0, 1));
    }
    // Nothing of the cut-off runs: no claim, no charge, no event, the schedule unchanged.
    assert_eq!(get(&v, &id).await, rc);
    assert_eq!(count_charges(&v).await, charges_before);
    assert_eq!(recurring_events(&v).await.len(), events);
    // Back up: the run is made once.
    dying.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(tick(&state).await, 1);
    assert_eq!(tick(&state).await, 0);
    let rc = get(&v, &id).await;
    assert_eq!(rc["charges"].as_array().unwrap().len(), 2);
    assert_eq!(rc["period"], 2);
    assert_eq!(count_charges(&v).await, charges_before + 1);
}

async fn count_charges(v: &TestVault) -> usize {
    let account = v.account.account.clone();
    store::read(v.store.as_ref(), move |tx| {
        Ok(tx
            .all_events()?
            .into_iter()
            .filter(|e| e.account_id == account && e.event_type.starts_with("charge."))
            .count())
    })
    .await
    .unwrap()
}
