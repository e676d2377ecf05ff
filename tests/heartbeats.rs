//! Heartbeat monitors, black-box: a monitor never pinged pages nobody; once pinged, a
//! silence past its interval opens one incident on its service (P1), the next ping
//! resolves it (or leaves a cancelled one alone); after a restart the sender gets one
//! interval, then the silence opens its incident; bad input is refused; unknown tokens
//! are 404 like a wrong URL; the token is shown once; the service cannot be deleted
//! under the monitor; deleting a silent monitor resolves its incident.
mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use common::TestDaemon;
use incidentd::domain::clock::ManualClock;
use serde_json::{Value, json};

const TITLE: &str = "Heartbeat missed: prometheus watchdog";

/// The incidents a missed heartbeat opened.
async fn missed(d: &TestDaemon) -> Vec<Value> {
    let a = d.get("/api/v1/incidents?limit=500", &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["title"] == TITLE)
        .cloned()
        .collect()
}

/// Waits (up to 5 s of real time, the checker runs every second) for `n` such incidents.
async fn wait_for_missed(d: &TestDaemon, n: usize) -> Vec<Value> {
    for _ in 0..50 {
        let found = missed(d).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("no {n} missed-heartbeat incident(s): {:?}", missed(d).await);
}

/// Lets the checker run a few times.
async fn a_few_checks() {
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
}

async fn ping(d: &TestDaemon, token: &str) -> common::Answer {
    d.call(
        reqwest::Method::POST,
        &format!("/hooks/heartbeat/{token}"),
        None,
        None,
    )
    .await
}

#[tokio::test]
async fn a_silent_heartbeat_opens_one_incident_and_the_next_ping_resolves_it() {
    let clock = ManualClock::new(Utc::now());
    let root = tempfile::tempdir().expect("tempdir");
    let mut d = TestDaemon::start_in(root.path(), |_| {}, Arc::new(clock.clone())).await;
    let service = d
        .post("/api/v1/services", &d.admin, json!({"name": "monitoring"}))
        .await;
    assert_eq!(service.status, 201, "{}", service.text);

    // Bad input changes nothing.
    for (body, field) in [
        (json!({"name": "w", "interval_secs": 10}), "interval_secs"),
        (
            json!({"name": "w", "interval_secs": 604801}),
            "interval_secs",
        ),
        (json!({"name": " ", "interval_secs": 300}), "name"),
        (
            json!({"name": "w", "interval_secs": 300, "service_id": 999}),
            "service_id",
        ),
        (
            json!({"name": "w", "interval_secs": 300, "colour": "red"}),
            "colour",
        ),
    ] {
        let a = d.post("/api/v1/heartbeats", &d.admin, body).await;
        a.assert_problem(422);
        assert!(a.body["errors"][field].is_array(), "{field}: {}", a.text);
    }
    let (_, viewer) = d.user("vera", "Viewer").await;
    d.post(
        "/api/v1/heartbeats",
        &viewer,
        json!({"name": "w", "interval_secs": 300}),
    )
    .await
    .assert_problem(403);
    let listed = d.get("/api/v1/heartbeats", &d.admin).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);

    // Created: inactive, the token shown once.
    let created = d
        .post(
            "/api/v1/heartbeats",
            &d.admin,
            json!({"name": "prometheus watchdog", "interval_secs": 300, "service_id": service.id()}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.id();
    let token = created.body["token"].as_str().expect("token").to_owned();
    assert!(
        created.body["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/hooks/heartbeat/{token}"))),
        "{}",
        created.text
    );
    assert_eq!(created.body["state"], "inactive");
    let shown = d.get(&format!("/api/v1/heartbeats/{id}"), &d.admin).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(
        shown.body.get("token").is_none() && !shown.text.contains(&token),
        "{}",
        shown.text
    );
    assert!(shown.body.get("token_hash").is_none(), "{}", shown.text);

    // Never pinged: a day of silence pages nobody.
    clock.advance(Duration::days(1));
    d.relogin_admin().await;
    a_few_checks().await;
    assert!(missed(&d).await.is_empty());

    // Pinged (POST, or GET from a cron job's curl): healthy for five minutes.
    let p = ping(&d, &token).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["state"], "healthy");
    let get_ping = d
        .call(
            reqwest::Method::GET,
            &format!("/hooks/heartbeat/{token}"),
            None,
            None,
        )
        .await;
    assert_eq!(get_ping.status, 200, "{}", get_ping.text);
    clock.advance(Duration::seconds(299));
    a_few_checks().await;
    assert!(missed(&d).await.is_empty(), "still within the interval");

    // Silent past the interval: one P1 incident on its service, once.
    clock.advance(Duration::seconds(2));
    let found = wait_for_missed(&d, 1).await;
    let incident = &found[0];
    assert_eq!(incident["service_id"], service.id());
    assert_eq!(incident["priority"], "P1");
    assert_eq!(incident["status"], "new");
    let monitor = d.get(&format!("/api/v1/heartbeats/{id}"), &d.admin).await;
    assert_eq!(monitor.body["state"], "expired");
    assert_eq!(monitor.body["incident_id"], incident["id"]);
    clock.advance(Duration::hours(1));
    a_few_checks().await;
    assert_eq!(missed(&d).await.len(), 1, "one incident per silence");

    // The next ping resolves it, with a note on the timeline.
    let p = ping(&d, &token).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.body["incident_id"].is_null(), "{}", p.text);
    let number = incident["id"].as_u64().expect("id");
    let i = d
        .get(&format!("/api/v1/incidents/{number}"), &d.admin)
        .await;
    assert_eq!(i.body["status"], "resolved", "{}", i.text);
    let timeline = d
        .get(&format!("/api/v1/incidents/{number}/timeline"), &d.admin)
        .await;
    assert!(
        timeline
            .text
            .contains("heartbeat 'prometheus watchdog' is back"),
        "{}",
        timeline.text
    );

    // Unknown tokens: 404 like a wrong URL.
    let unknown = ping(&d, "0123456789abcdef0123456789abcdef").await;
    unknown.assert_problem(404);
    let no_route = d
        .call(reqwest::Method::POST, "/hooks/no-such-thing", None, None)
        .await;
    assert_eq!(unknown.body["detail"], no_route.body["detail"]);

    // The service cannot go while the monitor pages it.
    d.delete(&format!("/api/v1/services/{}", service.id()), &d.admin)
        .await
        .assert_problem(409);

    // Down for ten minutes: after the restart the sender gets one interval to ping again
    // (the daemon's own downtime is not its silence), then the silence counts.
    d.stop().await;
    drop(d);
    clock.advance(Duration::minutes(10));
    let d = TestDaemon::start_in(root.path(), |_| {}, Arc::new(clock.clone())).await;
    a_few_checks().await;
    assert_eq!(
        missed(&d).await.len(),
        1,
        "nothing during the grace after a start"
    );
    clock.advance(Duration::seconds(301));
    let found = wait_for_missed(&d, 2).await;
    assert_eq!(found.len(), 2, "{found:?}");

    // Cancelled by hand, the incident stays cancelled and the next ping still counts.
    let second = found
        .iter()
        .find(|i| i["status"] == "new")
        .and_then(|i| i["id"].as_u64())
        .expect("the new incident");
    let cancel = d
        .post(
            &format!("/api/v1/incidents/{second}/transition"),
            &d.admin,
            json!({"to": "cancelled"}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let p = ping(&d, &token).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["state"], "healthy");
    let i = d
        .get(&format!("/api/v1/incidents/{second}"), &d.admin)
        .await;
    assert_eq!(i.body["status"], "cancelled");

    // Changes are audited.
    let audit = d
        .get(&format!("/api/v1/audit?target=heartbeat:{id}"), &d.admin)
        .await;
    assert!(audit.text.contains("heartbeat.create"), "{}", audit.text);
    let patched = d
        .patch(
            &format!("/api/v1/heartbeats/{id}"),
            &d.admin,
            json!({"interval_secs": 600}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["interval_secs"], 600);
    // A new token: the old one stops at once; the audit entry shows no hash.
    let rotated = d
        .post(
            &format!("/api/v1/heartbeats/{id}/rotate-token"),
            &d.admin,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_token = rotated.body["token"].as_str().expect("token").to_owned();
    assert_ne!(new_token, token);
    ping(&d, &token).await.assert_problem(404);
    assert_eq!(ping(&d, &new_token).await.status, 200);
    let audit = d
        .get(&format!("/api/v1/audit?target=heartbeat:{id}"), &d.admin)
        .await;
    let hash = incidentd::auth::secret::sha256_hex(&new_token);
    assert!(!audit.text.contains(&hash), "{}", audit.text);
    // Deleted while silent: nothing would ever ping its incident away, so the deletion
    // resolves it (and leaves the earlier ones as they are).
    clock.advance(Duration::seconds(601));
    let found = wait_for_missed(&d, 3).await;
    let third = found
        .iter()
        .find(|i| i["status"] == "new")
        .and_then(|i| i["id"].as_u64())
        .expect("the third incident");
    let gone = d
        .delete(&format!("/api/v1/heartbeats/{id}"), &d.admin)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    ping(&d, &new_token).await.assert_problem(404);
    let after: Vec<(u64, Value)> = missed(&d)
        .await
        .iter()
        .map(|i| (i["id"].as_u64().expect("id"), i["status"].clone()))
        .collect();
    assert_eq!(after.len(), 3, "{after:?}");
    for (incident, status) in &after {
        let expected = if *incident == second {
            "cancelled"
        } else {
            "resolved"
        };
        assert_eq!(status, expected, "incident {incident}: {after:?}");
    }
    let timeline = d
        .get(&format!("/api/v1/incidents/{third}/timeline"), &d.admin)
        .await;
    assert!(
        timeline
            .text
            .contains("heartbeat monitor 'prometheus watchdog' was deleted by admin"),
        "{}",
        timeline.text
    );
    let resolved_by = timeline.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .rev()
        .find(|e| e["kind"] == "status_changed")
        .map(|e| e["actor"]["name"].clone());
    assert_eq!(resolved_by, Some(json!("admin")), "{}", timeline.text);

    // An incident already ended by hand stays as it was; the monitor goes all the same.
    let cron = d
        .post(
            "/api/v1/heartbeats",
            &d.admin,
            json!({"name": "nightly backup", "interval_secs": 60}),
        )
        .await;
    assert_eq!(cron.status, 201, "{}", cron.text);
    let cron_token = cron.body["token"].as_str().expect("token").to_owned();
    assert_eq!(ping(&d, &cron_token).await.status, 200);
    clock.advance(Duration::seconds(61));
    let cron_incident = {
        let mut found = None;
        for _ in 0..50 {
            let a = d.get("/api/v1/incidents?limit=500", &d.admin).await;
            found = a.body["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|i| i["title"] == "Heartbeat missed: nightly backup")
                    .and_then(|i| i["id"].as_u64())
            });
            if found.is_some() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        found.expect("the nightly backup's incident")
    };
    let cancel = d
        .post(
            &format!("/api/v1/incidents/{cron_incident}/transition"),
            &d.admin,
            json!({"to": "cancelled"}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let gone = d
        .delete(&format!("/api/v1/heartbeats/{}", cron.id()), &d.admin)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let i = d
        .get(&format!("/api/v1/incidents/{cron_incident}"), &d.admin)
        .await;
    assert_eq!(i.body["status"], "cancelled", "{}", i.text);
}

/// A heartbeat's incident that took in firing alerts by a merge is not resolved by the
/// monitor's recovery: the alerts still fire (as they would keep an alert incident open).
#[tokio::test]
async fn the_next_ping_leaves_an_incident_open_while_merged_alerts_fire() {
    let clock = ManualClock::new(Utc::now());
    let d = TestDaemon::start_with(|_| {}, Arc::new(clock.clone())).await;
    let created = d
        .post(
            "/api/v1/heartbeats",
            &d.admin,
            json!({"name": "prometheus watchdog", "interval_secs": 60}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.body["token"].as_str().expect("token").to_owned();
    assert_eq!(ping(&d, &token).await.status, 200);
    clock.advance(Duration::seconds(120));
    let hb_incident = wait_for_missed(&d, 1).await[0]["id"].as_u64().expect("id");

    let am = d.integration("alertmanager", json!({})).await;
    let a = d
        .hook(
            "alertmanager",
            &am.token,
            &common::ingest::am_webhook(
                "{}:{alertname=\"NodeDown\"}",
                vec![common::ingest::am_alert(
                    "firing",
                    json!({"alertname": "NodeDown", "instance": "db-1"}),
                )],
            ),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let alert_incident = d
        .all("/api/v1/incidents")
        .await
        .into_iter()
        .find(|i| i["id"] != hb_incident)
        .and_then(|i| i["id"].as_u64())
        .expect("the alert's incident");
    let merged = d
        .post(
            &format!("/api/v1/incidents/{hb_incident}/merge"),
            &d.admin,
            json!({"source_ids": [alert_incident]}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);

    assert_eq!(ping(&d, &token).await.status, 200);
    let i = d
        .get(&format!("/api/v1/incidents/{hb_incident}"), &d.admin)
        .await;
    assert_eq!(i.body["status"], "new", "{}", i.text);
    assert_eq!(i.body["firing_alerts"], 1, "{}", i.text);
    let tl = d
        .get(
            &format!("/api/v1/incidents/{hb_incident}/timeline?limit=100"),
            &d.admin,
        )
        .await;
    assert!(
        tl.text.contains("still firing, so it stays open"),
        "{}",
        tl.text
    );
}
