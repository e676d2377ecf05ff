//! PagerDuty Events API v2 (`POST /v2/enqueue`): trigger, duplicate trigger, acknowledge and
//! resolve drive one incident; a trigger without a dedup key gets one; invalid events are
//! 400 in PagerDuty's shape and store nothing; an unknown routing key is 404.
mod common;

use common::TestDaemon;
use common::ingest::{Integration, fixture};
use serde_json::{Value, json};

async fn pd_integration(d: &TestDaemon) -> Integration {
    d.integration("pagerduty", json!({})).await
}

fn trigger(key: &str, dedup: Option<&str>) -> Value {
    let mut e = json!({
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "disk full on db-1", "source": "db-1", "severity": "error"}
    });
    if let Some(k) = dedup {
        e["dedup_key"] = json!(k);
    }
    e
}

/// Asserts PagerDuty's 400 shape: `{status: "invalid event", message, errors: [...]}` with
/// an error containing `needle`.
fn assert_invalid_event(a: &common::Answer, needle: &str) {
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.body["status"], "invalid event", "{}", a.text);
    assert!(a.body["message"].is_string(), "{}", a.text);
    let errors = a.body["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains(needle))),
        "no error mentioning {needle:?} in {}",
        a.text
    );
    assert!(a.body.get("dedup_key").is_none(), "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_dedup_acknowledge_resolve() {
    let d = TestDaemon::start().await;
    let pd = pd_integration(&d).await;
    assert_eq!(pd.token.len(), 32, "generated keys look like PagerDuty's");

    let a = d.enqueue(&trigger(&pd.token, Some("db-1/disk"))).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(
        a.body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "db-1/disk"})
    );
    let incidents = d.all("/api/v1/incidents").await;
    assert_eq!(incidents.len(), 1);
    let id = incidents[0]["id"].as_u64().expect("id");
    assert_eq!(incidents[0]["status"], "new");
    // error -> high impact, medium urgency -> P2.
    assert_eq!(incidents[0]["priority"], "P2");

    // The same trigger again: same incident, same alert, counted.
    let a = d.enqueue(&trigger(&pd.token, Some("db-1/disk"))).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body["dedup_key"], "db-1/disk");
    assert_eq!(
        d.counts().await,
        (1, 1),
        "a duplicate trigger opens nothing"
    );
    let alert = &d.alerts_of(id).await[0];
    assert_eq!(alert["receive_count"], 2);
    assert_eq!(alert["state"], "firing");
    assert_eq!(d.incident(id).await["alert_count"], 1);

    // The bearer form of the routing key works too.
    let mut ev = json!({"event_action": "acknowledge", "dedup_key": "db-1/disk"});
    let res = d
        .http
        .post(d.url("/v2/enqueue"))
        .bearer_auth(&pd.token)
        .json(&ev)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 202);
    let inc = d.incident(id).await;
    assert_eq!(inc["status"], "acknowledged");
    assert!(inc["acknowledged_at"].is_string());

    // Acknowledging again changes nothing and is still accepted.
    ev["routing_key"] = json!(pd.token);
    let a = d.enqueue(&ev).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(d.incident(id).await["status"], "acknowledged");

    let a = d
        .enqueue(
            &json!({"routing_key": pd.token, "event_action": "resolve", "dedup_key": "db-1/disk"}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body["dedup_key"], "db-1/disk");
    let inc = d.incident(id).await;
    assert_eq!(inc["status"], "resolved");
    assert!(inc["resolved_at"].is_string());
    // A resolve (or acknowledge) names the alert without describing it: it changes the
    // state, not the title, labels or details the trigger gave.
    let resolved = &d.alerts_of(id).await[0];
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["title"], "disk full on db-1", "{resolved}");
    assert_eq!(resolved["labels"]["source"], "db-1", "{resolved}");
    assert_eq!(
        resolved["receive_count"], 3,
        "two triggers and the resolve: {resolved}"
    );
    assert_eq!(d.counts().await, (1, 1));

    // An acknowledge or resolve for a key never seen is accepted and stores nothing.
    for action in ["acknowledge", "resolve"] {
        let a = d
            .enqueue(&json!({"routing_key": pd.token, "event_action": action, "dedup_key": "never-seen"}))
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    assert_eq!(d.counts().await, (1, 1));
    assert_eq!(d.all("/api/v1/alerts").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_without_dedup_key_gets_a_generated_one() {
    let d = TestDaemon::start().await;
    let pd = pd_integration(&d).await;
    let a = d.enqueue(&trigger(&pd.token, None)).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let key = a.body["dedup_key"].as_str().expect("dedup_key").to_owned();
    assert!(!key.is_empty());
    let b = d.enqueue(&trigger(&pd.token, None)).await;
    let key2 = b.body["dedup_key"].as_str().expect("dedup_key").to_owned();
    assert_ne!(key, key2, "each keyless trigger is a new alert");
    assert_eq!(d.counts().await, (2, 2));
    // The generated key is the alert's fingerprint: it resolves that alert.
    let a = d
        .enqueue(&json!({"routing_key": pd.token, "event_action": "resolve", "dedup_key": key}))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let alert = d.alert_by_fingerprint(&key).await.expect("alert");
    assert_eq!(alert["state"], "resolved");
    let inc = d
        .incident(alert["incident_id"].as_u64().expect("incident"))
        .await;
    assert_eq!(inc["status"], "resolved");
    let other = d.alert_by_fingerprint(&key2).await.expect("alert");
    assert_eq!(other["state"], "firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_events_are_400_and_store_nothing() {
    let d = TestDaemon::start().await;
    let pd = pd_integration(&d).await;
    // Something stored first, so that "unchanged" is not trivially zero.
    let a = d.enqueue(&trigger(&pd.token, Some("base"))).await;
    assert_eq!(a.status, 202, "{}", a.text);
    let before = d.counts().await;
    assert_eq!(before, (1, 1));

    let key = pd.token.as_str();
    let mut bad_severity = trigger(key, Some("k1"));
    bad_severity["payload"]["severity"] = json!("fatal");
    let mut no_summary = trigger(key, Some("k2"));
    no_summary["payload"]
        .as_object_mut()
        .expect("payload")
        .remove("summary");
    let mut no_source = trigger(key, Some("k3"));
    no_source["payload"]["source"] = json!("  ");
    let cases: Vec<(Value, &str)> = vec![
        (
            bad_severity,
            "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
        ),
        (no_summary, "'payload.summary'"),
        (no_source, "'payload.source'"),
        (
            json!({"routing_key": key, "event_action": "resolve"}),
            "'dedup_key' is required",
        ),
        (
            json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": ""}),
            "'dedup_key' is required",
        ),
        (
            json!({"routing_key": key, "event_action": "explode", "dedup_key": "base"}),
            "'event_action'",
        ),
        (
            json!({"routing_key": key, "dedup_key": "base"}),
            "'event_action'",
        ),
        (
            json!({"routing_key": key, "event_action": "trigger", "dedup_key": "k4"}),
            "'payload'",
        ),
        (
            json!({"routing_key": key, "event_action": "trigger", "dedup_key": "k5",
                   "payload": {"summary": "x".repeat(1025), "source": "s", "severity": "info"}}),
            "1024",
        ),
        (json!([1, 2]), "JSON object"),
        (
            json!({"event_action": "trigger", "payload": {"summary": "s", "source": "s", "severity": "info"}}),
            "'routing_key'",
        ),
    ];
    for (event, needle) in cases {
        let a = d.enqueue(&event).await;
        assert_invalid_event(&a, needle);
    }
    // The fixture's 400 answer is exactly what a bad severity gets.
    let mut fixture_bad = fixture("pagerduty_events_v2.json");
    fixture_bad["routing_key"] = json!(key);
    fixture_bad["payload"]["severity"] = json!("disaster");
    let a = d.enqueue(&fixture_bad).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body, fixture("pagerduty_events_v2_response_400.json"));

    // Malformed and truncated JSON.
    for raw in [&b"{"[..], b"{\"routing_key\": \"", b"not json", b""] {
        let a = d.post_raw("/v2/enqueue", raw.to_vec()).await;
        assert_invalid_event(&a, "JSON");
    }
    assert_eq!(d.counts().await, before, "invalid events store nothing");
    let alert = d.alert_by_fingerprint("base").await.expect("base alert");
    assert_eq!(
        alert["receive_count"], 1,
        "nothing touched the stored alert"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routing_key_is_404() {
    let d = TestDaemon::start().await;
    let _pd = pd_integration(&d).await;
    let am = d.integration("alertmanager", json!({})).await;
    for key in [
        "00000000000000000000000000000000".to_owned(),
        am.token.clone(), // a token, but not of a PagerDuty integration
    ] {
        let a = d.enqueue(&trigger(&key, Some("k"))).await;
        assert_eq!(a.status, 404, "{}", a.text);
        assert_eq!(a.body["status"], "invalid event", "{}", a.text);
        assert!(a.body["errors"].is_array(), "{}", a.text);
    }
    assert_eq!(d.counts().await, (0, 0));
}
