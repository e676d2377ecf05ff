//! Silences mute matching alerts (regex and negative matchers, anchored like Alertmanager)
//! until they expire, with validation and permissions; routing rules send alerts to services
//! and override impact and urgency in order, with `continue` and integration filters.
mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::TestDaemon;
use common::ingest::{Integration, am_alert, am_webhook, assert_invalid_field};
use incidentd::domain::clock::{Clock, ManualClock};
use serde_json::{Value, json};

/// Fires one alert through an Alertmanager integration, in its own group.
async fn fire(d: &TestDaemon, int: &Integration, labels: Value) -> Value {
    let key = format!("{{}}:{labels}");
    let a = d
        .hook(
            "alertmanager",
            &int.token,
            &am_webhook(&key, vec![am_alert("firing", labels)]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn in_an_hour() -> String {
    (Utc::now() + Duration::hours(1)).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mute_matching_alerts_until_expired() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let (_, engineer) = d.user("eng", "Engineer").await;
    let (_, viewer) = d.user("viewer", "Viewer").await;
    let body = json!({
        "matchers": [
            {"name": "alertname", "value": "DiskFull|InodeFull", "is_regex": true, "is_equal": true},
            {"name": "env", "value": "prod", "is_regex": false, "is_equal": false}
        ],
        "ends_at": in_an_hour(),
        "comment": "disk migration outside prod"
    });

    // A Viewer may read but not create.
    d.post("/api/v1/silences", &viewer, body.clone())
        .await
        .assert_problem(403);
    assert_eq!(d.all("/api/v1/silences").await.len(), 0);

    let s = d.post("/api/v1/silences", &engineer, body).await;
    assert_eq!(s.status, 201, "{}", s.text);
    let sid = s.id();
    assert_eq!(s.body["state"], "active");
    assert_eq!(s.body["matchers"][0]["is_regex"], true);
    assert_eq!(s.body["matchers"][1]["is_equal"], false);
    assert_eq!(s.body["created_by"]["name"], "eng");
    let r = d.get(&format!("/api/v1/silences/{sid}"), &viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Matching: stored as silenced, opens nothing.
    let muted = json!({"alertname": "DiskFull", "env": "staging", "instance": "db-1"});
    let sum = fire(&d, &int, muted.clone()).await;
    assert_eq!(sum["silenced"], 1, "{sum}");
    assert_eq!(sum["opened"], json!([]), "{sum}");
    let silenced = d.all("/api/v1/alerts?status=silenced").await;
    assert_eq!(silenced.len(), 1);
    let alert_id = silenced[0]["id"].as_u64().expect("id");
    assert_eq!(silenced[0]["silenced_by"], sid);
    assert_eq!(silenced[0]["incident_id"], Value::Null);
    assert_eq!(silenced[0]["state"], "firing");
    assert_eq!(silenced[0]["labels"], muted);
    assert_eq!(d.all("/api/v1/incidents").await.len(), 0);
    assert_eq!(d.all("/api/v1/alerts?status=firing").await.len(), 0);
    assert_eq!(
        d.all("/api/v1/alerts?state=silenced").await.len(),
        1,
        "state= filters as status= does"
    );

    // Not matching: the negative matcher (env=prod), the anchored regex (DiskFullSoon is
    // not DiskFull), another name.
    for labels in [
        json!({"alertname": "DiskFull", "env": "prod", "instance": "db-1"}),
        json!({"alertname": "DiskFullSoon", "env": "staging", "instance": "db-1"}),
        json!({"alertname": "CpuHigh", "env": "staging", "instance": "db-1"}),
    ] {
        let sum = fire(&d, &int, labels.clone()).await;
        assert_eq!(sum["silenced"], 0, "{labels} must not be silenced: {sum}");
        assert_eq!(sum["opened"].as_array().map(Vec::len), Some(1), "{sum}");
    }
    assert_eq!(d.all("/api/v1/incidents").await.len(), 3);

    // Delivered again while silenced: still silenced, counted, nothing opens.
    let sum = fire(&d, &int, muted.clone()).await;
    assert_eq!(sum["silenced"], 1, "{sum}");
    let again = d.all("/api/v1/alerts?status=silenced").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["receive_count"], 2);
    assert_eq!(d.all("/api/v1/incidents").await.len(), 3);

    // Expire (DELETE): the alert still fires, so its incident opens at once, without
    // waiting for the sender to repeat it.
    let e = d
        .delete(&format!("/api/v1/silences/{sid}"), &engineer)
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["state"], "expired");
    d.delete(&format!("/api/v1/silences/{sid}"), &engineer)
        .await
        .assert_problem(409);
    assert_eq!(d.all("/api/v1/alerts?status=silenced").await.len(), 0);
    let a = d
        .get(&format!("/api/v1/alerts/{alert_id}"), &d.admin)
        .await
        .body;
    assert_eq!(a["silenced_by"], Value::Null, "{a}");
    assert_eq!(a["receive_count"], 2, "a release is not a delivery: {a}");
    let opened = a["incident_id"]
        .as_u64()
        .expect("the same alert record joins it");
    assert_eq!(d.all("/api/v1/incidents").await.len(), 4);
    let timeline = d.all(&format!("/api/v1/incidents/{opened}/timeline")).await;
    let note = timeline
        .iter()
        .find(|e| e["kind"] == "silence")
        .unwrap_or_else(|| panic!("no silence entry: {timeline:?}"));
    assert_eq!(
        note["summary"],
        format!("silence {sid} no longer mutes 1 alert(s) that still fire")
    );
    assert_eq!(note["actor"]["name"], "eng", "{note}");

    // The next delivery is a duplicate of the alert on that incident.
    let sum = fire(&d, &int, muted.clone()).await;
    assert_eq!(sum["silenced"], 0, "{sum}");
    assert_eq!(sum["deduplicated"], 1, "{sum}");
    assert_eq!(sum["opened"], json!([]), "{sum}");
    let a = d
        .get(&format!("/api/v1/alerts/{alert_id}"), &d.admin)
        .await
        .body;
    assert_eq!(a["receive_count"], 3);
    assert_eq!(d.all("/api/v1/incidents").await.len(), 4);
    assert_eq!(d.all("/api/v1/alerts").await.len(), 4);
}

/// The alerts whose `alertname` label is `name`.
async fn alert_named(d: &TestDaemon, name: &str) -> Value {
    d.all("/api/v1/alerts")
        .await
        .into_iter()
        .find(|a| a["labels"]["alertname"] == name)
        .unwrap_or_else(|| panic!("no alert {name}"))
}

/// Waits (up to 10 s) until alert `name` is on an incident; returns the alert.
async fn released(d: &TestDaemon, name: &str) -> Value {
    for _ in 0..100 {
        let a = alert_named(d, name).await;
        if a["incident_id"].is_u64() {
            return a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "alert {name} was not released: {}",
        alert_named(d, name).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_alert_joins_its_groups_incident() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let lab = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "env", "value": "lab"}], "ends_at": in_an_hour(), "comment": "lab rebuild"}),
        )
        .await;
    assert_eq!(lab.status, 201, "{}", lab.text);
    // One Alertmanager group, two alerts: one opens the incident, one is muted.
    let group = "{}:{alertname=\"Down\"}";
    let a = d
        .hook(
            "alertmanager",
            &int.token,
            &am_webhook(
                group,
                vec![
                    am_alert("firing", json!({"alertname": "Down", "env": "prod"})),
                    am_alert("firing", json!({"alertname": "Down", "env": "lab"})),
                ],
            ),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["silenced"], 1, "{}", a.text);
    let incident = a.body["opened"][0].as_u64().expect("opened");

    // Released, the muted alert joins its group's open incident instead of opening one.
    let e = d
        .post(
            &format!("/api/v1/silences/{}/expire", lab.id()),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(d.all("/api/v1/incidents").await.len(), 1);
    let i = d
        .get(&format!("/api/v1/incidents/{incident}"), &d.admin)
        .await
        .body;
    assert_eq!(
        (i["alert_count"].as_u64(), i["firing_alerts"].as_u64()),
        (Some(2), Some(2)),
        "{i}"
    );
    let alerts = d.all(&format!("/api/v1/incidents/{incident}/alerts")).await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");

    // A silence moved to start later no longer mutes now: released at once.
    let db = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "team", "value": "db"}], "ends_at": in_an_hour(), "comment": "db upgrade"}),
        )
        .await;
    assert_eq!(db.status, 201, "{}", db.text);
    let sum = fire(&d, &int, json!({"alertname": "Replication", "team": "db"})).await;
    assert_eq!(sum["silenced"], 1, "{sum}");
    let later = d
        .patch(
            &format!("/api/v1/silences/{}", db.id()),
            &d.admin,
            json!({"starts_at": (Utc::now() + Duration::minutes(30)).to_rfc3339()}),
        )
        .await;
    assert_eq!(later.status, 200, "{}", later.text);
    assert_eq!(later.body["state"], "pending");
    assert_eq!(d.all("/api/v1/alerts?status=silenced").await.len(), 0);
    assert_eq!(d.all("/api/v1/incidents").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_silence_releases_what_still_fires_even_across_a_restart() {
    let clock = ManualClock::new(Utc::now());
    let root = tempfile::tempdir().expect("tempdir");
    let mut d = TestDaemon::start_in(root.path(), |_| {}, Arc::new(clock.clone())).await;
    let int = d.integration("alertmanager", json!({})).await;
    let silence = |matchers: Value, hours: i64| json!({"matchers": matchers, "ends_at": (clock.now() + Duration::hours(hours)).to_rfc3339(), "comment": "maintenance"});
    let staging = d
        .post(
            "/api/v1/silences",
            &d.admin,
            silence(json!([{"name": "env", "value": "staging"}]), 1),
        )
        .await;
    assert_eq!(staging.status, 201, "{}", staging.text);
    let db = d
        .post(
            "/api/v1/silences",
            &d.admin,
            silence(json!([{"name": "team", "value": "db"}]), 3),
        )
        .await;
    assert_eq!(db.status, 201, "{}", db.text);
    let (staging, db) = (staging.id(), db.id());

    for name in ["DiskFull", "Cpu", "Mem"] {
        fire(&d, &int, json!({"alertname": name, "env": "staging"})).await;
    }
    // Both silences match this one; the one that ends first muted it.
    fire(
        &d,
        &int,
        json!({"alertname": "Backup", "env": "staging", "team": "db"}),
    )
    .await;
    // Resolved while muted: nothing to release.
    let cpu = json!({"alertname": "Cpu", "env": "staging"});
    let r = d
        .hook(
            "alertmanager",
            &int.token,
            &am_webhook(
                &format!("{{}}:{cpu}"),
                vec![am_alert("resolved", cpu.clone())],
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(d.all("/api/v1/alerts?status=silenced").await.len(), 3);
    assert_eq!(alert_named(&d, "Backup").await["silenced_by"], staging);

    // A change of matchers that no longer covers Mem releases it at once.
    let p = d
        .patch(
            &format!("/api/v1/silences/{staging}"),
            &d.admin,
            json!({"matchers": [{"name": "env", "value": "staging"}, {"name": "alertname", "value": "Mem", "is_equal": false}]}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let mem = alert_named(&d, "Mem").await;
    assert!(mem["incident_id"].is_u64(), "{mem}");
    assert_eq!(mem["silenced_by"], Value::Null, "{mem}");
    assert_eq!(d.all("/api/v1/incidents").await.len(), 1);

    // The staging silence runs out: DiskFull still fires and pages within seconds;
    // Backup is still muted, by the other silence; Cpu resolved and opens nothing.
    clock.advance(Duration::minutes(61));
    let disk = released(&d, "DiskFull").await;
    assert_eq!(disk["receive_count"], 1, "{disk}");
    let incident = &d
        .get(
            &format!("/api/v1/incidents/{}", disk["incident_id"]),
            &d.admin,
        )
        .await
        .body;
    assert_eq!(incident["status"], "new", "{incident}");
    assert_eq!(incident["firing_alerts"], 1, "{incident}");
    let backup = alert_named(&d, "Backup").await;
    assert_eq!(backup["silenced_by"], db, "{backup}");
    assert_eq!(backup["incident_id"], Value::Null, "{backup}");
    let cpu = alert_named(&d, "Cpu").await;
    assert_eq!(cpu["state"], "resolved", "{cpu}");
    assert_eq!(cpu["incident_id"], Value::Null, "{cpu}");
    assert_eq!(d.all("/api/v1/incidents").await.len(), 2);

    // The db silence ends while the daemon is down: released after the start.
    d.stop().await;
    drop(d);
    clock.advance(Duration::hours(3));
    let d = TestDaemon::start_in(root.path(), |_| {}, Arc::new(clock.clone())).await;
    let backup = released(&d, "Backup").await;
    assert_eq!(backup["silenced_by"], Value::Null, "{backup}");
    assert_eq!(d.all("/api/v1/incidents").await.len(), 3);
    assert_eq!(d.all("/api/v1/alerts?status=silenced").await.len(), 0);
    let timeline = d
        .all(&format!(
            "/api/v1/incidents/{}/timeline",
            backup["incident_id"]
        ))
        .await;
    assert!(
        timeline.iter().any(|e| e["kind"] == "silence"
            && e["summary"] == format!("silence {db} no longer mutes 1 alert(s) that still fire")
            && e["actor"]["kind"] == "system"),
        "{timeline:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_expire_lifts_a_silence() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let s = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "team", "value": "web"}], "ends_at": in_an_hour(), "comment": "deploy"}),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.text);
    assert_eq!(s.body["matchers"][0]["is_equal"], true, "default is equal");
    let labels = json!({"alertname": "Latency", "team": "web"});
    assert_eq!(fire(&d, &int, labels.clone()).await["silenced"], 1);
    let listed = d.all("/api/v1/silences?state=active").await;
    assert_eq!(listed.len(), 1);

    let e = d
        .post(
            &format!("/api/v1/silences/{}/expire", s.id()),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["state"], "expired");
    assert_eq!(d.all("/api/v1/silences?state=active").await.len(), 0);
    assert_eq!(d.all("/api/v1/silences?state=expired").await.len(), 1);
    // The alert still fired: its incident opened with the expiry.
    assert_eq!(d.all("/api/v1/incidents").await.len(), 1);
    let sum = fire(&d, &int, labels).await;
    assert_eq!(sum["deduplicated"], 1, "{sum}");
    d.post("/api/v1/silences/999/expire", &d.admin, json!({}))
        .await
        .assert_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_validation() {
    let d = TestDaemon::start().await;
    let ok_matcher = json!({"name": "alertname", "value": "X"});
    let past = (Utc::now() - Duration::minutes(5)).to_rfc3339();

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [ok_matcher, {"name": "job", "value": "(unclosed", "is_regex": true}],
                   "ends_at": in_an_hour(), "comment": "c"}),
        )
        .await;
    let msgs = assert_invalid_field(&a, "matchers[1]");
    assert!(
        msgs.iter().any(|m| m.contains("regular expression")),
        "{msgs:?}"
    );

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "env", "value": ".*", "is_regex": true},
                                {"name": "team", "value": "x", "is_equal": false}],
                   "ends_at": in_an_hour(), "comment": "c"}),
        )
        .await;
    let msgs = assert_invalid_field(&a, "matchers");
    assert!(msgs.iter().any(|m| m.contains("empty")), "{msgs:?}");

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [ok_matcher], "ends_at": past, "comment": "c"}),
        )
        .await;
    let msgs = assert_invalid_field(&a, "ends_at");
    assert!(msgs.iter().any(|m| m.contains("future")), "{msgs:?}");

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [], "ends_at": in_an_hour(), "comment": "c"}),
        )
        .await;
    assert_invalid_field(&a, "matchers");

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "", "value": "x"}], "ends_at": in_an_hour(), "comment": "c"}),
        )
        .await;
    assert_invalid_field(&a, "matchers[0]");

    // Four-digit years only: RFC 3339 cannot write the year 10000.
    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [ok_matcher], "ends_at": "+10000-12-31T23:59:59Z", "comment": "c"}),
        )
        .await;
    assert_invalid_field(&a, "ends_at");

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [ok_matcher], "ends_at": in_an_hour(), "comment": " "}),
        )
        .await;
    assert_invalid_field(&a, "comment");

    assert_eq!(d.all("/api/v1/silences").await.len(), 0, "nothing created");
    d.get("/api/v1/silences/1", &d.admin)
        .await
        .assert_problem(404);
}

