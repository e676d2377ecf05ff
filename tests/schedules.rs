//! On-call schedules, black-box: rotations in a time zone, overrides, the on-call answer,
//! the checks, and an escalation level that pages whoever the schedule has on call.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::TestDaemon;
use common::fakes::webhook_fake;
use common::notify::*;
use incidentd::domain::clock::ManualClock;
use serde_json::{Value, json};

async fn oncall(d: &TestDaemon, schedule: u64, at: &str) -> Value {
    let a = d
        .get(
            &format!("/api/v1/schedules/{schedule}/oncall?at={at}"),
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn weekly(users: &[u64], start: &str) -> Value {
    json!({"name": "primary", "users": users, "rotation": "weeks", "length": 1, "start": start})
}

#[tokio::test]
async fn on_call_follows_the_rotation_in_its_zone_and_overrides_beat_it() {
    // The dates below are December 2026; the daemon's clock is set before them, so that
    // its overrides are not in the past on whatever day the test runs.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let (ann, _) = d.user("ann", "Engineer").await;
    let (ben, _) = d.user("ben", "Engineer").await;
    let (cat, _) = d.user("cat", "Engineer").await;
    let (_, viewer) = d.user("vic", "Viewer").await;

    // Weekly handoff Monday 09:00 Berlin (08:00 UTC in winter); weekdays 09-17 a second
    // layer puts cat on call instead.
    let a = d
        .post(
            "/api/v1/schedules",
            &d.admin,
            json!({"name": "Payments", "time_zone": "Europe/Berlin", "layers": [
                weekly(&[ann, ben], "2026-12-07T09:00:00"),
                {"name": "office hours", "users": [cat], "rotation": "days", "length": 1,
                 "start": "2026-12-07T00:00:00",
                 "restrictions": [{"days": ["sat"], "start": "10:00", "end": "12:00"}]},
            ]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();

    let who = |v: &Value| v["username"].as_str().map(str::to_owned);
    assert_eq!(
        who(&oncall(&d, id, "2026-12-07T07:59:59Z").await),
        None,
        "not started"
    );
    let first = oncall(&d, id, "2026-12-07T08:00:00Z").await;
    assert_eq!(who(&first), Some("ann".into()), "{first}");
    assert_eq!(first["on_call"]["source"]["type"], "layer");
    // ann holds it until cat's Saturday window (10:00 Berlin) takes over: the handover
    // people see, not the end of ann's weekly shift.
    assert_eq!(first["on_call"]["end"], "2026-12-12T09:00:00Z");
    assert_eq!(
        who(&oncall(&d, id, "2026-12-14T07:59:59Z").await),
        Some("ann".into())
    );
    assert_eq!(
        who(&oncall(&d, id, "2026-12-14T08:00:00Z").await),
        Some("ben".into())
    );
    // Saturday 10:30 Berlin is 09:30 UTC: the restricted layer wins.
    assert_eq!(
        who(&oncall(&d, id, "2026-12-19T09:30:00Z").await),
        Some("cat".into())
    );
    assert_eq!(
        who(&oncall(&d, id, "2026-12-19T11:00:00Z").await),
        Some("ben".into())
    );

    // An override for Tuesday beats the rotation; removed, the rotation is back.
    let o = d
        .post(
            &format!("/api/v1/schedules/{id}/overrides"),
            &d.admin,
            json!({"user_id": cat, "start": "2026-12-15T00:00:00Z", "end": "2026-12-16T00:00:00Z"}),
        )
        .await;
    assert_eq!(o.status, 201, "{}", o.text);
    let covered = oncall(&d, id, "2026-12-15T12:00:00Z").await;
    assert_eq!(who(&covered), Some("cat".into()), "{covered}");
    assert_eq!(
        covered["on_call"]["source"],
        json!({"type": "override", "id": o.id()})
    );
    let listed = d
        .get(
            &format!("/api/v1/schedules/{id}/overrides?since=2026-12-15T23:00:00Z"),
            &viewer,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let listed = d
        .get(
            &format!("/api/v1/schedules/{id}/overrides?since=2026-12-16T00:00:00Z"),
            &d.admin,
        )
        .await;
    assert_eq!(
        listed.body,
        json!({"items": [], "next_cursor": null}),
        "over by then"
    );

    // The final schedule shows the same, shift by shift.
    let shifts = d
        .get(
            &format!(
                "/api/v1/schedules/{id}/shifts?from=2026-12-14T00:00:00Z&to=2026-12-16T12:00:00Z"
            ),
            &viewer,
        )
        .await;
    assert_eq!(shifts.status, 200, "{}", shifts.text);
    let got: Vec<(String, String, String, String)> = shifts.body["items"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (
                f("username"),
                s["source"]["type"].as_str().unwrap_or_default().to_owned(),
                f("start"),
                f("end"),
            )
        })
        .collect();
    let row = |u: &str, t: &str, a: &str, b: &str| {
        (u.to_owned(), t.to_owned(), a.to_owned(), b.to_owned())
    };
    assert_eq!(
        got,
        [
            row(
                "ann",
                "layer",
                "2026-12-14T00:00:00Z",
                "2026-12-14T08:00:00Z"
            ),
            row(
                "ben",
                "layer",
                "2026-12-14T08:00:00Z",
                "2026-12-15T00:00:00Z"
            ),
            row(
                "cat",
                "override",
                "2026-12-15T00:00:00Z",
                "2026-12-16T00:00:00Z"
            ),
            row(
                "ben",
                "layer",
                "2026-12-16T00:00:00Z",
                "2026-12-16T12:00:00Z"
            ),
        ],
        "{}",
        shifts.text
    );
    for (query, field) in [
        ("from=2026-12-16T00:00:00Z&to=2026-12-15T00:00:00Z", "to"),
        ("from=2026-01-01T00:00:00Z&to=2026-12-15T00:00:00Z", "to"),
        ("from=yesterday", "from"),
    ] {
        let a = d
            .get(&format!("/api/v1/schedules/{id}/shifts?{query}"), &viewer)
            .await;
        common::ingest::assert_invalid_field(&a, field);
    }
    d.get("/api/v1/schedules/999/shifts", &viewer)
        .await
        .assert_problem(404);
    let del = d
        .delete(
            &format!("/api/v1/schedules/{id}/overrides/{}", o.id()),
            &d.admin,
        )
        .await;
    assert_eq!(del.status, 204, "{}", del.text);
    assert_eq!(
        who(&oncall(&d, id, "2026-12-15T12:00:00Z").await),
        Some("ben".into())
    );

    // Bad input: the field and the reason, nothing stored.
    let bad = |tz: &str, layers: Value| json!({"name": "x", "time_zone": tz, "layers": layers});
    for (body, field) in [
        (
            bad("Berlin", json!([weekly(&[ann], "2026-12-07T09:00:00")])),
            "time_zone",
        ),
        (bad("UTC", json!([])), "layers"),
        (
            bad("UTC", json!([weekly(&[999], "2026-12-07T09:00:00")])),
            "layers[0].users[0]",
        ),
        (
            bad(
                "UTC",
                json!([{"name": "p", "users": [ann], "rotation": "days", "length": 0, "start": "2026-12-07T09:00:00"}]),
            ),
            "layers[0].length",
        ),
    ] {
        let a = d.post("/api/v1/schedules", &d.admin, body).await;
        a.assert_problem(422);
        assert!(a.text.contains(field), "{field}: {}", a.text);
    }
    let a = d
        .post(
            "/api/v1/schedules",
            &d.admin,
            bad("UTC", json!([{"name": "p", "users": [ann], "rotation": "fortnights", "length": 1, "start": "2026-12-07T09:00:00"}])),
        )
        .await;
    assert!(matches!(a.status.as_u16(), 400 | 422), "{}", a.text);
    let dup = d
        .post(
            "/api/v1/schedules",
            &d.admin,
            bad("UTC", json!([weekly(&[ann], "2026-12-07T09:00:00")])).tap_name("payments"),
        )
        .await;
    dup.assert_problem(409);
    for (body, field) in [
        (
            json!({"user_id": cat, "start": "2026-12-15T00:00:00Z", "end": "2026-12-15T00:00:00Z"}),
            "end",
        ),
        (
            json!({"user_id": 999, "start": "2026-12-15T00:00:00Z", "end": "2026-12-16T00:00:00Z"}),
            "user_id",
        ),
        (
            json!({"user_id": cat, "start": "2026-11-15T00:00:00Z", "end": "2026-11-30T23:59:00Z"}),
            "in the past",
        ),
        (
            json!({"user_id": cat, "start": "9999-01-01T00:00:00Z", "end": "9999-01-02T00:00:00Z"}),
            "between the years",
        ),
    ] {
        let a = d
            .post(&format!("/api/v1/schedules/{id}/overrides"), &d.admin, body)
            .await;
        a.assert_problem(422);
        assert!(a.text.contains(field), "{field}: {}", a.text);
    }
    let a = d
        .get(
            &format!("/api/v1/schedules/{id}/oncall?at=yesterday"),
            &d.admin,
        )
        .await;
    a.assert_problem(422);
    assert!(a.text.contains("at"), "{}", a.text);
    // Far enough that a shift's end would not be a four-digit year: refused.
    let a = d
        .get(
            &format!("/api/v1/schedules/{id}/oncall?at=9999-12-31T23:59:59Z"),
            &d.admin,
        )
        .await;
    a.assert_problem(422);
    assert!(a.text.contains("between the years"), "{}", a.text);
    d.get("/api/v1/schedules/999/oncall", &d.admin)
        .await
        .assert_problem(404);
    d.post(
        "/api/v1/schedules",
        &viewer,
        bad("UTC", json!([weekly(&[ann], "2026-12-07T09:00:00")])),
    )
    .await
    .assert_problem(403);
    let listed = d.get("/api/v1/schedules", &viewer).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );

    // Changing the layers changes the answer.
    let a = d
        .patch(
            &format!("/api/v1/schedules/{id}"),
            &d.admin,
            json!({"time_zone": "UTC", "layers": [weekly(&[ben, ann], "2026-12-07T09:00:00")]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        who(&oncall(&d, id, "2026-12-07T09:00:00Z").await),
        Some("ben".into())
    );

    // A person whose overrides have all ended may be deleted, and their overrides go too.
    let (dan, _) = d.user("dan", "Engineer").await;
    let o = d
        .post(
            &format!("/api/v1/schedules/{id}/overrides"),
            &d.admin,
            json!({"user_id": dan, "start": "2026-12-01T00:00:00Z", "end": "2026-12-01T06:00:00Z"}),
        )
        .await;
    assert_eq!(o.status, 201, "{}", o.text);
    d.delete(&format!("/api/v1/users/{dan}"), &d.admin)
        .await
        .assert_problem(409);
    clock.advance(chrono::Duration::hours(7));
    let gone = d.delete(&format!("/api/v1/users/{dan}"), &d.admin).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let listed = d
        .get(&format!("/api/v1/schedules/{id}/overrides"), &d.admin)
        .await;
    assert!(
        listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|o| o["user_id"] != dan),
        "{}",
        listed.text
    );
}

/// Sets `name` on a JSON object (test sugar).
trait TapName {
    fn tap_name(self, name: &str) -> Value;
}

impl TapName for Value {
    fn tap_name(mut self, name: &str) -> Value {
        self["name"] = json!(name);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_level_pages_whoever_the_schedule_has_on_call() {
    let hook = webhook_fake().await;
    // Tuesday 2026-12-08 12:00 UTC: day 1 of a daily rotation [ann, ben] -> ben.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let mut ids = Vec::new();
    for name in ["ann", "ben"] {
        let (id, _) = d.user(name, "Engineer").await;
        contact(&d, id, "webhook", &hook.url(&format!("/{name}"))).await;
        ids.push(id);
    }
    let s = d
        .post(
            "/api/v1/schedules",
            &d.admin,
            json!({"name": "web", "time_zone": "UTC", "layers": [
                {"name": "daily", "users": ids, "rotation": "days", "length": 1, "start": "2026-12-07T00:00:00"}
            ]}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
    let p = d
        .post(
            "/api/v1/escalation-policies",
            &d.admin,
            json!({"name": "web", "steps": [
                {"delay_minutes": 10, "targets": [{"type": "schedule", "id": s.id()}]}
            ]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Web down", "impact": "high", "urgency": "high", "escalation_policy_id": p.id()}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    eventually("ben paged", Duration::from_secs(20), async || {
        (!hook.to("/ben").is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(hook.to("/ann").is_empty(), "only the one on call is paged");

    // A schedule a policy pages cannot be deleted.
    let del = d
        .delete(&format!("/api/v1/schedules/{}", s.id()), &d.admin)
        .await;
    del.assert_problem(409);
    assert!(del.text.contains("'web'"), "{}", del.text);
    // Nor can a policy name a schedule that does not exist.
    let a = d
        .post(
            "/api/v1/escalation-policies",
            &d.admin,
            json!({"name": "x", "steps": [{"delay_minutes": 5, "targets": [{"type": "schedule", "id": 999}]}]}),
        )
        .await;
    a.assert_problem(422);
    assert!(a.text.contains("steps[0].targets[0]"), "{}", a.text);
}
