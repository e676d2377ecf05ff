//! Retention, black-box: the real daemon with a clock the test moves 31 days ahead. The
//! notification log forgets finished deliveries older than `retention.deliveries_days`
//! but keeps one still being retried; the event log is pruned up to the event such a
//! delivery still needs; incidents, their timelines and the audit log stay.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::TestDaemon;
use common::fakes::{Reply, webhook_fake};
use common::notify::*;
use incidentd::domain::clock::ManualClock;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn deleted(metrics: &str, kind: &str) -> u64 {
    common::metric_sample(
        metrics,
        &format!("incidentd_retention_deleted_total{{kind=\"{kind}\"}}"),
    )
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_deliveries_and_events_go_and_the_record_stays() {
    let hook = webhook_fake().await;
    hook.script(
        "/down",
        usize::MAX,
        Reply::json(500, json!({"error": "down"})),
    );
    let clock = ManualClock::new(Utc::now());
    let mut d = TestDaemon::start_with(
        |c| {
            fast_retries(c);
            c.retention.interval_secs = 1;
        },
        Arc::new(clock.clone()),
    )
    .await;
    // Events from before any rule: nothing waits for them.
    let quiet = open_incident(&d, &d.admin, "Quiet outage").await;
    rule(
        &d,
        "hooks",
        &["incident.opened"],
        json!([{"kind": "webhook", "url": hook.url("/ok")}, {"kind": "webhook", "url": hook.url("/down")}]),
    )
    .await;
    let old = open_incident(&d, &d.admin, "Old outage").await;
    wait_deliveries(&d, old, "webhook", 2, |x| {
        x["status"] == "sent" || x["attempts"].as_u64().unwrap_or(0) >= 1
    })
    .await;

    clock.advance(chrono::Duration::days(31));
    d.relogin_admin().await;
    let new = open_incident(&d, &d.admin, "New outage").await;
    let log = eventually("the old finished delivery is gone", WAIT, async || {
        let log = deliveries(&d, "").await;
        let old_sent = log
            .iter()
            .any(|x| x["incident_id"] == old && x["status"] == "sent");
        let new_sent = log
            .iter()
            .any(|x| x["incident_id"] == new && x["status"] == "sent");
        (!old_sent && new_sent).then_some(log)
    })
    .await;
    // The delivery still being retried stays, however old.
    let retried: Vec<_> = log.iter().filter(|x| x["incident_id"] == old).collect();
    assert_eq!(retried.len(), 1, "{log:#?}");
    assert_eq!(retried[0]["target"], hook.url("/down"));
    assert_ne!(retried[0]["status"], "sent");

    let text = d.metrics_text().await;
    // The quiet incident's events went; the ones the retried delivery renders stay.
    assert!(deleted(&text, "events") >= 1, "{text}");
    assert_eq!(incident(&d, quiet).await["title"], "Quiet outage");
    assert!(deleted(&text, "deliveries") >= 1, "{text}");

    // The record stays: the incident, its timeline, the audit log.
    assert_eq!(incident(&d, old).await["title"], "Old outage");
    assert!(!timeline(&d, old).await.is_empty());
    let audit = d.get("/api/v1/audit?limit=500", &d.admin).await;
    assert!(audit.text.contains(&format!("INC-{old}")), "{}", audit.text);
}

/// The alert whose `alertname` is `name`, if it is still stored.
async fn alert_named(d: &TestDaemon, name: &str) -> Option<serde_json::Value> {
    d.all("/api/v1/alerts")
        .await
        .into_iter()
        .find(|a| a["labels"]["alertname"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_alerts_of_ended_incidents_go_after_alerts_days() {
    use common::ingest::{am_alert, am_webhook};
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(
        |c| {
            c.retention.alerts_days = 10;
            c.retention.interval_secs = 1;
            // The test's tokens outlive the eleven days it moves the clock by.
            c.auth.access_token_ttl_secs = 30 * 24 * 3600;
            c.auth.refresh_token_ttl_secs = 30 * 24 * 3600;
        },
        Arc::new(clock.clone()),
    )
    .await;
    let int = d.integration("alertmanager", json!({})).await;
    let long = d
        .integration(
            "alertmanager",
            json!({"settings": {"reopen_window_secs": 40 * 86_400}}),
        )
        .await;
    let send_to = async |int: &common::ingest::Integration,
                         group: &str,
                         alerts: Vec<(&str, &str)>| {
        let body = am_webhook(
            &format!("{{}}:{{group=\"{group}\"}}"),
            alerts
                .into_iter()
                .map(|(status, name)| am_alert(status, json!({"alertname": name, "group": group})))
                .collect(),
        );
        let a = d.hook("alertmanager", &int.token, &body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body
    };
    let send = async |group: &str, alerts: Vec<(&str, &str)>| send_to(&int, group, alerts).await;
    // Kept: resolved within its integration's reopen window (40 days): a re-fire must
    // find its alert to reopen the incident.
    let longs: Vec<String> = (1..=17).map(|n| format!("Long{n:02}")).collect();
    send_to(
        &long,
        "long",
        longs.iter().map(|n| ("firing", n.as_str())).collect(),
    )
    .await;
    send_to(
        &long,
        "long",
        longs.iter().map(|n| ("resolved", n.as_str())).collect(),
    )
    .await;
    // Done: fired, resolved, its incident auto-resolved.
    let done = send("done", vec![("firing", "Done")]).await["opened"][0]
        .as_u64()
        .expect("opened");
    send("done", vec![("resolved", "Done")]).await;
    assert_eq!(incident(&d, done).await["status"], "resolved");
    d.transition(done, "closed").await;
    // Kept: resolved, not closed: it may be reopened by hand, and its first alerts stand
    // for it (labels for playbooks, the runbook link); beyond those, alerts go.
    let storm: Vec<String> = (1..=18).map(|n| format!("Storm{n:02}")).collect();
    let storm_incident = send(
        "storm",
        storm.iter().map(|n| ("firing", n.as_str())).collect(),
    )
    .await["opened"][0]
        .as_u64()
        .expect("opened");
    send(
        "storm",
        storm.iter().map(|n| ("resolved", n.as_str())).collect(),
    )
    .await;
    assert_eq!(incident(&d, storm_incident).await["status"], "resolved");
    // Half: one of two alerts resolved, the incident still open.
    send("half", vec![("firing", "HalfA"), ("firing", "HalfB")]).await;
    send("half", vec![("resolved", "HalfA")]).await;
    // Never seen firing: stored resolved, no incident.
    send("stray", vec![("resolved", "Stray")]).await;

    clock.advance(chrono::Duration::days(11));
    // Resolved just now: young.
    send("young", vec![("firing", "Young")]).await;
    send("young", vec![("resolved", "Young")]).await;
    eventually("old resolved alerts are gone", WAIT, async || {
        (alert_named(&d, "Done").await.is_none()
            && alert_named(&d, "Stray").await.is_none()
            && alert_named(&d, "Storm18").await.is_none())
        .then_some(())
    })
    .await;
    assert_eq!(
        alert_named(&d, "Long17").await.expect("Long17")["state"],
        "resolved"
    );
    for n in 1..=18 {
        let name = format!("Storm{n:02}");
        assert_eq!(
            alert_named(&d, &name).await.is_some(),
            n <= 16,
            "{name}: the first 16 alerts of a resolved incident stay"
        );
    }
    // A resolved alert of an open incident stays, as do firing and young ones.
    assert_eq!(
        alert_named(&d, "HalfA").await.expect("HalfA")["state"],
        "resolved"
    );
    assert_eq!(
        alert_named(&d, "HalfB").await.expect("HalfB")["state"],
        "firing"
    );
    assert_eq!(
        alert_named(&d, "Young").await.expect("Young")["state"],
        "resolved"
    );
    let text = d.metrics_text().await;
    assert_eq!(deleted(&text, "alerts"), 4, "{text}");

    // The closed incident keeps its record and counts; the fingerprint fires anew into a
    // new incident with a new record.
    let old = incident(&d, done).await;
    assert_eq!(old["alert_count"], 1, "{old}");
    assert!(!timeline(&d, done).await.is_empty());
    let again = send("done", vec![("firing", "Done")]).await;
    let reopened = again["opened"][0].as_u64().expect("a new incident");
    assert_ne!(reopened, done);
    let a = alert_named(&d, "Done").await.expect("Done again");
    assert_eq!(a["incident_id"], reopened, "{a}");
    assert_eq!(a["receive_count"], 1, "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sessions_go_once_they_and_their_access_tokens_expired() {
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(
        |c| {
            c.retention.interval_secs = 1;
            c.auth.refresh_token_ttl_secs = 2 * 24 * 3600;
            c.auth.access_token_ttl_secs = 24 * 3600;
        },
        Arc::new(clock.clone()),
    )
    .await;
    d.user("alice", "Engineer").await;
    let alice = d.login("alice", common::USER_PASSWORD).await;
    assert_eq!(d.get("/api/v1/auth/me", &alice).await.status, 200);

    // Past the refresh token's expiry but within its last access token's: kept.
    clock.advance(chrono::Duration::hours(49));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deleted(&d.metrics_text().await, "sessions"), 0);

    // Past both: the sessions (the test's admin's too) are deleted; logging in still works.
    clock.advance(chrono::Duration::hours(24));
    eventually("expired sessions deleted", WAIT, async || {
        (deleted(&d.metrics_text().await, "sessions") >= 2).then_some(())
    })
    .await;
    let again = d.login("alice", common::USER_PASSWORD).await;
    assert_eq!(d.get("/api/v1/auth/me", &again).await.status, 200);
}
