//! The dashboard overview over real HTTP: MTTA and MTTR on a scenario with known timestamps
//! (a manual clock) over windows that cut samples at their edges, reopen and re-resolve,
//! and the open-incident, per-service and problem counts as things change.
mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use common::TestDaemon;
use incidentd::domain::clock::ManualClock;
use serde_json::{Value, json};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn overview(d: &TestDaemon, query: &str) -> Value {
    let a = d
        .get(&format!("/api/v1/dashboard/overview?{query}"), &d.admin)
        .await;
    assert_eq!(a.status, 200, "?{query}: {}", a.text);
    a.body
}

/// Asserts `mtta` or `mttr` of the overview for [from, to).
async fn assert_mean(
    d: &TestDaemon,
    which: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    expected: Option<f64>,
    count: i64,
) {
    let o = overview(d, &format!("from={}&to={}", ts(from), ts(to))).await;
    let m = &o[which];
    assert_eq!(m["count"], count, "{which} count over [{from}, {to}): {m}");
    match expected {
        None => assert!(m["seconds"].is_null(), "{which} over [{from}, {to}): {m}"),
        Some(e) => {
            let got = m["seconds"]
                .as_f64()
                .unwrap_or_else(|| panic!("{which} over [{from}, {to}) has no seconds: {m}"));
            assert!(
                (got - e).abs() < 1e-6,
                "{which} over [{from}, {to}): expected {e}, got {got}"
            );
        }
    }
    assert_eq!(o["window"]["from"].as_str().map(parse), Some(from));
    assert_eq!(o["window"]["to"].as_str().map(parse), Some(to));
}

