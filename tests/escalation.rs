//! Escalation policies, black-box: the real daemon with a clock the test moves, users
//! reached through webhook contact methods on a loopback fake. Level 1 is paged when an
//! incident opens, the next level after each level's delay unless somebody acknowledges,
//! the timer survives a restart, a manual escalation pages the next level at once, and
//! bad policies are refused with the field and the reason.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::TestDaemon;
use common::fakes::{Fake, webhook_fake};
use common::notify::*;
use incidentd::domain::clock::{Clock, ManualClock};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Users `names` with a webhook contact method each at `/{name}` on `hook`; their ids.
async fn pageable_users(d: &TestDaemon, hook: &Fake, names: &[&str]) -> Vec<u64> {
    let mut ids = Vec::new();
    for name in names {
        let (id, _) = d.user(name, "Engineer").await;
        contact(d, id, "webhook", &hook.url(&format!("/{name}"))).await;
        ids.push(id);
    }
    ids
}

async fn create_policy(d: &TestDaemon, body: Value) -> u64 {
    let a = d.post("/api/v1/escalation-policies", &d.admin, body).await;
    assert_eq!(a.status, 201, "create policy: {}", a.text);
    a.id()
}

fn user(id: u64) -> Value {
    json!({"type": "user", "id": id})
}

/// How many pages reached `/{name}` on the fake.
fn pages_to(hook: &Fake, name: &str) -> usize {
    hook.to(&format!("/{name}")).len()
}

/// Waits until `/{name}` has had `n` pages.
async fn paged(hook: &Fake, name: &str, n: usize) {
    eventually(&format!("{name} paged {n} time(s)"), WAIT, async || {
        (pages_to(hook, name) >= n).then_some(())
    })
    .await;
}

/// Gives the worker time to act on what it should not act on, then checks the counts.
async fn still(hook: &Fake, expected: &[(&str, usize)]) {
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (name, n) in expected {
        assert_eq!(pages_to(hook, name), *n, "pages to {name}");
    }
}

