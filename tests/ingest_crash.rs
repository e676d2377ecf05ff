//! Crash safety of ingestion with the real binary: webhooks from concurrent senders,
//! `kill -9` mid-stream, restart on the same data dir: every alert whose request got a 2xx
//! is stored, none twice (nor applied twice), and every request is stored whole or not at
//! all. Run once with the default checkpoints (everything acknowledged is only in the redo
//! log when the daemon dies, so the restart replays it) and once with a checkpoint every
//! MiB of log (the restart must replay exactly what the last checkpoint missed); and a
//! graceful stop (SIGTERM) mid-stream, after which there is nothing to replay.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ingest::am_alert;
use common::{ADMIN_PASSWORD, Daemon, into_answer};
use serde_json::{Value, json};

const SENDERS: usize = 6;
const ALERTS_PER_REQUEST: usize = 5;
/// Acknowledged requests before the kill (about 1 KiB of redo log each).
const KILL_AFTER: usize = 200;

/// Fingerprints of each acknowledged request, by (sender, request).
type Acked = Arc<Mutex<BTreeMap<(usize, usize), Vec<String>>>>;

/// Request `r` of sender `w`: new alerts with explicit fingerprints, in its own group.
fn request(w: usize, r: usize) -> (Value, Vec<String>) {
    let mut fps = Vec::new();
    let alerts = (0..ALERTS_PER_REQUEST)
        .map(|k| {
            let fp = format!("crash-{w}-{r}-{k}");
            let mut a = am_alert(
                "firing",
                json!({"alertname": "Crash", "sender": w.to_string(), "request": r.to_string(), "n": k.to_string()}),
            );
            a["fingerprint"] = json!(fp);
            fps.push(fp);
            a
        })
        .collect::<Vec<_>>();
    let body = json!({
        "version": "4", "groupKey": format!("{{}}:{{sender=\"{w}\",request=\"{r}\"}}"),
        "truncatedAlerts": 0, "status": "firing", "receiver": "incidentd",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.test", "alerts": alerts
    });
    (body, fps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_alerts_survive_kill_9_exactly_once_from_the_redo_log() {
    let stderr = stop_mid_stream_and_restart("", KILL_AFTER, false, Stop::Kill9).await;
    assert!(
        stderr.contains("replayed the redo log"),
        "the restart replayed nothing: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_alerts_survive_kill_9_exactly_once_across_checkpoints() {
    // About 3 MiB of redo log: two or three checkpoints before the kill.
    stop_mid_stream_and_restart(
        "[store]\ncheckpoint_mb = 1\n",
        3 * KILL_AFTER,
        true,
        Stop::Kill9,
    )
    .await;
}

/// SIGTERM mid-stream: the daemon answers what it took, hands every logged request to
/// the store and checkpoints it, so the restart has the same alerts and nothing to replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_mid_stream_keeps_everything_and_leaves_nothing_to_replay() {
    let stderr = stop_mid_stream_and_restart("", KILL_AFTER, false, Stop::Term).await;
    assert!(
        !stderr.contains("replayed the redo log"),
        "a graceful stop left records to replay: {stderr}"
    );
}

/// How the daemon is stopped mid-stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Kill9,
    Term,
}

/// The daemon's `/metrics` page.
async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Starts the binary on `data` with an Alertmanager integration: the daemon, an HTTP
/// client, and the integration's webhook URL.
async fn start_with_integration(
    data: &std::path::Path,
    env: &[(&str, &str)],
) -> (Daemon, reqwest::Client, String) {
    let daemon = Daemon::spawn(data, env).await;
    let client = common::client();
    let token = daemon.admin_token(&client).await;
    let res = client
        .post(format!("{}/api/v1/integrations", daemon.base))
        .bearer_auth(&token)
        .json(&json!({"name": "crash", "kind": "alertmanager"}))
        .send()
        .await
        .expect("integration");
    let a = into_answer(res).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let url = format!(
        "{}/hooks/alertmanager/{}",
        daemon.base,
        a.body["token"].as_str().expect("token")
    );
    (daemon, client, url)
}

/// Posts from [`SENDERS`] senders, stops the daemon after `kill_after` answers, restarts
/// it and checks what it holds; returns the restarted daemon's log.
async fn stop_mid_stream_and_restart(
    config: &str,
    kill_after: usize,
    expect_checkpoint: bool,
    stop: Stop,
) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let config_path = dir.path().join("incidentd.toml");
    std::fs::write(&config_path, config).expect("config");
    let config_path = config_path.to_str().expect("utf-8 path").to_owned();
    let env = [
        ("INCIDENTD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("INCIDENTD_CONFIG", config_path.as_str()),
        ("INCIDENTD_LOG", "info"),
    ];
    let (mut daemon, client, hook_url) = start_with_integration(&data, &env).await;
    let scrape = |name: &'static str| {
        let (client, base) = (client.clone(), daemon.base.clone());
        async move { metric(&metrics_text(&client, &base).await, name) }
    };
    let durable_before = scrape("incidentd_store_durable_commits_total").await;

    // Senders post new alerts until the daemon dies under them.
    let acked: Acked = Arc::default();
    let acked_count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..SENDERS {
        let (client, url) = (client.clone(), hook_url.clone());
        let (acked, acked_count) = (acked.clone(), acked_count.clone());
        tasks.push(tokio::spawn(async move {
            for r in 0..10_000 {
                let (body, fps) = request(w, r);
                let Ok(res) = client.post(&url).json(&body).send().await else {
                    return;
                };
                if !res.status().is_success() {
                    return;
                }
                // The 2xx counts only once its body is fully read.
                if res.bytes().await.is_err() {
                    return;
                }
                acked.lock().expect("lock").insert((w, r), fps);
                acked_count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::SeqCst) < kill_after {
        assert!(Instant::now() < deadline, "no progress before the kill");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if expect_checkpoint {
        // Application trails the acknowledgements: keep posting until one checkpoint is in.
        while scrape("incidentd_store_durable_commits_total").await <= durable_before {
            assert!(
                Instant::now() < deadline,
                "no checkpoint before the deadline"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let durable_commits = scrape("incidentd_store_durable_commits_total").await - durable_before;
    let logged = scrape("incidentd_store_logged_operations_total").await;
    println!("before the kill: {durable_commits} checkpoints, {logged} logged operations");
    assert!(logged > 0.0, "ingestion did not go through the redo log");
    if expect_checkpoint {
        assert!(durable_commits > 0.0, "no checkpoint before the kill");
    } else {
        assert_eq!(durable_commits, 0.0, "a checkpoint before the kill");
    }
    match stop {
        Stop::Kill9 => daemon.kill9(),
        Stop::Term => assert_eq!(daemon.terminate(), Some(0), "SIGTERM exits 0"),
    }
    for t in tasks {
        t.await.expect("task");
    }
    let acked = acked.lock().expect("lock").clone();
    println!("{} requests acknowledged before {stop:?}", acked.len());
    assert!(acked.len() >= kill_after);

    let daemon = Daemon::spawn(&data, &env).await;
    let token = daemon.admin_token(&client).await;
    let alerts = daemon
        .list_all(&client, &token, "/api/v1/alerts?limit=500")
        .await;
    let incidents = daemon
        .list_all(&client, &token, "/api/v1/incidents?limit=500")
        .await;
    println!(
        "after restart: {} alerts, {} incidents",
        alerts.len(),
        incidents.len()
    );

    // No fingerprint twice, no id twice.
    let mut by_fp: BTreeMap<String, Value> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for a in &alerts {
        assert!(
            ids.insert(a["id"].as_u64().expect("id")),
            "duplicate id {a}"
        );
        let fp = a["fingerprint"].as_str().expect("fp").to_owned();
        assert!(
            by_fp.insert(fp.clone(), a.clone()).is_none(),
            "{fp} stored twice"
        );
        // Sent once: a replay that applied a request twice would count it twice.
        assert_eq!(a["receive_count"], 1, "{a}");
    }
    // Every acknowledged alert is there, firing, on its request's incident.
    for ((w, r), fps) in &acked {
        let mut incident_ids = BTreeSet::new();
        for fp in fps {
            let a = by_fp.get(fp).unwrap_or_else(|| {
                panic!("acknowledged alert {fp} (sender {w}, request {r}) lost")
            });
            assert_eq!(a["state"], "firing", "{a}");
            incident_ids.insert(a["incident_id"].as_u64().expect("incident"));
        }
        assert_eq!(
            incident_ids.len(),
            1,
            "one group, one incident: {incident_ids:?}"
        );
    }
    // Requests are atomic: every incident holds exactly one whole request.
    let mut per_incident: BTreeMap<u64, usize> = BTreeMap::new();
    for a in &alerts {
        *per_incident
            .entry(a["incident_id"].as_u64().expect("incident"))
            .or_default() += 1;
    }
    assert_eq!(per_incident.len(), incidents.len());
    for i in &incidents {
        let id = i["id"].as_u64().expect("id");
        assert_eq!(i["alert_count"], ALERTS_PER_REQUEST, "{i}");
        assert_eq!(
            per_incident.get(&id),
            Some(&ALERTS_PER_REQUEST),
            "incident {id}"
        );
    }
    assert!(alerts.len() >= acked.len() * ALERTS_PER_REQUEST);
    assert!(
        alerts.len() <= (acked.len() + SENDERS) * ALERTS_PER_REQUEST,
        "at most one unanswered request per sender may have been stored"
    );
    daemon.stderr()
}

/// What the live daemon made of a stream of webhooks into one group is exactly what the
/// restart makes of it from the redo log alone: the same alerts with the same ids, the
/// same incident, and the same timeline entry for entry. Records logged while an
/// operation was pending are applied in one session (one timeline entry for many
/// requests); the log says which, and a replay that grouped them otherwise would write
/// other timeline entries and ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_does_exactly_what_the_live_daemon_did() {
    const REQUESTS: usize = 120;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let env = [
        ("INCIDENTD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("INCIDENTD_LOG", "info"),
    ];
    let (mut daemon, client, url) = start_with_integration(&data, &env).await;
    let token = daemon.admin_token(&client).await;
    // Concurrent senders into one group: their records fold into shared sessions.
    let mut tasks = Vec::new();
    for w in 0..SENDERS {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for r in (w..REQUESTS).step_by(SENDERS) {
                let mut alert = am_alert(
                    "firing",
                    json!({"alertname": "Replay", "instance": format!("host-{r}")}),
                );
                alert["fingerprint"] = json!(format!("replay-{r}"));
                let body = common::ingest::am_webhook("{}:{alertname=\"Replay\"}", vec![alert]);
                let res = client.post(&url).json(&body).send().await.expect("post");
                assert_eq!(res.status(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }

    /// Everything a replay must reproduce, as the API shows it.
    async fn state(daemon: &Daemon, client: &reqwest::Client, token: &str) -> Vec<Vec<Value>> {
        let alerts = daemon
            .list_all(client, token, "/api/v1/alerts?limit=500")
            .await;
        let incidents = daemon
            .list_all(client, token, "/api/v1/incidents?limit=500")
            .await;
        assert_eq!(incidents.len(), 1, "one group, one incident: {incidents:?}");
        let id = incidents[0]["id"].as_u64().expect("id");
        let timeline = daemon
            .list_all(
                client,
                token,
                &format!("/api/v1/incidents/{id}/timeline?limit=500"),
            )
            .await;
        vec![alerts, incidents, timeline]
    }
    let live = state(&daemon, &client, &token).await;
    assert_eq!(live[0].len(), REQUESTS);
    let metrics = metrics_text(&client, &daemon.base).await;
    let records = metric(&metrics, "incidentd_ingest_record_requests_count");
    let sessions = live[2].iter().filter(|e| e["kind"] == "alerts").count();
    println!("{REQUESTS} requests in {records} records, applied in {sessions} sessions");
    assert!(
        (sessions as f64) < records,
        "records should have folded into shared sessions"
    );

    daemon.kill9();
    let daemon = Daemon::spawn(&data, &env).await;
    assert!(
        daemon.stderr().contains("replayed the redo log"),
        "nothing to replay: the test needs the webhooks to be in the log only"
    );
    let token = daemon.admin_token(&client).await;
    let replayed = state(&daemon, &client, &token).await;
    for (what, (l, r)) in ["alerts", "incidents", "timeline"]
        .iter()
        .zip(live.iter().zip(&replayed))
    {
        assert_eq!(l, r, "{what} differ after the replay");
    }
}