fn parse(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

async fn open(d: &TestDaemon, body: Value) -> u64 {
    let a = d.post("/api/v1/incidents", &d.admin, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

async fn move_to(d: &TestDaemon, id: u64, to: &str) {
    let a = d
        .post(
            &format!("/api/v1/incidents/{id}/transition"),
            &d.admin,
            json!({"to": to}),
        )
        .await;
    assert_eq!(a.status, 200, "INC-{id} -> {to}: {}", a.text);
}

/// A daemon on a manual clock standing at a whole hour. Access tokens are checked against
/// the wall clock, so the scenario starts at the next whole hour from now.
async fn daemon_at_whole_hour() -> (TestDaemon, ManualClock, DateTime<Utc>) {
    let t0 = Utc::now()
        .duration_trunc(Duration::hours(1))
        .expect("trunc")
        + Duration::hours(1);
    let clock = ManualClock::new(t0);
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    (d, clock, t0)
}

#[tokio::test]
async fn mtta_and_mttr_on_known_timestamps() {
    let (d, clock, t0) = daemon_at_whole_hour().await;
    let at = |m: i64| t0 + Duration::minutes(m);
    let go = |m: i64| clock.set(at(m));
    let medium = json!({"title": "x", "impact": "medium", "urgency": "medium"});

    // A: opened t0, acknowledged +5m, resolved +65m.
    // B: opened +10m, in progress +40m (first response), resolved +3h.
    // C: opened t0, never acknowledged, resolved +20m.
    let a = open(&d, medium.clone()).await;
    let c = open(&d, medium.clone()).await;
    go(5);
    move_to(&d, a, "acknowledged").await;
    go(10);
    let b = open(&d, medium.clone()).await;
    go(20);
    move_to(&d, c, "resolved").await;
    go(40);
    move_to(&d, b, "in_progress").await;
    go(65);
    move_to(&d, a, "resolved").await;
    go(180);
    move_to(&d, b, "resolved").await;
    go(240);
    // Samples: MTTA 300 @+5m, 1800 @+40m. MTTR 1200 @+20m, 3900 @+65m, 10200 @+3h.

    let acks = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Everything.
    assert_mean(&d, "mtta", at(0), at(240), Some(acks(&[300., 1800.])), 2).await;
    assert_mean(
        &d,
        "mttr",
        at(0),
        at(240),
        Some(acks(&[1200., 3900., 10200.])),
        3,
    )
    .await;
    // Ragged on both sides and spanning whole hours: [+30m, +3h30m).
    assert_mean(&d, "mtta", at(30), at(210), Some(1800.), 1).await;
    assert_mean(&d, "mttr", at(30), at(210), Some(acks(&[3900., 10200.])), 2).await;
    // Inside one hour: [+2m, +50m).
    assert_mean(&d, "mtta", at(2), at(50), Some(acks(&[300., 1800.])), 2).await;
    assert_mean(&d, "mttr", at(2), at(50), Some(1200.), 1).await;
    // Ragged start, whole-hour end: [+21m, +2h).
    assert_mean(&d, "mtta", at(21), at(120), Some(1800.), 1).await;
    assert_mean(&d, "mttr", at(21), at(120), Some(3900.), 1).await;
    // Whole hours only; the end is exclusive: [+1h, +3h).
    assert_mean(&d, "mtta", at(60), at(180), None, 0).await;
    assert_mean(&d, "mttr", at(60), at(180), Some(3900.), 1).await;
    assert_mean(&d, "mttr", at(180), at(240), Some(10200.), 1).await;
    // Whole hour start, ragged end: [t0, +1h30m).
    assert_mean(&d, "mttr", at(0), at(90), Some(acks(&[1200., 3900.])), 2).await;
    // The start is inclusive, the end exclusive, to the second.
    let s = Duration::seconds(1);
    assert_mean(&d, "mtta", at(5), at(5) + s, Some(300.), 1).await;
    assert_mean(&d, "mtta", at(5) - s, at(5), None, 0).await;
    assert_mean(&d, "mttr", at(180) - s, at(180), None, 0).await;
    // Before anything happened.
    assert_mean(&d, "mtta", at(-60), at(0), None, 0).await;
    // Windows ending now.
    let o = overview(&d, "window=24h").await;
    assert_eq!(o["window"]["to"].as_str().map(parse), Some(at(240)));
    assert_eq!(
        o["window"]["from"].as_str().map(parse),
        Some(at(240) - Duration::hours(24))
    );
    assert_eq!(o["mtta"]["count"], 2);
    assert_eq!(o["mttr"]["count"], 3);
    assert_eq!(o["mttr"]["seconds"].as_f64(), Some(5100.));
    let o = overview(&d, "window=3h").await;
    assert_eq!(o["mtta"]["count"], 0, "{o}");
    assert_eq!(o["mttr"]["seconds"].as_f64(), Some(7050.), "{o}");
    // The default window is the last seven days.
    let o = overview(&d, "").await;
    assert_eq!(
        o["window"]["from"].as_str().map(parse),
        Some(at(240) - Duration::days(7))
    );
    assert_eq!(o["mttr"]["count"], 3);

    // Reopening A takes its resolution out of MTTR; its first response stays in MTTA.
    go(250);
    move_to(&d, a, "in_progress").await;
    assert_mean(&d, "mttr", at(0), at(300), Some(acks(&[1200., 10200.])), 2).await;
    assert_mean(&d, "mttr", at(21), at(120), None, 0).await;
    assert_mean(&d, "mttr", at(60), at(120), None, 0).await;
    assert_mean(&d, "mtta", at(0), at(300), Some(1050.), 2).await;
    // Resolving again counts from when A opened, at the new time.
    go(300);
    move_to(&d, a, "resolved").await;
    assert_mean(
        &d,
        "mttr",
        at(0),
        at(360),
        Some(acks(&[1200., 10200., 18000.])),
        3,
    )
    .await;
    assert_mean(&d, "mttr", at(300), at(301), Some(18000.), 1).await;
    assert_mean(&d, "mttr", at(60), at(120), None, 0).await;
    // Closing keeps the resolution; cancelling adds nothing.
    go(310);
    move_to(&d, b, "closed").await;
    let e = open(&d, medium.clone()).await;
    go(320);
    move_to(&d, e, "cancelled").await;
    assert_mean(
        &d,
        "mttr",
        at(0),
        at(360),
        Some(acks(&[1200., 10200., 18000.])),
        3,
    )
    .await;
    assert_mean(&d, "mtta", at(0), at(360), Some(1050.), 2).await;
}

#[tokio::test]
async fn bad_windows_are_422() {
    let (d, _clock, t0) = daemon_at_whole_hour().await;
    for (query, field) in [
        ("window=abc".to_owned(), "window"),
        ("window=0d".to_owned(), "window"),
        ("window=-1h".to_owned(), "window"),
        ("from=yesterday".to_owned(), "from"),
        ("to=2026-13-01T00:00:00Z".to_owned(), "to"),
        (format!("from={}&to={}", ts(t0), ts(t0)), "from"),
        (
            format!("from={}&to={}", ts(t0), ts(t0 - Duration::hours(1))),
            "from",
        ),
        (format!("from={}&window=1h", ts(t0)), "window"),
    ] {
        let a = d
            .get(&format!("/api/v1/dashboard/overview?{query}"), &d.admin)
            .await;
        a.assert_problem(422);
        assert!(a.body["errors"][field].is_array(), "?{query}: {}", a.text);
    }
    for ok in ["window=24h", "window=7d", "window=30m", "window=3600"] {
        let o = overview(&d, ok).await;
        assert_eq!(o["window"]["to"].as_str().map(parse), Some(t0), "{ok}");
    }
    // Samples are kept to the second, and so is the window, which says so.
    let from = t0 - Duration::hours(2) + Duration::milliseconds(30_100);
    let to = t0 - Duration::hours(1) + Duration::milliseconds(300);
    let o = overview(
        &d,
        &format!(
            "from={}&to={}",
            from.to_rfc3339_opts(SecondsFormat::Millis, true),
            to.to_rfc3339_opts(SecondsFormat::Millis, true)
        ),
    )
    .await;
    assert_eq!(
        o["window"]["from"].as_str().map(parse),
        Some(t0 - Duration::hours(2) + Duration::seconds(30))
    );
    assert_eq!(
        o["window"]["to"].as_str().map(parse),
        Some(t0 - Duration::hours(1) + Duration::seconds(1))
    );
}

/// The open-incident counts of the overview, flattened for comparison.
fn open_counts(o: &Value) -> Value {
    json!({
        "open": o["open_incidents"],
        "status": o["open_by_status"],
        "priority": o["open_by_priority"],
    })
}

fn service(o: &Value, id: u64) -> &Value {
    o["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("service {id} missing: {o}"))
}

fn by_status(new: i64, ack: i64, work: i64, hold: i64) -> Value {
    json!({"new": new, "acknowledged": ack, "in_progress": work, "on_hold": hold})
}

fn by_priority(p: [i64; 5]) -> Value {
    json!({"P1": p[0], "P2": p[1], "P3": p[2], "P4": p[3], "P5": p[4]})
}

/// Cross-checks the overview's open count with the list.
async fn assert_open_matches_list(d: &TestDaemon, o: &Value) {
    let a = d
        .get("/api/v1/incidents?status=open&limit=500", &d.admin)
        .await;
    assert_eq!(
        o["open_incidents"].as_u64(),
        Some(a.body["items"].as_array().expect("items").len() as u64),
        "{o}"
    );
}

#[tokio::test]
async fn counts_follow_incidents_and_problems() {
    let d = TestDaemon::start().await;
    let (_, viewer) = d.user("vic", "Viewer").await;
    let o = overview(&d, "").await;
    assert_eq!(
        open_counts(&o),
        json!({"open": 0, "status": by_status(0, 0, 0, 0), "priority": by_priority([0; 5])})
    );
    assert_eq!(o["open_problems"], 0);
    assert_eq!(o["known_errors"], 0);
    assert_eq!(service(&o, 1)["name"], "Default");
    assert_eq!(service(&o, 1)["open"], 0);
    assert_eq!(o["mtta"]["count"], 0);
    assert!(o["mtta"]["seconds"].is_null());

    let s = d
        .post("/api/v1/services", &d.admin, json!({"name": "payments"}))
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
    let pay = s.id();

    let a = open(
        &d,
        json!({"title": "a", "impact": "high", "urgency": "high", "service_id": pay}),
    )
    .await;
    let b = open(
        &d,
        json!({"title": "b", "impact": "high", "urgency": "medium"}),
    )
    .await;
    let c = open(&d, json!({"title": "c", "impact": "low", "urgency": "low"})).await;
    let o = overview(&d, "").await;
    assert_eq!(
        open_counts(&o),
        json!({"open": 3, "status": by_status(3, 0, 0, 0), "priority": by_priority([1, 1, 0, 0, 1])})
    );
    assert_eq!(service(&o, pay)["open"], 1);
    assert_eq!(service(&o, pay)["total"], 1);
    assert_eq!(
        service(&o, pay)["open_by_priority"],
        by_priority([1, 0, 0, 0, 0])
    );
    assert_eq!(service(&o, 1)["open"], 2);
    assert_eq!(
        service(&o, 1)["open_by_priority"],
        by_priority([0, 1, 0, 0, 1])
    );
    assert_eq!(o["incidents_by_status"]["new"], 3);
    assert_open_matches_list(&d, &o).await;

    move_to(&d, a, "acknowledged").await;
    move_to(&d, b, "on_hold").await;
    let o = overview(&d, "").await;
    assert_eq!(open_counts(&o)["status"], by_status(1, 1, 0, 1));
    assert_eq!(o["open_incidents"], 3);
    assert_eq!(o["mtta"]["count"], 2);

    // Priority and service follow PATCH.
    let p = d
        .patch(
            &format!("/api/v1/incidents/{c}"),
            &d.admin,
            json!({"impact": "high", "urgency": "high"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let p = d
        .patch(
            &format!("/api/v1/incidents/{b}"),
            &d.admin,
            json!({"service_id": pay}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let o = overview(&d, "").await;
    assert_eq!(open_counts(&o)["priority"], by_priority([2, 1, 0, 0, 0]));
    assert_eq!(service(&o, pay)["open"], 2);
    assert_eq!(service(&o, pay)["total"], 2);
    assert_eq!(
        service(&o, pay)["open_by_priority"],
        by_priority([1, 1, 0, 0, 0])
    );
    assert_eq!(service(&o, 1)["open"], 1);
    assert_eq!(service(&o, 1)["total"], 1);
    assert_eq!(
        service(&o, 1)["open_by_priority"],
        by_priority([1, 0, 0, 0, 0])
    );

    // Resolving leaves the open counts; reopening comes back; closing and cancelling stay out.
    move_to(&d, a, "resolved").await;
    let o = overview(&d, "").await;
    assert_eq!(
        open_counts(&o),
        json!({"open": 2, "status": by_status(1, 0, 0, 1), "priority": by_priority([1, 1, 0, 0, 0])})
    );
    assert_eq!(o["incidents_by_status"]["resolved"], 1);
    assert_eq!(service(&o, pay)["open"], 1);
    assert_eq!(service(&o, pay)["total"], 2);
    assert_eq!(o["mttr"]["count"], 1);
    assert_open_matches_list(&d, &o).await;
    move_to(&d, a, "in_progress").await;
    let o = overview(&d, "").await;
    assert_eq!(open_counts(&o)["status"], by_status(1, 0, 1, 1));
    assert_eq!(o["incidents_by_status"]["resolved"], 0);
    assert_eq!(o["mttr"]["count"], 0);
    assert_eq!(
        service(&o, pay)["open_by_priority"],
        by_priority([1, 1, 0, 0, 0])
    );
    move_to(&d, a, "resolved").await;
    move_to(&d, a, "closed").await;
    move_to(&d, c, "cancelled").await;
    let o = overview(&d, "").await;
    assert_eq!(
        open_counts(&o),
        json!({"open": 1, "status": by_status(0, 0, 0, 1), "priority": by_priority([0, 1, 0, 0, 0])})
    );
    assert_eq!(o["incidents_by_status"]["closed"], 1);
    assert_eq!(o["incidents_by_status"]["cancelled"], 1);
    assert_eq!(o["incidents_by_status"]["resolved"], 0);
    assert_eq!(service(&o, 1)["open"], 0);
    assert_eq!(service(&o, 1)["total"], 1);
    assert_eq!(service(&o, pay)["open"], 1);
    assert_open_matches_list(&d, &o).await;

    // Problems and known errors.
    let mut problems = Vec::new();
    for title in ["p1", "p2"] {
        let p = d
            .post("/api/v1/problems", &d.admin, json!({"title": title}))
            .await;
        assert_eq!(p.status, 201, "{}", p.text);
        problems.push(p.id());
    }
    let (p1, p2) = (problems[0], problems[1]);
    let o = overview(&d, "").await;
    assert_eq!(o["open_problems"], 2);
    assert_eq!(o["known_errors"], 0);
    assert_eq!(o["problems_by_status"]["open"], 2);
    let k = d
        .post(
            &format!("/api/v1/problems/{p1}/known-error"),
            &d.admin,
            json!({"workaround": "restart"}),
        )
        .await;
    assert_eq!(k.status, 200, "{}", k.text);
    let i = d
        .patch(
            &format!("/api/v1/problems/{p2}"),
            &d.admin,
            json!({"status": "investigating"}),
        )
        .await;
    assert_eq!(i.status, 200, "{}", i.text);
    let o = overview(&d, "").await;
    assert_eq!(o["open_problems"], 2);
    assert_eq!(o["known_errors"], 1);
    assert_eq!(o["problems_by_status"]["known_error"], 1);
    assert_eq!(o["problems_by_status"]["investigating"], 1);
    assert_eq!(o["problems_by_status"]["open"], 0);
    for (id, to) in [(p1, "closed"), (p2, "resolved")] {
        let a = d
            .patch(
                &format!("/api/v1/problems/{id}"),
                &d.admin,
                json!({"status": to}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let o = overview(&d, "").await;
    assert_eq!(o["open_problems"], 0);
    assert_eq!(o["known_errors"], 0);
    assert_eq!(o["problems_by_status"]["closed"], 1);
    assert_eq!(o["problems_by_status"]["resolved"], 1);

    // Viewers read the dashboard; nobody anonymous does.
    let v = d.get("/api/v1/dashboard/overview", &viewer).await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["open_incidents"], 1);
    d.call(
        reqwest::Method::GET,
        "/api/v1/dashboard/overview",
        None,
        None,
    )
    .await
    .assert_problem(401);
}

/// Opens `n` incidents at once and returns their ids.
async fn open_many(d: &TestDaemon, n: usize) -> Vec<u64> {
    let mut set = tokio::task::JoinSet::new();
    for k in 0..n {
        let (http, url, token) = (d.http.clone(), d.url("/api/v1/incidents"), d.admin.clone());
        set.spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"title": format!("busy {k}"), "impact": "low", "urgency": "low"}))
                .send()
                .await
                .expect("send");
            let a = common::into_answer(res).await;
            assert_eq!(a.status, 201, "{}", a.text);
            a.id()
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = set.join_next().await {
        ids.push(id.expect("task"));
    }
    ids
}

/// Moves every incident of `ids` to `to` at once.
async fn move_many(d: &TestDaemon, ids: &[u64], to: &'static str) {
    let mut set = tokio::task::JoinSet::new();
    for &id in ids {
        let (http, token) = (d.http.clone(), d.admin.clone());
        let url = d.url(&format!("/api/v1/incidents/{id}/transition"));
        set.spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"to": to}))
                .send()
                .await
                .expect("send");
            let a = common::into_answer(res).await;
            assert_eq!(a.status, 200, "{}", a.text);
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
}

/// Many samples in one hour: windows cutting it anywhere (so that either side of a cut may
/// be the larger one) agree with a brute-force mean over the known samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtta_over_a_busy_hour_matches_a_brute_force_mean() {
    let (d, clock, t0) = daemon_at_whole_hour().await;
    // 1200 incidents opened in the first 30 s (40 a second), then 30 rounds of 40 first
    // responses two minutes apart, from t0+1m to t0+59m.
    let mut rounds = Vec::new();
    for round in 0..30i64 {
        let opened = t0 + Duration::seconds(round);
        clock.set(opened);
        rounds.push((opened, open_many(&d, 40).await));
    }
    let mut samples: Vec<(DateTime<Utc>, f64)> = Vec::new();
    for (round, (opened, ids)) in rounds.iter().enumerate() {
        let acked = t0 + Duration::seconds(60 + 120 * round as i64);
        clock.set(acked);
        move_many(&d, ids, "acknowledged").await;
        let secs = (acked - *opened).num_seconds() as f64;
        samples.extend(ids.iter().map(|_| (acked, secs)));
    }
    // A few in the next hour as well.
    let opened = t0 + Duration::minutes(65);
    clock.set(opened);
    let later = open_many(&d, 10).await;
    clock.set(opened + Duration::minutes(3));
    move_many(&d, &later, "in_progress").await;
    samples.extend(later.iter().map(|_| (opened + Duration::minutes(3), 180.0)));

    let s = |secs: i64| t0 + Duration::seconds(secs);
    for (from, to) in [
        (s(0), s(3600)),
        (s(1790), s(1810)), // a sliver: the rest of the hour is the big side
        (s(1799), s(1801)),
        (s(600), s(3000)),  // most of the hour: the rest is the small side
        (s(1000), s(2000)), // both sides above the first budget
        (s(59), s(61)),
        (s(61), s(3599)),
        (s(-1800), s(1800)), // across the hour before
        (s(1790), s(5000)),  // across into the next hour
        (s(3000), s(4000)),
        (s(1), s(7200)),
        (s(-7200), s(7200)),
    ] {
        let inside: Vec<f64> = samples
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, secs)| *secs)
            .collect();
        let expected =
            (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64);
        assert_mean(&d, "mtta", from, to, expected, inside.len() as i64).await;
    }
}

/// The value of the `/metrics` sample that is exactly `series` (name and labels).
async fn sample(d: &TestDaemon, series: &str) -> u64 {
    let text = d.metrics_text().await;
    common::metric_sample(&text, series).unwrap_or_else(|| panic!("no sample {series}:\n{text}"))
}

#[tokio::test]
async fn metrics_gauge_what_the_store_holds_now() {
    use common::ingest::{am_alert, am_webhook};
    let d = TestDaemon::start().await;
    // Every series is there from the start, at zero.
    for series in [
        r#"incidentd_open_incidents{status="new"}"#,
        r#"incidentd_open_incidents{status="on_hold"}"#,
        r#"incidentd_open_incidents_by_priority{priority="P1"}"#,
        r#"incidentd_open_incidents_by_priority{priority="P5"}"#,
        "incidentd_firing_alerts",
        "incidentd_silenced_alerts",
        r#"incidentd_notifications{status="pending"}"#,
        r#"incidentd_notifications{status="retrying"}"#,
        r#"incidentd_notifications{status="dead"}"#,
        r#"incidentd_heartbeats{state="expired"}"#,
        "incidentd_pending_approvals",
    ] {
        assert_eq!(sample(&d, series).await, 0, "{series}");
    }

    let open = |impact: &str, urgency: &str| json!({"title": format!("{impact}/{urgency}"), "impact": impact, "urgency": urgency});
    let mut priorities = Vec::new();
    for (impact, urgency) in [
        ("high", "high"),
        ("high", "high"),
        ("low", "low"),
        ("medium", "low"),
    ] {
        let a = d
            .post("/api/v1/incidents", &d.admin, open(impact, urgency))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        priorities.push((
            a.id(),
            a.body["priority"].as_str().expect("priority").to_owned(),
        ));
    }
    let (acked, resolved) = (priorities[1].0, priorities[3].0);
    d.transition(acked, "acknowledged").await;
    d.transition(resolved, "resolved").await;
    assert_eq!(
        sample(&d, r#"incidentd_open_incidents{status="new"}"#).await,
        2
    );
    assert_eq!(
        sample(&d, r#"incidentd_open_incidents{status="acknowledged"}"#).await,
        1
    );
    assert_eq!(
        sample(&d, r#"incidentd_open_incidents{status="in_progress"}"#).await,
        0
    );
    let p1 = &priorities[0].1;
    assert_eq!(p1, &priorities[1].1);
    assert_ne!(p1, &priorities[2].1);
    assert_eq!(
        sample(
            &d,
            &format!(r#"incidentd_open_incidents_by_priority{{priority="{p1}"}}"#)
        )
        .await,
        2,
        "the resolved one does not count"
    );

    // Two alerts fire, one of them muted.
    let int = d.integration("alertmanager", json!({})).await;
    let s = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "env", "value": "lab"}], "ends_at": (Utc::now() + Duration::hours(1)).to_rfc3339(), "comment": "lab"}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
    for env in ["prod", "lab"] {
        let labels = json!({"alertname": "Down", "env": env});
        let a = d
            .hook(
                "alertmanager",
                &int.token,
                &am_webhook(&format!("{{}}:{labels}"), vec![am_alert("firing", labels)]),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    assert_eq!(sample(&d, "incidentd_firing_alerts").await, 2);
    assert_eq!(sample(&d, "incidentd_silenced_alerts").await, 1);
    assert_eq!(
        sample(&d, r#"incidentd_open_incidents{status="new"}"#).await,
        3
    );

    // A heartbeat never pinged is inactive.
    let h = d
        .post(
            "/api/v1/heartbeats",
            &d.admin,
            json!({"name": "backup-cron", "interval_secs": 3600}),
        )
        .await;
    assert_eq!(h.status, 201, "{}", h.text);
    assert_eq!(
        sample(&d, r#"incidentd_heartbeats{state="inactive"}"#).await,
        1
    );
    assert_eq!(
        sample(&d, r#"incidentd_heartbeats{state="healthy"}"#).await,
        0
    );

    // An approval waits for a decision.
    let (lead, _) = d.user("lead", "Manager").await;
    let wf = d
        .post(
            "/api/v1/approval-workflows",
            &d.admin,
            json!({"name": "Change", "levels": [{"name": "lead", "approvers": [{"type": "user", "id": lead}]}]}),
        )
        .await;
    assert_eq!(wf.status, 201, "{}", wf.text);
    let a = d
        .post(
            "/api/v1/approvals",
            &d.admin,
            json!({"workflow_id": wf.id(), "title": "Fail over"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(sample(&d, "incidentd_pending_approvals").await, 1);
}
