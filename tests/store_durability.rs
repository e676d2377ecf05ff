//! The store keeps its promises: concurrent writes share commits (group commit) yet each is
//! durable and visible when answered; a failing write in a batch leaves no trace and does
//! not disturb the others; old records missing new fields still read; a store from a newer
//! version is refused; and after `kill -9` every acknowledged write is there exactly once.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Daemon, TestDaemon, binary, free_port, into_answer};
use incidentd::domain::clock::SystemClock;
use incidentd::domain::identity::User;
use incidentd::store::access::{self, Reader};
use incidentd::store::keys::id_key;
use incidentd::store::{FromLog, Store, StoreError, StoreOptions, migrations, tables};
use serde_json::{Value, json};

fn open(path: &Path) -> Store {
    Store::open(path, &StoreOptions::default()).expect("open store")
}

fn key(i: usize) -> Vec<u8> {
    format!("test/key/{i:04}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_are_visible_when_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("s.redb"));
    let before = store.writer_stats();
    let start = Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let k = key(i);
            let written = k.clone();
            store
                .write(move |tx| {
                    access::put_raw(tx, tables::META, &written, format!("v{i}").as_bytes())
                })
                .await?;
            // Answered means committed: a fresh snapshot sees it.
            let seen = store.read()?.get_raw(tables::META, &k)?;
            assert_eq!(seen, Some(format!("v{i}").into_bytes()), "key {i}");
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("write");
    }
    let stats = store.writer_stats();
    let commits = stats.commits - before.commits;
    let operations = stats.operations - before.operations;
    println!("200 writes: {commits} commits, {operations} operations");
    assert!(operations >= 200, "{stats:?}");
    assert!(commits >= 1, "{stats:?}");
    assert!(
        commits < 200,
        "group commit: 200 concurrent writes must share commits ({stats:?})"
    );
    let r = store.read().expect("read");
    for i in 0..200 {
        assert!(r.get_raw(tables::META, &key(i)).expect("get").is_some());
    }
    drop(r);
    store.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_leaves_no_trace_and_spares_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("s.redb"));
    let before = store.writer_stats();

    // Hold the writer with one operation so that the next ones queue up into one batch.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let mut started_tx = Some(started_tx);
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    if let Some(s) = started_tx.take() {
                        let _ = s.send(());
                        let _ = held.recv_timeout(Duration::from_secs(20));
                    }
                    access::put_raw(tx, tables::META, b"test/blocker", b"1")
                })
                .await
        })
    };
    started.await.expect("blocker runs");

    const N: usize = 41;
    const BAD: usize = 20;
    let queued = Arc::new(AtomicUsize::new(0));
    let runs_of_bad = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = store.clone();
        let queued = queued.clone();
        let runs_of_bad = runs_of_bad.clone();
        tasks.push(tokio::spawn(async move {
            queued.fetch_add(1, Ordering::SeqCst);
            store
                .write(move |tx| {
                    access::put_raw(tx, tables::META, &key(i), b"good")?;
                    if i == BAD {
                        runs_of_bad.fetch_add(1, Ordering::SeqCst);
                        access::put_raw(tx, tables::META, b"test/bad/extra", b"bad")?;
                        return Err(StoreError::Internal("deliberate failure".into()));
                    }
                    Ok(i)
                })
                .await
        }));
    }
    while queued.load(Ordering::SeqCst) < N {
        tokio::task::yield_now().await;
    }
    // Every task has started its submission; give the last ones a moment to reach the
    // queue (this only makes one batch likelier, correctness does not depend on it).
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).expect("release");
    blocker.await.expect("blocker task").expect("blocker write");

    for (i, t) in tasks.into_iter().enumerate() {
        let result = t.await.expect("task");
        if i == BAD {
            match result {
                Err(StoreError::Internal(m)) => assert!(m.contains("deliberate"), "{m}"),
                other => panic!("the bad write must fail with its own error: {other:?}"),
            }
        } else {
            assert_eq!(result.expect("good write"), i);
        }
    }
    let r = store.read().expect("read");
    for i in 0..N {
        let v = r.get_raw(tables::META, &key(i)).expect("get");
        if i == BAD {
            assert_eq!(v, None, "the failed write's first put must be rolled back");
        } else {
            assert_eq!(v.as_deref(), Some(&b"good"[..]), "key {i}");
        }
    }
    assert_eq!(
        r.get_raw(tables::META, b"test/bad/extra").expect("get"),
        None
    );
    drop(r);
    let stats = store.writer_stats();
    assert_eq!(stats.operations - before.operations, N as u64, "{stats:?}");
    assert!(
        stats.replays > before.replays,
        "the failure happened inside a shared batch, which was replayed: {stats:?}"
    );
    assert_eq!(runs_of_bad.load(Ordering::SeqCst), 1, "not replayed itself");
    // The writer is still healthy.
    store
        .write(|tx| access::put_raw(tx, tables::META, b"test/after", b"1"))
        .await
        .expect("write after a failure");
    store.shutdown().await;
}

