//! Triage playbooks, black-box: the real daemon with the repository's example playbooks
//! (and some written here), fed through the API and the Alertmanager webhook. A matching
//! incident gets the playbook's steps, done as the playbook (timeline and comments name
//! it); a non-matching one is left alone; a failing step stops the playbook with a comment
//! saying why; events caused by playbooks set nothing off; a restart does not run a
//! playbook twice, and after a crash mid-playbook it resumes with the step in flight; a
//! bad playbook stops start-up; `incidentd playbook test` checks a file
//! and shows what it would do.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::TestDaemon;
use common::ingest::{am_alert, am_webhook, eventually};
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks")
}

async fn start_with_playbooks(dir: PathBuf) -> TestDaemon {
    TestDaemon::start_with(move |c| c.playbooks_dir = Some(dir), Arc::new(SystemClock)).await
}

async fn comments(d: &TestDaemon, id: u64) -> Vec<Value> {
    let a = d
        .get(
            &format!("/api/v1/incidents/{id}/comments?limit=500"),
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"].as_array().cloned().unwrap_or_default()
}

async fn incident(d: &TestDaemon, id: u64) -> Value {
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

async fn open(d: &TestDaemon, title: &str, impact: &str) -> u64 {
    let a = d
        .post(
            "/api/v1/incidents",
            &d.admin,
            json!({"title": title, "impact": impact, "urgency": impact}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.id()
}

/// Waits until incident `id` has a comment by playbook `name`; returns all its comments.
async fn commented_by(d: &TestDaemon, id: u64, name: &str) -> Vec<Value> {
    eventually(&format!("a comment by playbook '{name}'"), WAIT, || async {
        let all = comments(d, id).await;
        all.iter()
            .any(|c| c["author"]["kind"] == "playbook" && c["author"]["name"] == name)
            .then_some(all)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_playbooks_triage_matching_incidents_and_leave_others_alone() {
    let d = start_with_playbooks(examples()).await;
    let dba = d
        .post("/api/v1/groups", &d.admin, json!({"name": "dba"}))
        .await;
    assert_eq!(dba.status, 201, "{}", dba.text);

    // A database alert through Alertmanager: the database playbook triages it.
    let am = d.integration("alertmanager", json!({})).await;
    let labels = json!({"alertname": "PostgresReplicationLag", "team": "db", "instance": "db-1:9187", "severity": "warning"});
    let a = d
        .hook(
            "alertmanager",
            &am.token,
            &am_webhook(
                "{}:{alertname=\"PostgresReplicationLag\"}",
                vec![am_alert("firing", labels)],
            ),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    let db = a.body["opened"][0].as_u64().expect("opened");
    let notes = commented_by(&d, db, "database triage").await;
    let text = notes[0]["body"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("INC-{db}")) && text.contains("PostgresReplicationLag on db-1:9187"),
        "{text}"
    );
    let i = eventually("urgency raised and the DBAs assigned", WAIT, || async {
        let i = incident(&d, db).await;
        (i["urgency"] == "high" && i["group_id"] == dba.id()).then_some(i)
    })
    .await;
    assert_eq!(i["impact"], "medium", "only urgency was set: {i}");
    assert_eq!(i["priority"], "P2", "the priority follows: {i}");
    let timeline = d
        .get(
            &format!("/api/v1/incidents/{db}/timeline?limit=500"),
            &d.admin,
        )
        .await;
    assert!(
        timeline.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["actor"]["kind"] == "playbook" && e["actor"]["name"] == "database triage"),
        "the timeline names the playbook: {}",
        timeline.text
    );

    // A P1 opened by hand: the major-incident playbook comments and escalates.
    let p1 = open(&d, "Checkout down", "high").await;
    commented_by(&d, p1, "major incident").await;
    eventually("the P1 escalated by the playbook", WAIT, || async {
        let t = d
            .get(
                &format!("/api/v1/incidents/{p1}/timeline?limit=500"),
                &d.admin,
            )
            .await;
        t.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["kind"] == "escalated" && e["actor"]["kind"] == "playbook")
            .then_some(())
    })
    .await;
    assert!(
        !comments(&d, p1)
            .await
            .iter()
            .any(|c| c["author"]["name"] == "database triage"),
        "no database labels, no database triage"
    );

    // A P4 with no labels: nothing happens.
    let quiet = open(&d, "Typo on the status page", "low").await;
    let marker = open(&d, "Marker after the quiet one", "high").await;
    commented_by(&d, marker, "major incident").await;
    assert!(comments(&d, quiet).await.is_empty());
    assert_eq!(incident(&d, quiet).await["group_id"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_stops_with_a_note_loops_cannot_happen_and_restarts_do_not_repeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a-ghost.yaml"),
        "name: ghost\nsteps:\n  - comment: 'first'\n  - assign: {user: ghost}\n  - comment: 'never'\n",
    )
    .expect("write");
    // Reacts to updates and updates: without the loop guard it would run forever.
    std::fs::write(
        dir.path().join("b-echo.yaml"),
        "name: echo\non: [incident.opened, incident.commented, incident.updated]\nsteps:\n  - set: {impact: medium}\n  - comment: 'echo {{ incident.impact }}'\n",
    )
    .expect("write");
    let data = tempfile::tempdir().expect("data");
    let pb = dir.path().to_owned();
    let mut d = TestDaemon::start_in(
        data.path(),
        move |c| c.playbooks_dir = Some(pb),
        Arc::new(SystemClock),
    )
    .await;
    let id = open(&d, "Queue backlog", "low").await;
    let all = commented_by(&d, id, "ghost").await;
    let stopped = eventually("the ghost playbook's failure note", WAIT, || async {
        comments(&d, id).await.into_iter().find(|c| {
            c["body"]
                .as_str()
                .unwrap_or_default()
                .contains("stopped at step 2")
        })
    })
    .await;
    let why = stopped["body"].as_str().unwrap_or_default();
    assert!(why.contains("(assign)") && why.contains("ghost"), "{why}");
    assert!(!all.iter().any(|c| c["body"] == "never"));
    commented_by(&d, id, "echo").await;
    // Let a loop show itself if there were one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = comments(&d, id).await;
    // The comment sees the impact its playbook's own `set` gave the incident.
    let echoes = before.iter().filter(|c| c["body"] == "echo medium").count();
    assert_eq!(echoes, 1, "{before:#?}");
    assert_eq!(incident(&d, id).await["impact"], "medium");

    // A restart does not run the playbooks again for what they already handled.
    d.stop().await;
    drop(d);
    let pb = dir.path().to_owned();
    let d = TestDaemon::start_in(
        data.path(),
        move |c| c.playbooks_dir = Some(pb),
        Arc::new(SystemClock),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(comments(&d, id).await.len(), before.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_mid_playbook_the_runner_resumes_with_the_step_in_flight() {
    use incidentd::app::events;
    use incidentd::app::playbooks::{Progress, Running, steps_digest};
    use incidentd::domain::event::EventKind;
    use incidentd::store::{Store, StoreError, StoreOptions};

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("a-first.yaml"),
        "name: first\nsteps:\n  - comment: 'first says hi'\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("b-three.yaml"),
        "name: three\nsteps:\n  - comment: 'one'\n  - comment: 'two'\n  - comment: 'three'\n",
    )
    .expect("write");
    let data = tempfile::tempdir().expect("data");
    let start = |pb: PathBuf| {
        TestDaemon::start_in(
            data.path(),
            move |c| c.playbooks_dir = Some(pb),
            Arc::new(SystemClock),
        )
    };
    let mut d = start(dir.path().to_owned()).await;
    let id = open(&d, "Disk full", "low").await;
    eventually("all three steps", WAIT, || async {
        let bodies: Vec<Value> = comments(&d, id)
            .await
            .iter()
            .map(|c| c["body"].clone())
            .collect();
        (bodies
            == vec![
                json!("first says hi"),
                json!("one"),
                json!("two"),
                json!("three"),
            ])
        .then_some(())
    })
    .await;
    d.stop().await;
    drop(d);

    // Put the store where a crash right after step 2 of 'three' leaves it: the event not
    // yet handled, the progress saying step 3 is next.
    let store = Store::open(
        &data.path().join("incidentd.redb"),
        &StoreOptions::default(),
    )
    .expect("store");
    let opened = events::read_after(&store.read().expect("read"), 0, 10_000)
        .expect("events")
        .into_iter()
        .find(|e| e.kind == EventKind::IncidentOpened && e.incident_id == Some(id))
        .expect("the opening event")
        .seq;
    // What the runner stored: both playbooks finished for that event.
    let stored = Progress::load(&store.read().expect("read"))
        .expect("progress")
        .expect("stored");
    assert_eq!(stored.event_seq, opened, "{stored:?}");
    assert_eq!(
        stored.finished,
        vec!["first".to_owned(), "three".to_owned()]
    );
    assert_eq!(stored.running, None);
    let three =
        incidentd::app::playbooks::load_file(&dir.path().join("b-three.yaml")).expect("playbook");
    let crashed = Progress {
        event_seq: opened,
        finished: vec!["first".into()],
        running: Some(Running {
            playbook: "three".into(),
            next_step: 2,
            steps_digest: steps_digest(&three),
        }),
    };
    store
        .write(move |tx| {
            events::set_cursor(tx, "playbooks", opened - 1)?;
            crashed.save(tx)?;
            Ok::<_, StoreError>(())
        })
        .await
        .expect("rewind");
    store.shutdown().await;
    drop(store);

    // Only the step in flight runs again; 'first', done before the crash, does not.
    let d = start(dir.path().to_owned()).await;
    let bodies = eventually("the step in flight again", WAIT, || async {
        let bodies: Vec<Value> = comments(&d, id)
            .await
            .iter()
            .map(|c| c["body"].clone())
            .collect();
        (bodies.len() >= 5).then_some(bodies)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<Value> = comments(&d, id)
        .await
        .iter()
        .map(|c| c["body"].clone())
        .collect();
    assert_eq!(after, bodies, "nothing more ran");
    assert_eq!(
        bodies,
        vec![
            json!("first says hi"),
            json!("one"),
            json!("two"),
            json!("three"),
            json!("three")
        ]
    );
}

async fn incidentd(args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(common::binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INCIDENTD_LOG", "warn")
        .output();
    tokio::time::timeout(WAIT, out)
        .await
        .expect("finished")
        .expect("ran")
}

#[tokio::test]
async fn playbook_test_checks_a_file_and_shows_what_it_would_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = examples().join("database-triage.yaml");
    let example = example.to_str().expect("path");
    let sample = dir.path().join("incident.json");
    std::fs::write(
        &sample,
        r#"{"title": "Replication lag", "labels": {"team": "db", "alertname": "PgLag", "instance": "db-2"}}"#,
    )
    .expect("write");
    let out = incidentd(&[
        "playbook",
        "test",
        example,
        "--incident",
        sample.to_str().expect("p"),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("it reacts to this incident"), "{stdout}");
    assert!(
        stdout.contains("1. comment: INC-0 looks like a database problem (PgLag on db-2)"),
        "{stdout}"
    );
    assert!(stdout.contains("2. assign to group dba"), "{stdout}");

    std::fs::write(
        &sample,
        r#"{"title": "Disk full", "labels": {"team": "web"}}"#,
    )
    .expect("write");
    let out = incidentd(&[
        "playbook",
        "test",
        example,
        "--incident",
        sample.to_str().expect("p"),
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not react"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\nsteps:\n  - assign: {}\n").expect("write");
    let out = incidentd(&["playbook", "test", bad.to_str().expect("p")]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("steps[0] (assign)"),
        "{err}"
    );

    // Every example in the repository is valid (and start-up refuses a bad directory).
    for entry in std::fs::read_dir(examples()).expect("examples") {
        let path = entry.expect("entry").path();
        let out = incidentd(&["playbook", "test", path.to_str().expect("p")]).await;
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let data = tempfile::tempdir().expect("data");
    let out = tokio::process::Command::new(common::binary())
        .args(["serve"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INCIDENTD_LISTEN", "127.0.0.1:0")
        .env("INCIDENTD_DATA_DIR", data.path())
        .env("INCIDENTD_ADMIN_PASSWORD", "playbook-test-password")
        .env("INCIDENTD_PLAYBOOKS_DIR", dir.path())
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("finished")
        .expect("ran");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("playbooks") && err.contains("bad.yaml"),
        "{err}"
    );
}
