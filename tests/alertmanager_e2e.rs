//! End to end with a real Prometheus Alertmanager: alerts posted to its `/api/v2/alerts`
//! reach our webhook, open one incident for their group, Alertmanager's re-sends create
//! nothing new, and resolving them at the source resolves the incident.
//!
//! Needs `prometheus-alertmanager` (apt) or `alertmanager` on PATH; skipped without it
//! unless `INCIDENTD_REQUIRE_PEERS=1`.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use common::TestDaemon;
use common::ingest::eventually;
use common::peers::{Alertmanager, AmOptions, alertmanager_or_skip};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn iso(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn labels(name: &str, i: usize) -> Value {
    json!({"alertname": name, "instance": format!("host-{i}:9100"), "job": "e2e", "severity": "critical"})
}

/// Alerts as Prometheus posts them (firing), or their resolution (`endsAt` = now, no
/// `startsAt`, so Alertmanager keeps the original start).
fn am_alerts(name: &str, hosts: &[usize], firing: bool) -> Value {
    let now = Utc::now();
    Value::Array(
        hosts
            .iter()
            .map(|&i| {
                let mut a = json!({
                    "labels": labels(name, i),
                    "annotations": {
                        "summary": format!("disk almost full on host-{i}"),
                        "description": format!("e2e alert #{i}"),
                        "runbook_url": "https://runbooks.example.com/disk"
                    },
                    "generatorURL": format!("http://127.0.0.1:9090/graph?host={i}")
                });
                if firing {
                    a["startsAt"] = json!(iso(now));
                } else {
                    a["endsAt"] = json!(iso(now - chrono::Duration::milliseconds(1)));
                }
                a
            })
            .collect(),
    )
}

/// receive_count by fingerprint of our stored alerts.
async fn receive_counts(d: &TestDaemon) -> BTreeMap<String, u64> {
    d.all("/api/v1/alerts")
        .await
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().expect("fp").to_owned(),
                a["receive_count"].as_u64().expect("count"),
            )
        })
        .collect()
}

/// Waits for exactly one incident with `alerts` alerts and returns it.
async fn one_incident_with(d: &TestDaemon, alerts: u64) -> Value {
    eventually("one incident with all alerts", WAIT, || async {
        let incidents = d.all("/api/v1/incidents").await;
        assert!(
            incidents.len() <= 1,
            "more than one incident: {incidents:?}"
        );
        incidents.into_iter().find(|i| i["alert_count"] == alerts)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_fires_resends_and_resolves_one_incident() {
    let Some(bin) = alertmanager_or_skip() else {
        return;
    };
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let webhook = d.url(&format!("/hooks/alertmanager/{}", int.token));
    // repeat_interval = group_interval: Alertmanager re-sends the unchanged group every
    // second or two, as it does after a failed delivery.
    let am = Alertmanager::start(
        &bin,
        &webhook,
        &AmOptions {
            repeat_interval: "1s".into(),
            ..AmOptions::default()
        },
    )
    .await;

    am.post_alerts(&am_alerts("E2EDiskFull", &[1, 2], true))
        .await;
    let inc = one_incident_with(&d, 2).await;
    let id = inc["id"].as_u64().expect("id");
    assert_eq!(inc["status"], "new");
    assert_eq!(inc["priority"], "P1", "severity critical");
    assert_eq!(inc["integration_id"], int.id);

    // Our alerts are Alertmanager's, with its fingerprints.
    let theirs: BTreeMap<String, Value> = am
        .alerts()
        .await
        .into_iter()
        .map(|a| (a["fingerprint"].as_str().expect("fp").to_owned(), a))
        .collect();
    let ours = d.alerts_of(id).await;
    assert_eq!(ours.len(), 2);
    for a in &ours {
        let fp = a["fingerprint"].as_str().expect("fp");
        let t = theirs
            .get(fp)
            .unwrap_or_else(|| panic!("fingerprint {fp} unknown to alertmanager: {theirs:?}"));
        assert_eq!(a["labels"], t["labels"]);
        assert_eq!(a["state"], "firing");
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["links"][0]["href"], "https://runbooks.example.com/disk");
        assert!(
            a["group_key"]
                .as_str()
                .expect("group key")
                .contains("E2EDiskFull"),
            "{a}"
        );
    }

    // Re-sends: receive counts grow, nothing new is created.
    let first = receive_counts(&d).await;
    let grown = eventually("alertmanager re-sends", WAIT, || async {
        let now = receive_counts(&d).await;
        assert_eq!(now.len(), 2, "re-sends created alerts: {now:?}");
        assert_eq!(
            d.all("/api/v1/incidents").await.len(),
            1,
            "re-sends opened incidents"
        );
        now.iter().all(|(fp, n)| *n >= first[fp] + 2).then_some(now)
    })
    .await;
    println!("receive counts {first:?} -> {grown:?}");
    let inc = d.incident(id).await;
    assert_eq!(inc["alert_count"], 2);
    assert_eq!(inc["firing_alerts"], 2);
    assert_eq!(inc["status"], "new");

    // Resolved at the source: the incident auto-resolves.
    am.post_alerts(&am_alerts("E2EDiskFull", &[1, 2], false))
        .await;
    let inc = eventually("the incident resolves", WAIT, || async {
        let i = d.incident(id).await;
        (i["status"] == "resolved").then_some(i)
    })
    .await;
    assert_eq!(inc["firing_alerts"], 0);
    for a in d.alerts_of(id).await {
        assert_eq!(a["state"], "resolved", "{a}");
        assert!(a["ends_at"].is_string(), "{a}");
    }

    // And it stays that way: nothing new over a few group intervals.
    let settled = receive_counts(&d).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receive_counts(&d).await.len(), settled.len());
    assert_eq!(d.counts().await, (2, 1));
    assert_eq!(d.incident(id).await["status"], "resolved");
    drop(am);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_with_bearer_token_resolves_only_when_all_alerts_have() {
    let Some(bin) = alertmanager_or_skip() else {
        return;
    };
    let d = TestDaemon::start().await;
    let int = d.integration("alertmanager", json!({})).await;
    let am = Alertmanager::start(
        &bin,
        &d.url("/hooks/alertmanager"),
        &AmOptions {
            bearer_token: Some(int.token.clone()),
            ..AmOptions::default()
        },
    )
    .await;

    am.post_alerts(&am_alerts("E2ELatency", &[1, 2, 3], true))
        .await;
    let inc = one_incident_with(&d, 3).await;
    let id = inc["id"].as_u64().expect("id");

    // Two of three resolve: the incident stays open with one firing.
    am.post_alerts(&am_alerts("E2ELatency", &[1, 2], false))
        .await;
    eventually("two alerts resolved", WAIT, || async {
        let i = d.incident(id).await;
        (i["firing_alerts"] == 1).then_some(())
    })
    .await;
    let i = d.incident(id).await;
    assert_eq!(i["status"], "new", "one alert still fires: {i}");
    let firing = d.all("/api/v1/alerts?status=firing").await;
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0]["labels"]["instance"], "host-3:9100");

    am.post_alerts(&am_alerts("E2ELatency", &[3], false)).await;
    eventually("the incident resolves", WAIT, || async {
        (d.incident(id).await["status"] == "resolved").then_some(())
    })
    .await;
    assert_eq!(d.counts().await, (3, 1));
}