/// Label names as Prometheus 3 and Alertmanager 0.27 allow them (UTF-8, OpenTelemetry's
/// dotted names) are stored by ingestion, so silences, routing rules and `group_by` take
/// them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_label_names_can_be_silenced_routed_and_grouped_on() {
    let d = TestDaemon::start().await;
    let int = d
        .integration(
            "alertmanager",
            json!({"settings": {"group_by": ["service.name"]}}),
        )
        .await;
    let checkout = service(&d, "checkout").await;
    rule(
        &d,
        json!({"name": "otel", "matchers": [{"name": "service.name", "value": "checkout"}],
               "service_id": checkout}),
    )
    .await;
    let s = fire(
        &d,
        &int,
        json!({"alertname": "Otel", "service.name": "checkout"}),
    )
    .await;
    let inc = s["opened"][0].as_u64().expect("opened");
    assert_eq!(d.incident(inc).await["service_id"], checkout);
    // Grouped by service.name: a second alert of that service joins the incident.
    let s = fire(
        &d,
        &int,
        json!({"alertname": "Otel2", "service.name": "checkout"}),
    )
    .await;
    assert_eq!(s["opened"], json!([]), "{s}");
    assert_eq!(d.incident(inc).await["alert_count"], 2);

    let a = d
        .post(
            "/api/v1/silences",
            &d.admin,
            json!({"matchers": [{"name": "service.name", "value": "pay.*", "is_regex": true}],
                   "ends_at": in_an_hour(), "comment": "payments maintenance"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let s = fire(
        &d,
        &int,
        json!({"alertname": "Otel", "service.name": "payments"}),
    )
    .await;
    assert_eq!(s["silenced"], 1, "{s}");
    assert_eq!(s["opened"], json!([]), "{s}");
}

/// An integration a routing rule names cannot be deleted: with its id gone from the rule's
/// list, the rule would apply to every integration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_a_rule_names_cannot_be_deleted() {
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let id = rule(
        &d,
        json!({"name": "only-am", "matchers": [], "impact": "high", "integration_ids": [int.id]}),
    )
    .await;
    let path = format!("/api/v1/integrations/{}", int.id);
    let a = d.delete(&path, &d.admin).await;
    a.assert_problem(409);
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("only-am"),
        "{}",
        a.text
    );
    assert_eq!(d.get(&path, &d.admin).await.status, 200);
    let a = d
        .patch(
            &format!("/api/v1/routing-rules/{id}"),
            &d.admin,
            json!({"integration_ids": [], "matchers": [{"name": "team", "value": "x"}]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(d.delete(&path, &d.admin).await.status, 204);
}

async fn service(d: &TestDaemon, name: &str) -> u64 {
    let a = d
        .post("/api/v1/services", &d.admin, json!({"name": name}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

async fn rule(d: &TestDaemon, body: Value) -> u64 {
    let a = d.post("/api/v1/routing-rules", &d.admin, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

/// Sends one generic alert and returns its incident.
async fn route(
    d: &TestDaemon,
    int: &Integration,
    key: &str,
    severity: &str,
    labels: Value,
) -> Value {
    let a = d
        .hook(
            "generic",
            &int.token,
            &json!({"title": key, "dedup_key": key, "severity": severity, "labels": labels}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id = a.body["opened"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} opened nothing: {}", a.text));
    d.incident(id).await
}

fn assert_routed(inc: &Value, service: u64, impact: &str, urgency: &str, priority: &str) {
    assert_eq!(
        (
            inc["service_id"].as_u64(),
            inc["impact"].as_str(),
            inc["urgency"].as_str(),
            inc["priority"].as_str()
        ),
        (Some(service), Some(impact), Some(urgency), Some(priority)),
        "{}",
        inc["title"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rules_in_order_with_continue_and_integration_filter() {
    let d = TestDaemon::start().await;
    let payments = service(&d, "payments").await;
    let ops = service(&d, "prod-ops").await;
    let g1 = d.integration("generic", json!({})).await;
    let g2 = d.integration("generic", json!({})).await;

    let r1 = rule(
        &d,
        json!({"name": "payments team", "position": 10,
               "matchers": [{"name": "team", "value": "payments"}],
               "service_id": payments, "impact": "high", "continue": true}),
    )
    .await;
    let _r2 = rule(
        &d,
        json!({"name": "production", "position": 20,
               "matchers": [{"name": "env", "value": "prod|production", "is_regex": true}],
               "service_id": ops, "urgency": "HIGH"}),
    )
    .await;
    let r0 = rule(
        &d,
        json!({"name": "g2 is a test source", "position": 5, "integration_ids": [g2.id],
               "service_id": ops, "impact": "low", "urgency": "low"}),
    )
    .await;
    let listed = d.all("/api/v1/routing-rules").await;
    let order: Vec<u64> = listed
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(order, vec![r0, r1, _r2], "evaluation order by position");
    assert_eq!(listed[1]["continue"], true);
    assert_eq!(listed[1]["urgency"], Value::Null);

    // info alone would be low/low P5 on the Default service.
    let both = route(
        &d,
        &g1,
        "a",
        "info",
        json!({"team": "payments", "env": "prod"}),
    )
    .await;
    assert_routed(&both, payments, "high", "high", "P1");
    let only_r1 = route(
        &d,
        &g1,
        "b",
        "info",
        json!({"team": "payments", "env": "dev"}),
    )
    .await;
    assert_routed(&only_r1, payments, "high", "low", "P3");
    let only_r2 = route(
        &d,
        &g1,
        "c",
        "info",
        json!({"team": "search", "env": "production"}),
    )
    .await;
    assert_routed(&only_r2, ops, "low", "high", "P3");
    let none = route(
        &d,
        &g1,
        "d",
        "warning",
        json!({"team": "search", "env": "dev"}),
    )
    .await;
    assert_routed(&none, 1, "medium", "medium", "P3");
    // The integration filter: r0 applies to g2 only, and stops there.
    let from_g2 = route(
        &d,
        &g2,
        "e",
        "critical",
        json!({"team": "payments", "env": "prod"}),
    )
    .await;
    assert_routed(&from_g2, ops, "low", "low", "P5");

    // Without `continue`, r1 alone decides.
    let p = d
        .patch(
            &format!("/api/v1/routing-rules/{r1}"),
            &d.admin,
            json!({"continue": false}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["continue"], false);
    let stop = route(
        &d,
        &g1,
        "f",
        "info",
        json!({"team": "payments", "env": "prod"}),
    )
    .await;
    assert_routed(&stop, payments, "high", "low", "P3");

    // Moved after r2, r2 matches first and stops.
    let p = d
        .patch(
            &format!("/api/v1/routing-rules/{r1}"),
            &d.admin,
            json!({"position": 30}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let moved = route(
        &d,
        &g1,
        "g",
        "info",
        json!({"team": "payments", "env": "prod"}),
    )
    .await;
    assert_routed(&moved, ops, "low", "high", "P3");

    // Deleted, r0 no longer applies to g2.
    let del = d
        .delete(&format!("/api/v1/routing-rules/{r0}"), &d.admin)
        .await;
    assert_eq!(del.status, 204, "{}", del.text);
    d.get(&format!("/api/v1/routing-rules/{r0}"), &d.admin)
        .await
        .assert_problem(404);
    let after = route(&d, &g2, "h", "critical", json!({"team": "x", "env": "dev"})).await;
    assert_routed(&after, 1, "high", "high", "P1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_rule_crud_errors() {
    let d = TestDaemon::start().await;
    let (_, engineer) = d.user("eng", "Engineer").await;
    let (_, viewer) = d.user("viewer", "Viewer").await;
    let valid =
        json!({"name": "r", "matchers": [{"name": "team", "value": "x"}], "impact": "high"});

    for who in [&engineer, &viewer] {
        d.post("/api/v1/routing-rules", who, valid.clone())
            .await
            .assert_problem(403);
        let r = d.get("/api/v1/routing-rules", who).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for (method, path) in [
        ("GET", "/api/v1/routing-rules/999"),
        ("PATCH", "/api/v1/routing-rules/999"),
        ("DELETE", "/api/v1/routing-rules/999"),
    ] {
        let a = match method {
            "GET" => d.get(path, &d.admin).await,
            "PATCH" => d.patch(path, &d.admin, json!({"name": "x"})).await,
            _ => d.delete(path, &d.admin).await,
        };
        a.assert_problem(404);
    }

    let cases = [
        (json!({"name": "r", "matchers": []}), "service_id"),
        (
            json!({"name": "r", "impact": "high", "matchers": [{"name": "a", "value": "(", "is_regex": true}]}),
            "matchers[0]",
        ),
        (json!({"name": "r", "service_id": 999}), "service_id"),
        (
            json!({"name": "r", "impact": "high", "integration_ids": [999]}),
            "integration_ids",
        ),
        (json!({"name": " ", "impact": "high"}), "name"),
        (json!({"name": "r", "impact": "extreme"}), "impact"),
    ];
    for (body, field) in cases {
        let a = d
            .post("/api/v1/routing-rules", &d.admin, body.clone())
            .await;
        assert_invalid_field(&a, field);
    }
    assert_eq!(
        d.all("/api/v1/routing-rules").await.len(),
        0,
        "nothing created"
    );

    let id = rule(&d, valid).await;
    let a = d
        .patch(
            &format!("/api/v1/routing-rules/{id}"),
            &d.admin,
            json!({"impact": null}),
        )
        .await;
    assert_invalid_field(&a, "service_id");
    let r = d
        .get(&format!("/api/v1/routing-rules/{id}"), &d.admin)
        .await;
    assert_eq!(
        r.body["impact"], "high",
        "a refused change leaves the rule as it was"
    );
}