#[tokio::test]
async fn records_without_newer_fields_read_with_defaults() {
    let mut d = TestDaemon::start().await;
    let dir = d.dir.take().expect("dir");
    d.stop().await;
    drop(d);
    let path = dir.path().join(incidentd::store::STORE_FILE);

    // A user as an older version wrote it: no department, active or group_ids.
    let legacy = json!({
        "id": 1000,
        "username": "legacy",
        "email": "legacy@example.com",
        "real_name": "Old Timer",
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
        "role_ids": [4],
        "token_version": 0,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z"
    });
    let store = open(&path);
    let bytes = serde_json::to_vec(&legacy).expect("json");
    store
        .write(move |tx| access::put_raw(tx, tables::USERS, &id_key(1000), &bytes))
        .await
        .expect("write legacy record");
    let user: User = access::get(&store.read().expect("read"), 1000)
        .expect("decodes")
        .expect("present");
    assert_eq!(user.username, "legacy");
    assert!(user.active, "active defaults to true");
    assert_eq!(user.department, None);
    assert!(user.group_ids.is_empty());
    assert_eq!(user.role_ids, vec![4]);
    store.shutdown().await;
    drop(store);

    let d = TestDaemon::start_in(dir.path(), |_| {}, Arc::new(SystemClock)).await;
    let a = d.get("/api/v1/users/1000", &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["username"], "legacy");
    assert_eq!(a.body["active"], true);
    assert_eq!(a.body["department"], Value::Null);
    assert_eq!(a.body["group_ids"], json!([]));
    assert_eq!(a.body["roles"], json!(["Viewer"]));
    let list = d.get("/api/v1/users?limit=500", &d.admin).await;
    assert!(
        list.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|u| u["id"] == 1000),
        "{}",
        list.text
    );
    // And it can be changed like any other user.
    let a = d
        .patch(
            "/api/v1/users/1000",
            &d.admin,
            json!({"department": "Archive"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["department"], "Archive");
}

#[tokio::test]
async fn a_store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let path = data.join(incidentd::store::STORE_FILE);
    let store = open(&path);
    store.shutdown().await;
    drop(store);
    {
        let db = redb::Database::create(&path).expect("open redb");
        migrations::force_version(&db, 999).expect("force version");
    }
    match Store::open(&path, &StoreOptions::default()) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(found, 999);
            assert_eq!(supported, migrations::latest_version());
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a store from a newer version must be refused"),
    }

    let mut child = Command::new(binary())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INCIDENTD_DATA_DIR", &data)
        .env("INCIDENTD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("INCIDENTD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("INCIDENTD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("incidentd serve kept running on a store from a newer version");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(stderr.contains("newer version"), "stderr: {stderr}");
    assert!(stderr.contains("999"), "stderr: {stderr}");
    // Refusing must not have touched the store.
    let db = redb::Database::create(&path).expect("open redb");
    let r = redb::ReadableDatabase::begin_read(&db).expect("read");
    assert_eq!(migrations::current_version(&r).expect("version"), 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let env = [("INCIDENTD_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let mut daemon = Daemon::spawn(&data, &env).await;
    let client = common::client();
    let token = daemon.admin_token(&client).await;

    // Eight clients create services one after another until the daemon dies under them,
    // so that writes are in flight at the kill.
    const KILL_AFTER: usize = 60;
    let acked: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, base, token) = (client.clone(), daemon.base.clone(), token.clone());
        let (acked, count) = (acked.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..100 {
                let name = format!("svc-{w}-{j:03}");
                let res = client
                    .post(format!("{base}/api/v1/services"))
                    .bearer_auth(&token)
                    .json(&json!({"name": name, "description": "crash test"}))
                    .send()
                    .await;
                let Ok(res) = res else { return };
                if res.status() != 201 {
                    return;
                }
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_u64().expect("id");
                acked.lock().expect("lock").insert(name, id);
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < deadline, "no progress before the kill");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    daemon.kill9();
    for t in tasks {
        t.await.expect("task");
    }
    let acked = acked.lock().expect("lock").clone();
    println!("{} creations acknowledged before kill -9", acked.len());
    assert!(acked.len() >= KILL_AFTER && acked.len() < 800);

    let daemon = Daemon::spawn(&data, &env).await;
    let token = daemon.admin_token(&client).await;
    let services = daemon
        .list_all(&client, &token, "/api/v1/services?limit=25")
        .await;
    let mut by_name: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in &services {
        by_name
            .entry(s["name"].as_str().expect("name").to_owned())
            .or_default()
            .push(s["id"].as_u64().expect("id"));
    }
    let ids: BTreeSet<u64> = services
        .iter()
        .map(|s| s["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), services.len(), "duplicate ids in the list");
    for (name, id) in &acked {
        assert_eq!(
            by_name.get(name),
            Some(&vec![*id]),
            "acknowledged service {name} (id {id}) must exist exactly once"
        );
    }
    assert!(by_name.contains_key("Default"));
    assert!(
        by_name.values().all(|ids| ids.len() == 1),
        "duplicates after restart"
    );
    // Each surviving service has its audit entry: record and audit were one transaction.
    let res = client
        .get(format!(
            "{}/api/v1/audit?target=service&limit=500",
            daemon.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("audit");
    let audit = into_answer(res).await;
    let audited: BTreeSet<u64> = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["action"] == "service.create")
        .map(|e| e["target"]["id"].as_u64().expect("id"))
        .collect();
    let created: BTreeSet<u64> = ids.iter().copied().filter(|id| *id != 1).collect();
    assert_eq!(audited, created);
    // And the restarted daemon keeps working.
    let res = client
        .post(format!("{}/api/v1/services", daemon.base))
        .bearer_auth(&token)
        .json(&json!({"name": "after-the-crash"}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
}

/// Logged writes (the redo-log road ingestion takes) are visible once the store caught up
/// with what it acknowledged, commit without redb's fsync, and a graceful shutdown
/// checkpoints them: the next start has nothing to replay and drops the old log segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_writes_are_checkpointed_by_a_graceful_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let store = open(&path);
    let before = store.writer_stats();
    // What ingestion's logging thread does: append each record, then hand its operation
    // over in log order.
    let mut appender = store.take_redo_appender().expect("the appender");
    assert!(store.take_redo_appender().is_none(), "one logging thread");
    let logger = store.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        (0..50)
            .map(|i| {
                let (seq, appended) = appender.append(format!("record {i}").into_bytes());
                appended.expect("appended");
                let written = key(i);
                logger
                    .hand_over_logged(
                        FromLog::Applied {
                            first: seq,
                            last: seq,
                            record_len: 9,
                        },
                        move |tx| access::put_raw(tx, tables::META, &written, b"logged"),
                    )
                    .expect("queued")
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("join");
    // Acknowledged: a reader that waits for the store to catch up sees every one.
    store
        .caught_up(Duration::from_secs(5))
        .await
        .expect("caught up");
    for i in 0..50 {
        let seen = store.read().expect("read").get_raw(tables::META, &key(i));
        assert_eq!(
            seen.expect("get").as_deref(),
            Some(&b"logged"[..]),
            "key {i}"
        );
    }
    for outcome in outcomes {
        outcome.await.expect("applied");
    }
    let stats = store.writer_stats();
    assert_eq!(stats.logged_operations - before.logged_operations, 50);
    assert_eq!(
        stats.durable_commits, before.durable_commits,
        "logged writes never wait for redb's fsync"
    );
    store.shutdown().await;
    drop(store);

    let store = open(&path);
    assert!(
        store.take_redo_backlog().is_empty(),
        "a graceful shutdown checkpoints everything"
    );
    for i in 0..50 {
        let seen = store.read().expect("read").get_raw(tables::META, &key(i));
        assert_eq!(seen.expect("get").as_deref(), Some(&b"logged"[..]));
    }
    let segments = std::fs::read_dir(incidentd::store::redo_dir(&path))
        .expect("redo dir")
        .count();
    assert_eq!(segments, 1, "only the fresh segment is left");
}
