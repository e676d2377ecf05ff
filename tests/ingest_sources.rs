//! Every example payload (Alertmanager v4, Grafana, PagerDuty trigger/acknowledge/resolve,
//! generic JSON) is accepted and mapped field by field onto alerts and incidents, with the
//! incident priority derived from the severity.
mod common;

use chrono::{DateTime, Utc};
use common::TestDaemon;
use common::ingest::fixture;
use serde_json::{Value, json};

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .with_timezone(&Utc)
}

fn links(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(text, href)| json!({"text": text, "href": href}))
            .collect(),
    )
}

/// Asserts the incident's levels and priority.
fn assert_levels(incident: &Value, impact: &str, urgency: &str, priority: &str) {
    assert_eq!(incident["impact"], impact, "{incident}");
    assert_eq!(incident["urgency"], urgency, "{incident}");
    assert_eq!(incident["priority"], priority, "{incident}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_fixture_maps_every_field() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let payload = fixture("alertmanager_webhook_v4.json");

    let a = d.hook("alertmanager", &int.token, &payload).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["received"], 2, "{}", a.text);
    assert_eq!(a.body["new"], 1, "{}", a.text);
    assert_eq!(a.body["resolved"], 1, "{}", a.text);
    let opened = a.body["opened"].as_array().expect("opened").clone();
    assert_eq!(opened.len(), 1, "{}", a.text);
    let inc_id = opened[0].as_u64().expect("id");

    // The incident.
    let inc = d.incident(inc_id).await;
    assert_eq!(inc["id"], inc_id);
    assert_eq!(inc["number"], format!("INC-{inc_id}"));
    assert_eq!(inc["status"], "new");
    assert_eq!(
        inc["title"],
        "HighErrorRate: checkout-api 5xx ratio above 5%"
    );
    assert_eq!(
        inc["description"],
        "5xx ratio on 10.20.3.14:8080 is 7.3% over the last 5m (threshold 5%)."
    );
    assert_levels(&inc, "high", "high", "P1");
    assert_eq!(inc["alert_count"], 1);
    assert_eq!(inc["firing_alerts"], 1);
    assert_eq!(inc["integration_id"], int.id);
    assert_eq!(inc["service_id"], 1);
    assert_eq!(inc["created_by"]["kind"], "integration", "{inc}");

    // Its one alert, field by field.
    let alerts = d.alerts_of(inc_id).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let al = &alerts[0];
    let src = &payload["alerts"][0];
    assert_eq!(al["fingerprint"], "6d1f0c2b9a7e4f31");
    assert_eq!(al["integration_id"], int.id);
    assert_eq!(al["incident_id"], inc_id);
    assert_eq!(al["state"], "firing");
    assert_eq!(al["silenced_by"], Value::Null);
    assert_eq!(al["labels"], src["labels"]);
    assert_eq!(al["annotations"], src["annotations"]);
    assert_eq!(
        al["title"],
        "HighErrorRate: checkout-api 5xx ratio above 5%"
    );
    assert_eq!(al["description"], src["annotations"]["description"]);
    assert_eq!(al["severity"], "critical");
    assert_eq!(time(&al["starts_at"]), time(&src["startsAt"]));
    assert_eq!(al["ends_at"], Value::Null, "Go's zero time means not set");
    assert_eq!(al["receive_count"], 1);
    assert_eq!(
        al["group_key"],
        format!("source:{}", payload["groupKey"].as_str().expect("groupKey"))
    );
    assert_eq!(
        al["links"],
        links(&[
            (
                "runbook",
                "https://runbooks.example.com/checkout-api/high-error-rate"
            ),
            ("source", src["generatorURL"].as_str().expect("url")),
        ])
    );
    let by_id = d
        .get(&format!("/api/v1/alerts/{}", al["id"]), &d.admin)
        .await;
    assert_eq!(by_id.status, 200);
    assert_eq!(&by_id.body, al);
    let via_incident = d
        .get(&format!("/api/v1/incidents/{inc_id}/alerts"), &d.admin)
        .await;
    assert_eq!(via_incident.body["items"], json!([al]));

    // The alert that only ever arrived resolved: stored resolved, on no incident.
    let never = d
        .alert_by_fingerprint("b3a90e55c01d7f42")
        .await
        .expect("the resolved alert is stored");
    let src = &payload["alerts"][1];
    assert_eq!(never["state"], "resolved");
    assert_eq!(never["incident_id"], Value::Null);
    assert_eq!(never["labels"], src["labels"]);
    assert_eq!(never["annotations"], src["annotations"]);
    assert_eq!(time(&never["starts_at"]), time(&src["startsAt"]));
    assert_eq!(time(&never["ends_at"]), time(&src["endsAt"]));
    assert_eq!(never["severity"], "critical");
    let resolved = d.all("/api/v1/alerts?status=resolved").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["fingerprint"], "b3a90e55c01d7f42");
    assert_eq!(d.counts().await, (2, 1), "two alerts, one incident");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_token_may_come_as_bearer_and_must_match_the_kind() {
    let d = TestDaemon::start().await;
    let am = d.integration("alertmanager", json!({})).await;
    let grafana = d.integration("grafana", json!({})).await;
    let payload = fixture("alertmanager_webhook_v4.json");

    // A token of another kind is unknown here.
    let a = d.hook("alertmanager", &grafana.token, &payload).await;
    a.assert_problem(404);
    assert_eq!(d.counts().await, (0, 0));

    let res = d
        .http
        .post(d.url("/hooks/alertmanager"))
        .bearer_auth(&am.token)
        .json(&payload)
        .send()
        .await
        .expect("post");
    // By default the answer comes once the alerts are durable (202), and a read right
    // after it sees them applied.
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        body,
        json!({"status": "accepted", "alerts": 2, "truncated": 0})
    );
    assert_eq!(d.counts().await, (2, 1));
    assert!(
        am.url
            .ends_with(&format!("/hooks/alertmanager/{}", am.token)),
        "{}",
        am.url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_fixture_maps_every_field() {
    let d = TestDaemon::start().await;
    let int = d.integration("grafana", json!({})).await;
    let payload = fixture("grafana_webhook.json");

    let a = d.hook("grafana", &int.token, &payload).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["received"], 1);
    let inc_id = a.body["opened"][0].as_u64().expect("opened");

    let inc = d.incident(inc_id).await;
    let title = "Checkout p99 latency: checkout-api p99 latency above 1.5s";
    assert_eq!(inc["title"], title);
    assert_eq!(
        inc["description"],
        "p99 latency of checkout-api is 1.84s (threshold 1.5s)."
    );
    assert_levels(&inc, "medium", "medium", "P3");
    assert_eq!(inc["status"], "new");
    assert_eq!(inc["alert_count"], 1);

    let alerts = d.alerts_of(inc_id).await;
    assert_eq!(alerts.len(), 1);
    let al = &alerts[0];
    let src = &payload["alerts"][0];
    assert_eq!(al["fingerprint"], "8b5e2f0d6a91c3e7");
    assert_eq!(al["state"], "firing");
    assert_eq!(al["labels"], src["labels"]);
    let mut annotations = src["annotations"].clone();
    annotations["grafana_rule_uid"] = json!("fe3k2m9x0lvk0b");
    annotations["grafana_values"] = src["valueString"].clone();
    assert_eq!(al["annotations"], annotations);
    assert_eq!(al["title"], title);
    assert_eq!(al["description"], src["annotations"]["description"]);
    assert_eq!(al["severity"], "warning");
    assert_eq!(time(&al["starts_at"]), time(&src["startsAt"]));
    assert_eq!(al["ends_at"], Value::Null);
    assert_eq!(
        al["links"],
        links(&[
            (
                "runbook",
                "https://runbooks.example.com/checkout-api/latency"
            ),
            ("source", src["generatorURL"].as_str().expect("url")),
            ("dashboard", src["dashboardURL"].as_str().expect("url")),
            ("panel", src["panelURL"].as_str().expect("url")),
            ("silence", src["silenceURL"].as_str().expect("url")),
        ])
    );
    assert_eq!(d.counts().await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_fixtures_trigger_acknowledge_and_resolve() {
    let d = TestDaemon::start().await;
    let trigger = fixture("pagerduty_events_v2.json");
    let int = d
        .integration(
            "pagerduty",
            json!({"token": trigger["routing_key"].clone()}),
        )
        .await;
    assert_eq!(int.token, "R0UT1NGK3Y0000000000000000000001");
    assert!(int.url.ends_with("/v2/enqueue"), "{}", int.url);

    let a = d.enqueue(&trigger).await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body, fixture("pagerduty_events_v2_response.json"));

    let incidents = d.all("/api/v1/incidents").await;
    assert_eq!(incidents.len(), 1);
    let inc_id = incidents[0]["id"].as_u64().expect("id");
    let inc = d.incident(inc_id).await;
    let summary = "checkout-api 5xx ratio above 5% (7.3%) in prod";
    assert_eq!(inc["title"], summary);
    let description = "error_ratio: 0.073\ninstance: 10.20.3.14:8080\nrunbook_url: https://runbooks.example.com/checkout-api/high-error-rate\nthreshold: 0.05";
    assert_eq!(inc["description"], description);
    assert_levels(&inc, "high", "high", "P1");
    assert_eq!(inc["status"], "new");
    assert_eq!(inc["integration_id"], int.id);

    let alerts = d.alerts_of(inc_id).await;
    assert_eq!(alerts.len(), 1);
    let al = &alerts[0];
    assert_eq!(al["fingerprint"], "checkout-api/HighErrorRate/prod");
    assert_eq!(al["state"], "firing");
    assert_eq!(
        al["labels"],
        json!({"source": "checkout-api.prod.example.internal", "severity": "critical",
               "component": "checkout-api", "group": "payments", "class": "high error rate"})
    );
    assert_eq!(
        al["annotations"],
        json!({"error_ratio": "0.073", "threshold": "0.05", "instance": "10.20.3.14:8080",
               "runbook_url": "https://runbooks.example.com/checkout-api/high-error-rate",
               "client": "Prometheus Alertmanager",
               "client_url": "http://alertmanager.example.internal:9093"})
    );
    assert_eq!(al["title"], summary);
    assert_eq!(al["description"], description);
    assert_eq!(al["severity"], "critical");
    assert_eq!(
        time(&al["starts_at"]),
        time(&json!("2025-11-24T09:12:31.482Z"))
    );
    assert_eq!(
        al["links"],
        links(&[
            (
                "runbook",
                "https://runbooks.example.com/checkout-api/high-error-rate"
            ),
            (
                "Prometheus Alertmanager",
                "http://alertmanager.example.internal:9093"
            ),
            (
                "Checkout overview dashboard",
                "https://grafana.example.com/d/checkout-overview"
            ),
            (
                "5xx ratio panel",
                "https://grafana.example.com/d/checkout-overview?viewPanel=4"
            ),
        ])
    );

    let a = d
        .enqueue(&fixture("pagerduty_events_v2_acknowledge.json"))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body, fixture("pagerduty_events_v2_response.json"));
    let inc = d.incident(inc_id).await;
    assert_eq!(inc["status"], "acknowledged");
    assert!(inc["acknowledged_at"].is_string(), "{inc}");

    let a = d
        .enqueue(&fixture("pagerduty_events_v2_resolve.json"))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body, fixture("pagerduty_events_v2_response.json"));
    let inc = d.incident(inc_id).await;
    assert_eq!(inc["status"], "resolved");
    assert_eq!(inc["firing_alerts"], 0);
    let al = &d.alerts_of(inc_id).await[0];
    assert_eq!(al["state"], "resolved");
    assert!(al["ends_at"].is_string(), "{al}");
    assert_eq!(d.counts().await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_json_with_the_default_mapping() {
    let d = TestDaemon::start().await;
    let int = d.integration("generic", json!({})).await;
    let body = json!({
        "title": "Disk almost full on db-1",
        "dedup_key": "disk/db-1",
        "severity": "info",
        "status": "firing",
        "description": "/var is 91% full",
        "labels": {"host": "db-1", "team": "storage", "disks": 2},
        "ignored": {"anything": true}
    });
    let a = d.hook("generic", &int.token, &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let inc_id = a.body["opened"][0].as_u64().expect("opened");

    let inc = d.incident(inc_id).await;
    assert_eq!(inc["title"], "Disk almost full on db-1");
    assert_eq!(inc["description"], "/var is 91% full");
    assert_levels(&inc, "low", "low", "P5");

    let alerts = d.alerts_of(inc_id).await;
    assert_eq!(alerts.len(), 1);
    let al = &alerts[0];
    assert_eq!(al["fingerprint"], "disk/db-1");
    assert_eq!(al["state"], "firing");
    assert_eq!(
        al["labels"],
        json!({"host": "db-1", "team": "storage", "disks": "2", "severity": "info"})
    );
    assert_eq!(al["annotations"], json!({}));
    assert_eq!(al["title"], "Disk almost full on db-1");
    assert_eq!(al["description"], "/var is 91% full");
    assert_eq!(al["severity"], "info");
    assert_eq!(al["starts_at"], Value::Null);
    assert_eq!(al["links"], json!([]));

    // The same key with a resolved status resolves alert and incident.
    let a = d
        .hook(
            "generic",
            &int.token,
            &json!({"title": "Disk almost full on db-1", "dedup_key": "disk/db-1", "status": "RESOLVED"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["auto_resolved"], json!([inc_id]));
    assert_eq!(d.incident(inc_id).await["status"], "resolved");
    assert_eq!(d.alerts_of(inc_id).await[0]["state"], "resolved");
    assert_eq!(d.counts().await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_json_with_a_custom_mapping_and_an_array_body() {
    let d = TestDaemon::start().await;
    let int = d
        .integration(
            "generic",
            json!({"settings": {"mapping": {
                "title": "/check/name", "dedup_key": "/id", "severity": "/level",
                "status": "/state", "description": "/output", "labels": "/tags",
                "resolved_values": ["OK"]
            }}}),
        )
        .await;
    let body = json!([
        {"id": 17, "check": {"name": "disk"}, "level": "warning", "state": "CRITICAL", "output": "97% full", "tags": {"host": "db-1"}},
        {"id": "x-2", "check": {"name": "load"}, "level": "critical", "state": "CRITICAL", "output": "load 40", "tags": {"host": "db-2"}}
    ]);
    let a = d.hook("generic", &int.token, &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["received"], 2);
    let opened = a.body["opened"].as_array().expect("opened").clone();
    assert_eq!(opened.len(), 2, "no group key: one incident per alert");

    let disk = d.alert_by_fingerprint("17").await.expect("alert 17");
    assert_eq!(disk["title"], "disk");
    assert_eq!(disk["description"], "97% full");
    assert_eq!(disk["severity"], "warning");
    assert_eq!(
        disk["labels"],
        json!({"host": "db-1", "severity": "warning"})
    );
    let inc = d
        .incident(disk["incident_id"].as_u64().expect("incident"))
        .await;
    assert_levels(&inc, "medium", "medium", "P3");
    let load = d.alert_by_fingerprint("x-2").await.expect("alert x-2");
    let inc = d
        .incident(load["incident_id"].as_u64().expect("incident"))
        .await;
    assert_eq!(inc["title"], "load");
    assert_levels(&inc, "high", "high", "P1");

    // A payload without the mapped title is refused, naming the pointer.
    let a = d
        .hook("generic", &int.token, &json!({"id": 3, "state": "OK"}))
        .await;
    common::ingest::assert_invalid_field(&a, "/check/name");
    assert_eq!(d.counts().await, (2, 2));
}
