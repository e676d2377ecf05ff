//! Personal paging rules, black-box: the real daemon with a clock the test moves and a
//! person reached through two webhook contact methods on a loopback fake. Each rule's
//! step goes out after its delay; a step that falls due after somebody acknowledged the
//! incident is cancelled, not sent; without rules every method is paged at once; bad
//! rules are refused with the field and the reason, and only the person (or `user:write`)
//! may change them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::TestDaemon;
use common::fakes::{Fake, webhook_fake};
use common::notify::*;
use incidentd::domain::clock::ManualClock;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn hits(hook: &Fake, path: &str) -> usize {
    hook.to(path).len()
}

async fn hit(hook: &Fake, path: &str, n: usize) {
    eventually(&format!("{path} reached {n} time(s)"), WAIT, async || {
        (hits(hook, path) >= n).then_some(())
    })
    .await;
}

/// Gives the outbox time to send what it should not, then checks the count.
async fn still(hook: &Fake, path: &str, n: usize) {
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(hits(hook, path), n, "requests to {path}");
}

async fn open_on(d: &TestDaemon, service: u64, title: &str) -> u64 {
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": title, "impact": "high", "urgency": "high", "service_id": service}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

fn rules_path(user: u64) -> String {
    format!("/api/v1/users/{user}/notification-rules")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_follow_their_delays_and_stop_once_somebody_acknowledges() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let (alice, alice_token) = d.user("alice", "Engineer").await;
    let now_method = contact(&d, alice, "webhook", &hook.url("/alice/now")).await;
    let late_method = contact(&d, alice, "webhook", &hook.url("/alice/late")).await;

    // Alice sets her own rules: the first webhook at once, the second after 5 minutes.
    let late = d
        .post(
            &rules_path(alice),
            &alice_token,
            json!({"contact_method_id": late_method, "delay_minutes": 5}),
        )
        .await;
    assert_eq!(late.status, 201, "{}", late.text);
    let first = d
        .post(
            &rules_path(alice),
            &alice_token,
            json!({"contact_method_id": now_method}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["delay_minutes"], 0);
    let listed = d.get(&rules_path(alice), &alice_token).await;
    let delays: Vec<&Value> = listed.body["items"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| &r["delay_minutes"])
        .collect();
    assert_eq!(delays, [&json!(0), &json!(5)], "by delay: {}", listed.text);

    let policy = d
        .post(
            "/api/v1/escalation-policies",
            &d.admin,
            json!({"name": "payments", "steps": [{"delay_minutes": 30, "targets": [{"type": "user", "id": alice}]}]}),
        )
        .await;
    assert_eq!(policy.status, 201, "{}", policy.text);
    let service = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "payments", "escalation_policy_id": policy.id()}),
        )
        .await;
    assert_eq!(service.status, 201, "{}", service.text);

    // Nobody answers: the first step at once, the second after five minutes.
    let id = open_on(&d, service.id(), "Card payments failing").await;
    hit(&hook, "/alice/now", 1).await;
    let page = hook.to("/alice/now")[0].json();
    assert_eq!(page["event"]["kind"], "incident.paged", "{page}");
    clock.advance(chrono::Duration::minutes(4));
    still(&hook, "/alice/late", 0).await;
    let log = deliveries(&d, &format!("incident_id={id}&status=pending")).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["target"], hook.url("/alice/late"));
    clock.advance(chrono::Duration::minutes(1));
    hit(&hook, "/alice/late", 1).await;

    // Alice acknowledges the next one within the five minutes: the late step is cancelled.
    let second = open_on(&d, service.id(), "Refunds failing").await;
    hit(&hook, "/alice/now", 2).await;
    clock.advance(chrono::Duration::minutes(2));
    let ack = d
        .post(
            &format!("/api/v1/incidents/{second}/transition"),
            &alice_token,
            json!({"to": "acknowledged"}),
        )
        .await;
    assert_eq!(ack.status, 200, "{}", ack.text);
    clock.advance(chrono::Duration::minutes(3));
    let cancelled = eventually("the late step is cancelled", WAIT, async || {
        let log = deliveries(&d, &format!("incident_id={second}&status=cancelled")).await;
        (!log.is_empty()).then_some(log)
    })
    .await;
    assert_eq!(cancelled[0]["target"], hook.url("/alice/late"));
    assert!(
        cancelled[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("acknowledged"),
        "{cancelled:#?}"
    );
    assert_eq!(cancelled[0]["attempts"], 0);
    still(&hook, "/alice/late", 1).await;

    // Removing the contact method removes its rule; without rules, every method at once.
    let gone = d
        .delete(
            &format!("/api/v1/users/{alice}/contact-methods/{late_method}"),
            &alice_token,
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let listed = d.get(&rules_path(alice), &alice_token).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    let del = d
        .delete(
            &format!("{}/{}", rules_path(alice), first.id()),
            &alice_token,
        )
        .await;
    assert_eq!(del.status, 204, "{}", del.text);
    let other = contact(&d, alice, "webhook", &hook.url("/alice/other")).await;
    assert!(other > 0);
    let third = open_on(&d, service.id(), "Payouts failing").await;
    hit(&hook, "/alice/now", 3).await;
    hit(&hook, "/alice/other", 1).await;

    // A reopened incident pages again, and acknowledging it again stops the steps that
    // still wait, though it was acknowledged once before.
    let rule = d
        .post(
            &rules_path(alice),
            &alice_token,
            json!({"contact_method_id": other, "delay_minutes": 10}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.text);
    for to in ["acknowledged", "resolved"] {
        let a = d
            .post(
                &format!("/api/v1/incidents/{third}/transition"),
                &alice_token,
                json!({"to": to}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    clock.advance(chrono::Duration::minutes(1));
    let reopen = d
        .post(
            &format!("/api/v1/incidents/{third}/transition"),
            &d.admin,
            json!({"to": "new"}),
        )
        .await;
    assert_eq!(reopen.status, 200, "{}", reopen.text);
    let waiting = eventually("the reopened incident's page waits", WAIT, async || {
        let log = deliveries(&d, &format!("incident_id={third}&status=pending")).await;
        (!log.is_empty()).then_some(log)
    })
    .await;
    assert_eq!(waiting[0]["target"], hook.url("/alice/other"));
    clock.advance(chrono::Duration::minutes(1));
    let ack = d
        .post(
            &format!("/api/v1/incidents/{third}/transition"),
            &alice_token,
            json!({"to": "acknowledged"}),
        )
        .await;
    assert_eq!(ack.status, 200, "{}", ack.text);
    let log = deliveries(&d, &format!("incident_id={third}&status=cancelled")).await;
    assert_eq!(
        log.len(),
        1,
        "cancelled in the acknowledging transaction: {log:#?}"
    );
    clock.advance(chrono::Duration::minutes(10));
    still(&hook, "/alice/other", 1).await;
}

#[tokio::test]
async fn bad_rules_are_refused_and_only_the_person_or_an_admin_may_change_them() {
    let d = TestDaemon::start().await;
    let (alice, alice_token) = d.user("alice", "Engineer").await;
    let (bob, bob_token) = d.user("bob", "Engineer").await;
    let alices = contact(&d, alice, "webhook", "https://hooks.example.com/alice").await;
    let bobs = contact(&d, bob, "webhook", "https://hooks.example.com/bob").await;

    let a = d
        .post(
            &rules_path(alice),
            &alice_token,
            json!({"contact_method_id": alices, "delay_minutes": 1441}),
        )
        .await;
    common::ingest::assert_invalid_field(&a, "delay_minutes");
    let a = d
        .post(
            &rules_path(alice),
            &alice_token,
            json!({"contact_method_id": bobs}),
        )
        .await;
    common::ingest::assert_invalid_field(&a, "contact_method_id");
    let a = d
        .post(
            &rules_path(alice),
            &alice_token,
            json!({"contact_method_id": alices, "delay_minutes": -1}),
        )
        .await;
    assert!(a.status == 400 || a.status == 422, "{}", a.text);
    d.post(&rules_path(alice), &alice_token, json!({"delay": 5}))
        .await
        .assert_problem(422);

    // Bob may read Alice's rules (user:read) but not change them; an admin may.
    d.post(
        &rules_path(alice),
        &bob_token,
        json!({"contact_method_id": alices}),
    )
    .await
    .assert_problem(403);
    assert_eq!(d.get(&rules_path(alice), &bob_token).await.status, 200);
    let made = d
        .post(
            &rules_path(alice),
            &d.admin,
            json!({"contact_method_id": alices, "delay_minutes": 10}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    d.post(
        &rules_path(alice),
        &alice_token,
        json!({"contact_method_id": alices, "delay_minutes": 10}),
    )
    .await
    .assert_problem(409);
    d.delete(&format!("{}/{}", rules_path(alice), made.id()), &bob_token)
        .await
        .assert_problem(403);
    d.delete(&format!("{}/999", rules_path(alice)), &alice_token)
        .await
        .assert_problem(404);
    d.get(&rules_path(9999), &d.admin).await.assert_problem(404);

    // Each change is audited.
    let audit = d.get("/api/v1/audit?limit=500", &d.admin).await;
    assert!(audit.text.contains("paging_rule.create"), "{}", audit.text);
    let nothing = d.get(&rules_path(bob), &bob_token).await;
    assert_eq!(nothing.body, json!({"items": [], "next_cursor": null}));

    // Who may look comes before what the query asks: someone without user:read gets 403
    // for another person's lists, whatever the query.
    let role = d
        .post(
            "/api/v1/roles",
            &d.admin,
            json!({"name": "Outsider", "permissions": ["incident:read"]}),
        )
        .await;
    assert_eq!(role.status, 201, "{}", role.text);
    let (_, olga) = d.user("olga", "Outsider").await;
    for list in ["notification-rules", "contact-methods"] {
        d.get(&format!("/api/v1/users/{alice}/{list}?limit=0"), &olga)
            .await
            .assert_problem(403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_method_or_person_is_gone_by_then_is_cancelled() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let (alice, alice_token) = d.user("alice", "Engineer").await;
    let now_method = contact(&d, alice, "webhook", &hook.url("/alice/now")).await;
    let late_method = contact(&d, alice, "webhook", &hook.url("/alice/late")).await;
    for (method, delay) in [(now_method, 0), (late_method, 5)] {
        let a = d
            .post(
                &rules_path(alice),
                &alice_token,
                json!({"contact_method_id": method, "delay_minutes": delay}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    let policy = d
        .post(
            "/api/v1/escalation-policies",
            &d.admin,
            json!({"name": "payments", "steps": [{"delay_minutes": 30, "targets": [{"type": "user", "id": alice}]}]}),
        )
        .await;
    assert_eq!(policy.status, 201, "{}", policy.text);
    let service = d
        .post(
            "/api/v1/services",
            &d.admin,
            json!({"name": "payments", "escalation_policy_id": policy.id()}),
        )
        .await;
    assert_eq!(service.status, 201, "{}", service.text);

    // Alice turns her late method off while its step waits: the step is cancelled.
    let id = open_on(&d, service.id(), "Card payments failing").await;
    hit(&hook, "/alice/now", 1).await;
    let off = d
        .patch(
            &format!("/api/v1/users/{alice}/contact-methods/{late_method}"),
            &alice_token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    clock.advance(chrono::Duration::minutes(6));
    let cancelled = eventually("the late step is cancelled", WAIT, async || {
        let log = deliveries(&d, &format!("incident_id={id}&status=cancelled")).await;
        (!log.is_empty()).then_some(log)
    })
    .await;
    assert!(
        cancelled[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("removed or turned off"),
        "{cancelled:#?}"
    );
    still(&hook, "/alice/late", 0).await;

    // A rule naming a person who was deactivated tells them nothing.
    let (bob, _) = d.user("bob", "Engineer").await;
    contact(&d, bob, "webhook", &hook.url("/bob")).await;
    rule(
        &d,
        "bob hears everything",
        &["incident.opened"],
        json!([{"kind": "user", "id": bob}]),
    )
    .await;
    open_on(&d, service.id(), "Refunds failing").await;
    hit(&hook, "/bob", 1).await;
    d.deactivate(bob).await;
    open_on(&d, service.id(), "Payouts failing").await;
    hit(&hook, "/alice/now", 3).await;
    still(&hook, "/bob", 1).await;
}

#[tokio::test]
async fn a_reassignment_reaches_the_new_assignee_through_their_paging_rules() {
    let hook = webhook_fake().await;
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let mut people = Vec::new();
    for name in ["ann", "ben"] {
        let (user, token) = d.user(name, "Engineer").await;
        for (step, delay) in [("now", 0), ("late", 5)] {
            let method = contact(&d, user, "webhook", &hook.url(&format!("/{name}/{step}"))).await;
            let a = d
                .post(
                    &rules_path(user),
                    &token,
                    json!({"contact_method_id": method, "delay_minutes": delay}),
                )
                .await;
            assert_eq!(a.status, 201, "{}", a.text);
        }
        people.push((user, token));
    }
    let [(ann, _), (ben, ben_token)] = <[_; 2]>::try_from(people).expect("two people");
    let id = open_incident(&d, &d.admin, "Checkout slow").await;
    let assign = async |to: u64| {
        let a = d
            .post(
                &format!("/api/v1/incidents/{id}/assign"),
                &d.admin,
                json!({"assignee_id": to}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    };
    let pending_to = async |user: &str| {
        deliveries(&d, &format!("incident_id={id}&status=pending"))
            .await
            .into_iter()
            .filter(|l| l["target"] == hook.url(&format!("/{user}/late")))
            .count()
    };

    // Nobody has acknowledged it: ann's first step at once, her second waits its delay.
    assign(ann).await;
    hit(&hook, "/ann/now", 1).await;
    assert_eq!(
        hook.to("/ann/now")[0].json()["event"]["kind"],
        "incident.assigned"
    );
    assert_eq!(pending_to("ann").await, 1);

    // Reassigned to ben before it: ann's waiting step is cancelled, ben's rules start.
    assign(ben).await;
    hit(&hook, "/ben/now", 1).await;
    assert_eq!(pending_to("ann").await, 0);
    assert_eq!(pending_to("ben").await, 1);
    let cancelled = deliveries(&d, &format!("incident_id={id}&status=cancelled")).await;
    assert_eq!(cancelled.len(), 1, "{cancelled:#?}");
    assert_eq!(cancelled[0]["target"], hook.url("/ann/late"));
    assert_eq!(cancelled[0]["last_error"], "assigned to somebody else");

    // Ben acknowledges: his waiting step is cancelled too.
    let ack = d
        .post(
            &format!("/api/v1/incidents/{id}/transition"),
            &ben_token,
            json!({"to": "acknowledged"}),
        )
        .await;
    assert_eq!(ack.status, 200, "{}", ack.text);
    assert_eq!(pending_to("ben").await, 0);

    // Handed back to ann once somebody has it in hand: her first step only, at once.
    assign(ann).await;
    hit(&hook, "/ann/now", 2).await;
    assert_eq!(pending_to("ann").await, 0);
    clock.advance(chrono::Duration::minutes(6));
    still(&hook, "/ann/late", 0).await;
    assert_eq!(hits(&hook, "/ben/late"), 0);
}