async fn escalation(d: &TestDaemon, incident: u64) -> Value {
    let a = d
        .get(
            &format!("/api/v1/incidents/{incident}/escalation"),
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn timeline_kinds(entries: &[Value], kind: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["summary"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_are_paged_in_turn_and_the_timer_survives_a_restart() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let mut d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let ids = pageable_users(&d, &hook, &["alice", "bob", "carol"]).await;
    let group = d
        .post("/api/v1/groups", &d.admin, json!({"name": "dba"}))
        .await;
    assert_eq!(group.status, 201, "{}", group.text);
    let add = d
        .put(
            &format!("/api/v1/groups/{}/members/{}", group.id(), ids[2]),
            &d.admin,
            json!({}),
        )
        .await;
    assert!(add.status.is_success(), "{}", add.text);
    let policy = create_policy(
        &d,
        json!({"name": "Payments on-call", "steps": [
            {"delay_minutes": 5, "targets": [user(ids[0])]},
            {"delay_minutes": 10, "targets": [user(ids[1])]},
            {"delay_minutes": 10, "targets": [{"type": "group", "id": group.id()}]},
        ]}),
    )
    .await;
    let service = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "payments", "escalation_policy_id": policy}),
        )
        .await;
    assert_eq!(service.status, 201, "{}", service.text);
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Card payments failing", "impact": "high", "urgency": "high", "service_id": service.id()}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    let opened = a.body["created_at"]
        .as_str()
        .expect("created_at")
        .to_owned();

    // Level 1 at once.
    paged(&hook, "alice", 1).await;
    let run = escalation(&d, id).await;
    assert_eq!(run["state"], "active", "{run}");
    assert_eq!(run["policy_id"], policy);
    assert_eq!(run["next"], json!({"step": 1, "round": 0}));
    let due = chrono::DateTime::parse_from_rfc3339(run["due_at"].as_str().expect("due_at"))
        .expect("time");
    let opened = chrono::DateTime::parse_from_rfc3339(&opened).expect("time");
    assert_eq!(due - opened, chrono::Duration::minutes(5), "{run}");
    let page = &hook.to("/alice")[0].json();
    assert_eq!(page["event"]["kind"], "incident.paged", "{page}");

    // Not before level 1's delay is over; then level 2.
    clock.advance(chrono::Duration::minutes(4));
    still(&hook, &[("alice", 1), ("bob", 0)]).await;
    clock.advance(chrono::Duration::minutes(1));
    paged(&hook, "bob", 1).await;

    // Down for a while: level 3 falls due meanwhile and is paged after the restart, once.
    let dir = d.dir.take().expect("dir");
    d.stop().await;
    drop(d);
    clock.advance(chrono::Duration::minutes(15));
    let d = TestDaemon::start_in(dir.path(), |_| {}, Arc::new(clock.clone())).await;
    paged(&hook, "carol", 1).await;
    still(&hook, &[("alice", 1), ("bob", 1), ("carol", 1)]).await;
    let run = escalation(&d, id).await;
    assert_eq!(run["state"], "exhausted", "{run}");
    assert_eq!(run["pages"], 3, "{run}");
    assert!(run["due_at"].is_null(), "{run}");

    let pages = timeline_kinds(&timeline(&d, id).await, "paged");
    assert_eq!(pages.len(), 3, "{pages:#?}");
    assert!(
        pages[0].starts_with("paged level 1 of 'Payments on-call': alice"),
        "{pages:#?}"
    );
    assert!(
        pages[2].contains("carol") && pages[2].contains("last level"),
        "{pages:#?}"
    );
    let log = deliveries(&d, &format!("incident_id={id}&channel=webhook")).await;
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(
        log.iter().all(|x| x["event"] == "incident.paged"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_stops_escalating_and_escalating_by_hand_pages_the_next_level() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let ids = pageable_users(&d, &hook, &["alice", "bob"]).await;
    let policy = create_policy(
        &d,
        json!({"name": "web", "repeat": 1, "steps": [
            {"delay_minutes": 5, "targets": [user(ids[0])]},
            {"delay_minutes": 5, "targets": [user(ids[1])]},
        ]}),
    )
    .await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Checkout slow", "impact": "medium", "urgency": "high", "escalation_policy_id": policy}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    paged(&hook, "alice", 1).await;

    // Acknowledged: nothing more by itself, however long it stays open.
    d.transition(id, "acknowledged").await;
    clock.advance(chrono::Duration::minutes(60));
    still(&hook, &[("alice", 1), ("bob", 0)]).await;
    let run = escalation(&d, id).await;
    assert_eq!(run["state"], "stopped", "{run}");

    // Asking for help pages the next level now, and starts no timer.
    let e = d
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            &d.admin,
            json!({"note": "need the database team"}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    paged(&hook, "bob", 1).await;
    clock.advance(chrono::Duration::minutes(60));
    still(&hook, &[("alice", 1), ("bob", 1)]).await;
    let run = escalation(&d, id).await;
    assert_eq!(run["state"], "stopped", "{run}");
    assert_eq!(run["next"], json!({"step": 0, "round": 1}), "{run}");

    // Resolved, then reopened: escalation starts over at level 1.
    d.transition(id, "resolved").await;
    d.transition(id, "new").await;
    paged(&hook, "alice", 2).await;
    let run = escalation(&d, id).await;
    assert_eq!(run["state"], "active", "{run}");
    assert_eq!(run["pages"], 1, "a fresh run: {run}");

    // While it runs, escalating by hand pages level 2 at once and restarts its delay.
    let e = d
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    paged(&hook, "bob", 2).await;
    let run = escalation(&d, id).await;
    assert_eq!(run["next"], json!({"step": 0, "round": 1}), "{run}");
    // Level 2's delay, then the repeat round pages alice again.
    clock.advance(chrono::Duration::minutes(5));
    paged(&hook, "alice", 3).await;
    still(&hook, &[("alice", 3), ("bob", 2)]).await;

    // A closed incident cannot be escalated.
    d.transition(id, "resolved").await;
    d.transition(id, "closed").await;
    let e = d
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            &d.admin,
            json!({}),
        )
        .await;
    e.assert_problem(409);
    assert_eq!(escalation(&d, id).await["state"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_through_the_integrations_policy_until_they_resolve() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let ids = pageable_users(&d, &hook, &["alice", "bob"]).await;
    let policy = create_policy(
        &d,
        json!({"name": "infra", "steps": [
            {"delay_minutes": 5, "targets": [user(ids[0])]},
            {"delay_minutes": 5, "targets": [user(ids[1])]},
        ]}),
    )
    .await;
    let int = d
        .post(
            "/api/v1/integrations",
            &d.admin,
            json!({"name": "prom", "kind": "alertmanager", "escalation_policy_id": policy}),
        )
        .await;
    assert_eq!(int.status, 201, "{}", int.text);
    let token = int.body["token"].as_str().expect("token").to_owned();
    let webhook = |status: &str| {
        json!({"version": "4", "status": status, "receiver": "incidentd", "groupKey": "{}:{alertname=\"DiskFull\"}",
               "truncatedAlerts": 0, "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {}, "commonAnnotations": {},
               "externalURL": "http://am", "alerts": [{"status": status, "labels": {"alertname": "DiskFull", "instance": "db1"},
               "annotations": {"summary": "disk full"}, "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
               "generatorURL": "http://prom", "fingerprint": "d1"}]})
    };
    let a = d.hook("alertmanager", &token, &webhook("firing")).await;
    assert!(a.status.is_success(), "{}", a.text);
    paged(&hook, "alice", 1).await;
    let list = d.get("/api/v1/incidents", &d.admin).await;
    let id = list.body["items"][0]["id"].as_u64().expect("incident");

    // The alert resolves before level 2 is due: the incident resolves and nobody else is
    // woken up.
    let a = d.hook("alertmanager", &token, &webhook("resolved")).await;
    assert!(a.status.is_success(), "{}", a.text);
    assert_eq!(incident(&d, id).await["status"], "resolved");
    clock.advance(chrono::Duration::minutes(30));
    still(&hook, &[("alice", 1), ("bob", 0)]).await;
    assert_eq!(escalation(&d, id).await["state"], "stopped");
}

#[tokio::test]
async fn policies_are_checked_and_one_in_use_is_not_deleted() {
    let d = TestDaemon::start().await;
    let (alice, _) = d.user("alice", "Engineer").await;
    let (_, viewer) = d.user("vic", "Viewer").await;

    let bad = |body: Value, field: &'static str| (body, field);
    for (body, field) in [
        bad(json!({"name": "x", "steps": []}), "steps"),
        bad(
            json!({"name": "x", "steps": [{"delay_minutes": 0, "targets": [user(alice)]}]}),
            "steps[0].delay_minutes",
        ),
        bad(
            json!({"name": "x", "steps": [{"delay_minutes": 5, "targets": [user(999)]}]}),
            "steps[0].targets[0]",
        ),
        bad(
            json!({"name": "x", "steps": [{"delay_minutes": 5, "targets": [{"type": "group", "id": 999}]}]}),
            "steps[0].targets[0]",
        ),
        bad(
            json!({"name": "x", "repeat": 10, "steps": [{"delay_minutes": 5, "targets": [user(alice)]}]}),
            "repeat",
        ),
        bad(
            json!({"name": " ", "steps": [{"delay_minutes": 5, "targets": [user(alice)]}]}),
            "name",
        ),
    ] {
        let a = d.post("/api/v1/escalation-policies", &d.admin, body).await;
        a.assert_problem(422);
        assert!(a.text.contains(field), "{field}: {}", a.text);
    }
    let a = d
        .post(
            "/api/v1/escalation-policies",
            &d.admin,
            json!({"name": "x", "steps": [{"delay_minutes": 5, "targets": [{"type": "team", "id": 1}]}]}),
        )
        .await;
    assert!(matches!(a.status.as_u16(), 400 | 422), "{}", a.text);
    let listed = d.get("/api/v1/escalation-policies", &d.admin).await;
    assert_eq!(listed.body["items"], json!([]), "nothing stored");

    let body = json!({"name": "Ops", "steps": [{"delay_minutes": 5, "targets": [user(alice)]}]});
    let a = d
        .post("/api/v1/escalation-policies", &viewer, body.clone())
        .await;
    a.assert_problem(403);
    let id = create_policy(&d, body.clone()).await;
    let mut dup = body.clone();
    dup["name"] = json!("ops");
    d.post("/api/v1/escalation-policies", &d.admin, dup)
        .await
        .assert_problem(409);
    assert_eq!(
        d.get(&format!("/api/v1/escalation-policies/{id}"), &viewer)
            .await
            .body["name"],
        "Ops"
    );

    // Pointing at a policy that does not exist is refused; pointing at this one works.
    for path in ["/api/v1/services", "/api/v1/integrations"] {
        let mut b = json!({"name": "svc-x", "escalation_policy_id": 999});
        if path.ends_with("integrations") {
            b["kind"] = json!("alertmanager");
        }
        let a = d.post(path, &d.admin, b).await;
        a.assert_problem(422);
        assert!(a.text.contains("escalation_policy_id"), "{}", a.text);
    }
    let svc = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "web", "escalation_policy_id": id}),
        )
        .await;
    assert_eq!(svc.status, 201, "{}", svc.text);

    // Changing the levels is checked the same way.
    let a = d
        .patch(
            &format!("/api/v1/escalation-policies/{id}"),
            &d.admin,
            json!({"steps": [{"delay_minutes": 5, "targets": []}]}),
        )
        .await;
    a.assert_problem(422);
    let a = d
        .patch(
            &format!("/api/v1/escalation-policies/{id}"),
            &d.admin,
            json!({"name": "Ops day", "repeat": 2}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["repeat"], 2);

    // In use by a service: 409 naming it; free once the service lets go.
    let a = d
        .delete(&format!("/api/v1/escalation-policies/{id}"), &d.admin)
        .await;
    a.assert_problem(409);
    assert!(a.text.contains("service 'web'"), "{}", a.text);
    let a = d
        .patch(
            &format!("/api/v1/services/{}", svc.id()),
            &d.admin,
            json!({"escalation_policy_id": null}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = d
        .delete(&format!("/api/v1/escalation-policies/{id}"), &d.admin)
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    d.get(&format!("/api/v1/escalation-policies/{id}"), &d.admin)
        .await
        .assert_problem(404);
    let audit = d
        .get("/api/v1/audit?limit=200", &d.admin)
        .await
        .body
        .to_string();
    for action in [
        "escalation_policy.create",
        "escalation_policy.update",
        "escalation_policy.delete",
    ] {
        assert!(audit.contains(action), "{action}");
    }
}

/// `POST /escalate` needs no body (as `curl -X POST` sends none); without a policy the
/// timeline says nobody is paged by it, rather than suggest that help is on its way. A
/// body-less create gets the 422 naming what is missing, not a JSON syntax error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalating_without_a_body_or_a_policy_says_what_happened() {
    let d = TestDaemon::start().await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Cache misses", "impact": "low", "urgency": "low"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    let e = d
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/incidents/{id}/escalate"),
            Some(&d.admin),
            None,
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    let timeline = d
        .get(&format!("/api/v1/incidents/{id}/timeline"), &d.admin)
        .await;
    assert!(
        timeline
            .text
            .contains("escalated by admin (no escalation policy: nobody is paged by escalation)"),
        "{}",
        timeline.text
    );
    // A blank note is no note; an oversized one is refused like every other note.
    let path = format!("/api/v1/incidents/{id}/escalate");
    let blank = d.post(&path, &d.admin, json!({"note": "  "})).await;
    assert_eq!(blank.status, 200, "{}", blank.text);
    let timeline = d
        .get(&format!("/api/v1/incidents/{id}/timeline"), &d.admin)
        .await;
    assert!(
        !timeline.text.contains("escalated by admin: "),
        "{}",
        timeline.text
    );
    let huge = d
        .post(&path, &d.admin, json!({"note": "n".repeat(20_001)}))
        .await;
    huge.assert_problem(422);
    assert!(huge.body["errors"]["note"].is_array(), "{}", huge.text);
    let empty = d
        .call(
            reqwest::Method::POST,
            "/api/v1/incidents",
            Some(&d.admin),
            None,
        )
        .await;
    empty.assert_problem(422);
    assert!(empty.text.contains("title"), "{}", empty.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_incident_pages_again_when_the_snooze_ends_even_across_a_restart() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let mut d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let ids = pageable_users(&d, &hook, &["alice"]).await;
    let policy = create_policy(
        &d,
        json!({"name": "web", "steps": [{"delay_minutes": 5, "targets": [user(ids[0])]}]}),
    )
    .await;
    let service = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "web", "escalation_policy_id": policy}),
        )
        .await;
    assert_eq!(service.status, 201, "{}", service.text);
    let open = |title: &str| json!({"title": title, "impact": "high", "urgency": "high", "service_id": service.id()});
    let a = d
        .post("/api/v1/incidents", &d.admin, open("Checkout slow"))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();
    paged(&hook, "alice", 1).await;
    let snooze = |minutes: Value| json!({"minutes": minutes, "note": "waiting for the deploy"});
    let path = format!("/api/v1/incidents/{id}/snooze");

    // Only an acknowledged incident snoozes; a week at most.
    let refused = d.post(&path, &d.admin, snooze(json!(30))).await;
    refused.assert_problem(409);
    assert!(
        refused.text.contains("acknowledge it first"),
        "{}",
        refused.text
    );
    d.transition(id, "acknowledged").await;
    for bad in [json!(0), json!(10081), json!(-5), json!("soon")] {
        let a = d.post(&path, &d.admin, snooze(bad.clone())).await;
        assert!(matches!(a.status.as_u16(), 400 | 422), "{bad}: {}", a.text);
        assert!(a.text.contains("minutes"), "{}", a.text);
    }
    let (_, viewer) = d.user("vera", "Viewer").await;
    d.post(&path, &viewer, snooze(json!(30)))
        .await
        .assert_problem(403);

    let a = d.post(&path, &d.admin, snooze(json!(30))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "acknowledged");
    let until =
        chrono::DateTime::parse_from_rfc3339(a.body["snoozed_until"].as_str().expect("until"))
            .expect("time");
    assert_eq!(
        until.with_timezone(&Utc),
        clock.now() + chrono::Duration::minutes(30)
    );
    let snoozed = timeline_kinds(&timeline(&d, id).await, "snoozed");
    assert_eq!(snoozed.len(), 1, "{snoozed:?}");
    assert!(
        snoozed[0].starts_with("snoozed for 30 min, until "),
        "{snoozed:?}"
    );
    assert!(
        snoozed[0].ends_with(": waiting for the deploy"),
        "{snoozed:?}"
    );

    // Snoozed again for longer: the new time counts, not the first one.
    let a = d.post(&path, &d.admin, json!({"minutes": 45})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    clock.advance(chrono::Duration::minutes(31));
    still(&hook, &[("alice", 1)]).await;
    assert_eq!(incident(&d, id).await["status"], "acknowledged");

    // Not before its time, and not while the daemon is down: at the first pass after.
    clock.advance(chrono::Duration::minutes(13));
    still(&hook, &[("alice", 1)]).await;
    let dir = d.dir.take().expect("dir");
    d.stop().await;
    drop(d);
    clock.advance(chrono::Duration::minutes(2));
    let d = TestDaemon::start_in(dir.path(), |_| {}, Arc::new(clock.clone())).await;
    paged(&hook, "alice", 2).await;
    let i = incident(&d, id).await;
    assert_eq!(i["status"], "new", "{i}");
    assert!(i["snoozed_until"].is_null(), "{i}");
    let run = escalation(&d, id).await;
    assert_eq!(run["pages"], 1, "a new run from the first level: {run}");
    let woke = timeline_kinds(&timeline(&d, id).await, "status_changed");
    assert!(
        woke.iter()
            .any(|s| s == "acknowledged → new: the snooze ended; paging again from level 1"),
        "{woke:?}"
    );
    let audit = d.get("/api/v1/audit?limit=500", &d.admin).await;
    assert!(
        audit.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["action"] == "incident.transition"
                && e["actor"]["kind"] == "system"
                && e["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("the snooze ended"))),
        "{}",
        audit.text
    );
    still(&hook, &[("alice", 2)]).await;

    // Resolving a snoozed incident ends the snooze: nothing pages later.
    let b = d
        .post("/api/v1/incidents", &d.admin, open("Search slow"))
        .await;
    assert_eq!(b.status, 201, "{}", b.text);
    paged(&hook, "alice", 3).await;
    d.transition(b.id(), "acknowledged").await;
    let s = d
        .post(
            &format!("/api/v1/incidents/{}/snooze", b.id()),
            &d.admin,
            json!({"minutes": 10}),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    d.transition(b.id(), "resolved").await;
    assert!(incident(&d, b.id()).await["snoozed_until"].is_null());
    clock.advance(chrono::Duration::minutes(11));
    still(&hook, &[("alice", 3)]).await;
    assert_eq!(incident(&d, b.id()).await["status"], "resolved");
}

/// Moving an incident to another service moves it to that service's escalation policy (and
/// restarts escalation while nobody has responded), as PagerDuty does on a reassignment;
/// an incident with a policy of its own keeps it.
#[tokio::test]
async fn moving_an_incident_to_another_service_takes_that_services_policy() {
    let d = TestDaemon::start().await;
    let (ann, _) = d.user("ann", "Engineer").await;
    let mut policies = Vec::new();
    for name in ["checkout", "payments", "own"] {
        policies.push(
            create_policy(
                &d,
                json!({"name": name, "steps": [{"delay_minutes": 30, "targets": [user(ann)]}]}),
            )
            .await,
        );
    }
    let mut services = Vec::new();
    for (name, policy) in [("checkout", policies[0]), ("payments", policies[1])] {
        let s = d
            .post(
                "/api/v1/services",
                &d.admin,
                json!({"name": name, "escalation_policy_id": policy}),
            )
            .await;
        assert_eq!(s.status, 201, "{}", s.text);
        services.push(s.id());
    }
    let open = |body: Value| {
        let d = &d;
        async move {
            let a = d.post("/api/v1/incidents", &d.admin, body).await;
            assert_eq!(a.status, 201, "{}", a.text);
            a.id()
        }
    };
    let inherited = open(json!({"title": "t", "impact": "high", "urgency": "high",
                                "service_id": services[0]}))
    .await;
    let own = open(json!({"title": "t", "impact": "high", "urgency": "high",
                          "service_id": services[0], "escalation_policy_id": policies[2]}))
    .await;
    for id in [inherited, own] {
        let a = d
            .patch(
                &format!("/api/v1/incidents/{id}"),
                &d.admin,
                json!({"service_id": services[1]}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let i = d
        .get(&format!("/api/v1/incidents/{inherited}"), &d.admin)
        .await
        .body;
    assert_eq!(i["escalation_policy_id"], policies[1], "{i}");
    // Restarted under the new policy: its level 1 was paged at once.
    let r = escalation(&d, inherited).await;
    assert_eq!(
        (r["policy_id"].clone(), r["pages"].clone()),
        (json!(policies[1]), json!(1)),
        "{r}"
    );
    let i = d
        .get(&format!("/api/v1/incidents/{own}"), &d.admin)
        .await
        .body;
    assert_eq!(i["escalation_policy_id"], policies[2], "{i}");
    assert_eq!(escalation(&d, own).await["policy_id"], policies[2]);
    // A service without a policy does not stop the paging the incident had.
    let bare = d
        .post("/api/v1/services", &d.admin, json!({"name": "no-policy"}))
        .await;
    assert_eq!(bare.status, 201, "{}", bare.text);
    let a = d
        .patch(
            &format!("/api/v1/incidents/{inherited}"),
            &d.admin,
            json!({"service_id": bare.id()}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["escalation_policy_id"], policies[1], "{}", a.text);
}

/// A level with nobody on it (a schedule nobody is on yet) does not hold up the page for
/// its delay: the next level is paged at once, by the timer and by a manual escalation,
/// as PagerDuty passes an escalation rule with nobody on call. An incident whose policy
/// was deleted while it was resolved says on escalation that nobody is paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_with_nobody_on_it_is_passed_at_once() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let ids = pageable_users(&d, &hook, &["alice", "bob"]).await;
    let empty = d
        .post(
            "/api/v1/schedules",
            &d.admin,
            json!({"name": "from 2040", "time_zone": "UTC", "layers": [
                {"name": "weekly", "users": [ids[0]], "rotation": "weeks", "length": 1,
                 "start": "2040-01-02T09:00:00"}]}),
        )
        .await;
    assert_eq!(empty.status, 201, "{}", empty.text);
    let nobody = json!({"type": "schedule", "id": empty.id()});
    let policy = create_policy(
        &d,
        json!({"name": "night", "steps": [
            {"delay_minutes": 30, "targets": [nobody]},
            {"delay_minutes": 30, "targets": [user(ids[1])]},
            {"delay_minutes": 30, "targets": [nobody]},
            {"delay_minutes": 30, "targets": [user(ids[0])]},
        ]}),
    )
    .await;
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": "Disk full", "impact": "high", "urgency": "high", "escalation_policy_id": policy}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.id();

    // Level 1 has nobody: level 2 (bob) is paged without waiting its 30 minutes.
    paged(&hook, "bob", 1).await;
    let pages = timeline_kinds(&timeline(&d, id).await, "paged");
    assert!(
        pages[0].contains("nobody") && pages[0].contains("level 2 follows at once"),
        "{pages:?}"
    );
    let run = escalation(&d, id).await;
    assert_eq!(run["next"], json!({"step": 2, "round": 0}), "{run}");
    still(&hook, &[("alice", 0), ("bob", 1)]).await;

    // Acknowledged, then escalated by hand: level 3 has nobody, so level 4 (alice) at once.
    d.transition(id, "acknowledged").await;
    let e = d
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    paged(&hook, "alice", 1).await;
    let pages = timeline_kinds(&timeline(&d, id).await, "paged");
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(
        pages[2].contains("level 3") && pages[2].contains("nobody"),
        "{pages:?}"
    );
    assert!(
        pages[3].contains("level 4") && pages[3].contains("alice"),
        "{pages:?}"
    );
    assert_eq!(escalation(&d, id).await["state"], "exhausted");

    // Deleted while the incident was resolved; reopened, escalating says nobody is paged.
    let refused = d
        .delete(&format!("/api/v1/escalation-policies/{policy}"), &d.admin)
        .await;
    refused.assert_problem(409);
    d.transition(id, "resolved").await;
    let gone = d
        .delete(&format!("/api/v1/escalation-policies/{policy}"), &d.admin)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    d.transition(id, "new").await;
    let e = d
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    let escalated = timeline_kinds(&timeline(&d, id).await, "escalated");
    assert!(
        escalated.iter().any(|s| s.contains(&format!(
            "policy {policy} no longer exists: nobody is paged"
        ))),
        "{escalated:?}"
    );
    still(&hook, &[("alice", 1), ("bob", 1)]).await;
}
