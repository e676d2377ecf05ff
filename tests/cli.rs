//! The `incidentd` binary as an operator uses it: `serve` with a given or generated admin
//! password, SIGTERM, `config check`, `user add|list|passwd`, `integration
//! add|list|rotate` and `heartbeat add|list|rotate` with the daemon stopped and running, `backup` while serving and
//! `restore` into a new directory, `migrate --status`.
mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, binary, into_answer};
use serde_json::{Value, json};

const PASSWORD: &str = "cli-admin-password";

/// Runs `incidentd args` with only PATH and `env` in its environment, `stdin` as input;
/// fails the test if it runs longer than 60 s.
fn incidentd(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INCIDENTD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn incidentd");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("incidentd {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_success(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Asserts a failure with exactly one non-empty line on stderr, containing every needle.
fn assert_one_line_failure(o: &Output, needles: &[&str]) {
    assert!(!o.status.success(), "should fail: {}", stdout(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "stderr should name '{n}': {err}");
    }
}

fn data_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![("INCIDENTD_DATA_DIR", dir.display().to_string())]
}

fn env_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

use common::client;

async fn login(base: &str, username: &str, password: &str) -> (u16, Value) {
    let res = client()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login");
    let a = into_answer(res).await;
    (a.status.as_u16(), a.body)
}

async fn token(base: &str, username: &str, password: &str) -> String {
    let (status, body) = login(base, username, password).await;
    assert_eq!(status, 200, "login {username}: {body}");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn get(base: &str, path: &str, token: &str) -> (u16, Value) {
    let res = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let a = into_answer(res).await;
    (a.status.as_u16(), a.body)
}

async fn post(base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let res = client()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post");
    let a = into_answer(res).await;
    (a.status.as_u16(), a.body)
}

/// Every item of a list, walking the pages.
async fn all(base: &str, path: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut p = format!("{path}{sep}limit=100");
        if let Some(c) = &cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = get(base, &p, token).await;
        assert_eq!(status, 200, "{p}: {body}");
        out.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn data_dir(root: &tempfile::TempDir, name: &str) -> PathBuf {
    root.path().join(name)
}

#[tokio::test]
async fn serve_with_a_given_admin_password() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = data_dir(&root, "data");
    let mut d = Daemon::spawn(&data, &[("INCIDENTD_ADMIN_PASSWORD", PASSWORD)]).await;
    let (status, body) = get(&d.base, "/healthz", "-").await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
    assert_eq!(get(&d.base, "/readyz", "-").await.0, 200);
    let t = token(&d.base, "admin", PASSWORD).await;
    let (status, me) = get(&d.base, "/api/v1/auth/me", &t).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["roles"], json!(["Admin"]));
    assert!(
        !d.stderr().contains(PASSWORD),
        "a given password is never printed"
    );
    assert!(data.join(incidentd::store::STORE_FILE).is_file());
    assert_eq!(d.terminate(), Some(0));
}

#[tokio::test]
async fn a_generated_admin_password_is_printed_once_and_kept() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = data_dir(&root, "data");
    // A start that fails (its port is taken) says where, and keeps the one-time password
    // for the start that works.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let failed = incidentd(
        &["serve"],
        &[
            ("INCIDENTD_DATA_DIR", data.to_str().expect("path")),
            ("INCIDENTD_LISTEN", &addr),
        ],
        None,
    );
    let why = stderr(&failed);
    assert!(!failed.status.success(), "{why}");
    assert!(why.contains(&format!("cannot serve on {addr}")), "{why}");
    assert!(!why.contains("generated password"), "{why}");
    drop(taken);
    let mut d = Daemon::spawn(&data, &[("INCIDENTD_LOG", "debug")]).await;
    let err = d.stderr();
    let line = err
        .lines()
        .find(|l| l.contains("generated password"))
        .unwrap_or_else(|| panic!("no generated password on stderr: {err}"));
    let generated = line.split_whitespace().last().expect("password").to_owned();
    assert!(
        !err.contains('\u{1b}'),
        "no colour escapes in a log that is not a terminal: {err}"
    );
    assert!(generated.len() >= 16, "{line}");
    assert_eq!(
        err.matches(&generated).count(),
        1,
        "printed exactly once: {err}"
    );
    let t = token(&d.base, "admin", &generated).await;
    assert_eq!(get(&d.base, "/api/v1/auth/me", &t).await.0, 200);
    assert_eq!(d.terminate(), Some(0), "SIGTERM exits 0");

    // A restart with a password in the environment does not replace the stored one.
    let mut d = Daemon::spawn(
        &data,
        &[("INCIDENTD_ADMIN_PASSWORD", "some-other-password")],
    )
    .await;
    token(&d.base, "admin", &generated).await;
    let (status, body) = login(&d.base, "admin", "some-other-password").await;
    assert_eq!(status, 401, "{body}");
    assert!(!d.stderr().contains("generated password"), "{}", d.stderr());
    assert_eq!(d.terminate(), Some(0));

    // With JSON logs, stderr stays one JSON object per line, the first start's banner too.
    let json_data = data_dir(&root, "json");
    let mut d = Daemon::spawn(
        &json_data,
        &[("INCIDENTD_LOG_FORMAT", "json"), ("INCIDENTD_LOG", "info")],
    )
    .await;
    let err = d.stderr();
    let mut generated = None;
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(p) = v["fields"]["generated_password"].as_str() {
            generated = Some(p.to_owned());
        }
    }
    let generated = generated.unwrap_or_else(|| panic!("no generated password: {err}"));
    token(&d.base, "admin", &generated).await;
    assert_eq!(d.terminate(), Some(0));
}

#[tokio::test]
async fn sigterm_exits_zero_and_keeps_the_data() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = data_dir(&root, "data");
    let env = [("INCIDENTD_ADMIN_PASSWORD", PASSWORD)];
    let mut d = Daemon::spawn(&data, &env).await;
    let t = token(&d.base, "admin", PASSWORD).await;
    let (status, body) = post(&d.base, "/api/v1/services", &t, json!({"name": "kept"})).await;
    assert_eq!(status, 201, "{body}");
    assert!(data.join(incidentd::admin::SOCKET_FILE).exists());
    assert_eq!(d.terminate(), Some(0));
    assert!(
        !data.join(incidentd::admin::SOCKET_FILE).exists(),
        "the control socket is removed on exit"
    );
    let d = Daemon::spawn(&data, &env).await;
    let t = token(&d.base, "admin", PASSWORD).await;
    let services = all(&d.base, "/api/v1/services", &t).await;
    assert!(services.iter().any(|s| s["name"] == "kept"));
}

#[tokio::test]
async fn config_check_accepts_the_example_and_names_bad_keys() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/incidentd.example.toml");
    let o = incidentd(
        &[
            "config",
            "check",
            "--config",
            &example.display().to_string(),
        ],
        &[],
        None,
    );
    assert_success(&o, "config check of the example");
    assert!(stdout(&o).contains("configuration ok"), "{}", stdout(&o));

    let root = tempfile::tempdir().expect("tempdir");
    let check = |text: &str, needles: &[&str]| {
        let file = root.path().join("bad.toml");
        std::fs::write(&file, text).expect("write");
        let o = incidentd(
            &["config", "check", "--config", &file.display().to_string()],
            &[],
            None,
        );
        assert_one_line_failure(&o, needles);
        // `serve` refuses the same file the same way, before touching anything.
        let data = root.path().join("never-created");
        let o = incidentd(
            &["serve", "--config", &file.display().to_string()],
            &[("INCIDENTD_DATA_DIR", &data.display().to_string())],
            None,
        );
        assert_one_line_failure(&o, needles);
        assert!(!data.exists());
    };
    check(
        "[http]\nbody_limit_bytes = \"big\"\n",
        &["http.body_limit_bytes"],
    );
    check("[http]\nbody_limt_bytes = 5\n", &["body_limt_bytes"]);
    check("lissten = \"127.0.0.1:1\"\n", &["lissten"]);
    check("[auth]\njwt_secret = \"short\"\n", &["auth.jwt_secret"]);
    check("[http\n", &["syntax"]);
    // A password in the SMTP URL is never printed, in an error or in the checked config.
    check(
        "[notify.email]\nsmtp_url = \"http://mailer:hunter2-secret@host\"\nfrom = \"a@example.com\"\n",
        &["notify.email.smtp_url", "mailer:[redacted]@host"],
    );
    let file = root.path().join("smtp.toml");
    std::fs::write(
        &file,
        "[notify.email]\nsmtp_url = \"smtp://mailer:hunter2-secret@127.0.0.1:2525\"\nfrom = \"a@example.com\"\n",
    )
    .expect("write");
    let o = incidentd(
        &["config", "check", "--config", &file.display().to_string()],
        &[],
        None,
    );
    assert_success(&o, "config check with an SMTP password in the URL");
    assert!(
        stdout(&o).contains("smtp://mailer:[redacted]@127.0.0.1:2525"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("hunter2") && !stderr(&o).contains("hunter2"));

    // The environment is checked too, and INCIDENTD_CONFIG names the file.
    let o = incidentd(
        &["config", "check"],
        &[("INCIDENTD_LISTEN", "not-an-address")],
        None,
    );
    assert_one_line_failure(&o, &["INCIDENTD_LISTEN"]);
    // A value the environment set is refused naming the variable (and the key it sets);
    // a bad first-admin password stops serve before anything is created, like the rest.
    for (var, value) in [
        ("INCIDENTD_JWT_SECRET", "short"),
        ("INCIDENTD_LOG", "[[["),
        ("INCIDENTD_ADMIN_PASSWORD", "short"),
    ] {
        let data = root.path().join(format!("never-{var}"));
        let o = incidentd(
            &["serve"],
            &[
                (var, value),
                ("INCIDENTD_DATA_DIR", &data.display().to_string()),
            ],
            None,
        );
        assert_one_line_failure(&o, &[var]);
        assert_eq!(o.status.code(), Some(2), "{var}: {}", stderr(&o));
        assert!(!data.exists(), "{var}: nothing created");
    }
    let o = incidentd(
        &["config", "check"],
        &[("INCIDENTD_CONFIG", &example.display().to_string())],
        None,
    );
    assert_success(&o, "INCIDENTD_CONFIG");
}

/// A data directory the daemon has initialized (admin password [`PASSWORD`]) and left,
/// with the environment that serves it.
async fn initialized_and_stopped(
    root: &tempfile::TempDir,
) -> (PathBuf, [(&'static str, &'static str); 1]) {
    let data = data_dir(root, "data");
    let env = [("INCIDENTD_ADMIN_PASSWORD", PASSWORD)];
    let mut d = Daemon::spawn(&data, &env).await;
    assert_eq!(d.terminate(), Some(0));
    (data, env)
}

#[tokio::test]
async fn user_commands_work_with_the_daemon_stopped_and_running() {
    let root = tempfile::tempdir().expect("tempdir");
    let (data, env) = initialized_and_stopped(&root).await;
    let denv = data_env(&data);
    let denv = env_refs(&denv);

    // Stopped: the CLI opens the store itself.
    let o = incidentd(
        &[
            "user",
            "add",
            "bob",
            "--email",
            "bob@example.com",
            "--role",
            "Engineer",
        ],
        &denv,
        Some("bob-password-1\n"),
    );
    assert_success(&o, "user add (stopped)");
    assert!(stdout(&o).contains("bob"), "{}", stdout(&o));
    let o = incidentd(&["user", "list"], &denv, None);
    assert_success(&o, "user list (stopped)");
    let list = stdout(&o);
    let bob_line = list
        .lines()
        .find(|l| l.contains("bob@example.com"))
        .unwrap_or_else(|| panic!("bob missing: {list}"));
    assert!(
        bob_line.contains("bob") && bob_line.contains("Engineer"),
        "{list}"
    );
    assert!(list.contains("admin"), "{list}");
    assert!(!list.contains("bob-password-1"));
    let o = incidentd(&["user", "passwd", "bob"], &denv, Some("bob-password-2\n"));
    assert_success(&o, "user passwd (stopped)");
    // Refusals are one line and non-zero.
    let o = incidentd(
        &["user", "add", "bob", "--email", "bob2@example.com"],
        &denv,
        Some("whatever-password\n"),
    );
    assert_one_line_failure(&o, &["bob"]);
    let o = incidentd(
        &["user", "add", "dan", "--email", "dan@example.com"],
        &denv,
        Some(""),
    );
    assert!(!o.status.success(), "no password on stdin");
    let o = incidentd(
        &[
            "user",
            "add",
            "dan",
            "--email",
            "dan@example.com",
            "--role",
            "Wizard",
        ],
        &denv,
        Some("dan-password-1\n"),
    );
    assert_one_line_failure(&o, &["Wizard"]);

    // Running: the same commands go through the control socket.
    let d = Daemon::spawn(&data, &env).await;
    let (status, _) = login(&d.base, "bob", "bob-password-1").await;
    assert_eq!(status, 401, "the old password was replaced");
    token(&d.base, "bob", "bob-password-2").await;

    let o = incidentd(
        &[
            "user",
            "add",
            "carol",
            "--email",
            "carol@example.com",
            "--role",
            "Viewer",
        ],
        &denv,
        Some("carol-password-1\n"),
    );
    assert_success(&o, "user add (running)");
    let carol = token(&d.base, "carol", "carol-password-1").await;
    let (_, me) = get(&d.base, "/api/v1/auth/me", &carol).await;
    assert_eq!(me["roles"], json!(["Viewer"]));
    let o = incidentd(&["user", "list"], &denv, None);
    assert_success(&o, "user list (running)");
    let list = stdout(&o);
    for name in ["admin", "bob@example.com", "carol@example.com"] {
        assert!(list.contains(name), "{name} missing: {list}");
    }
    let o = incidentd(
        &["user", "passwd", "carol"],
        &denv,
        Some("carol-password-2\n"),
    );
    assert_success(&o, "user passwd (running)");
    assert_eq!(
        get(&d.base, "/api/v1/auth/me", &carol).await.0,
        401,
        "sessions end with a password change"
    );
    assert_eq!(login(&d.base, "carol", "carol-password-1").await.0, 401);
    token(&d.base, "carol", "carol-password-2").await;
    let o = incidentd(
        &["user", "passwd", "nobody"],
        &denv,
        Some("some-password-1\n"),
    );
    assert_one_line_failure(&o, &["nobody"]);

    // Operator changes are audited as the system.
    let admin = token(&d.base, "admin", PASSWORD).await;
    let system = all(&d.base, "/api/v1/audit?actor=system", &admin).await;
    let actions: Vec<(String, String)> = system
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["summary"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (action, who) in [
        ("user.create", "bob"),
        ("user.password", "bob"),
        ("user.create", "carol"),
        ("user.password", "carol"),
    ] {
        assert!(
            actions.iter().any(|(a, s)| a == action && s.contains(who)),
            "{action} {who} not audited: {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_and_restore_into_a_new_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = data_dir(&root, "data");
    let env = [("INCIDENTD_ADMIN_PASSWORD", PASSWORD)];
    let mut d = Daemon::spawn(&data, &env).await;
    let admin = token(&d.base, "admin", PASSWORD).await;
    for name in ["ann", "ben", "cat"] {
        let (status, body) = post(
            &d.base,
            "/api/v1/users",
            &admin,
            json!({"username": name, "email": format!("{name}@example.com"), "password": "user-password-1", "roles": ["Engineer"]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for i in 0..5 {
        let (status, body) = post(
            &d.base,
            "/api/v1/services",
            &admin,
            json!({"name": format!("svc-{i}")}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let ids = |items: &[Value]| -> BTreeSet<u64> {
        items
            .iter()
            .map(|i| i["id"].as_u64().expect("id"))
            .collect()
    };
    let users_before = ids(&all(&d.base, "/api/v1/users", &admin).await);
    let services_before = ids(&all(&d.base, "/api/v1/services", &admin).await);
    let audit_before = ids(&all(&d.base, "/api/v1/audit", &admin).await);
    assert_eq!(users_before.len(), 4);
    assert_eq!(services_before.len(), 6);

    // Keep writing while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (base, admin, stop, written) =
            (d.base.clone(), admin.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let (status, body) = post(
                    &base,
                    "/api/v1/services",
                    &admin,
                    json!({"name": format!("during-{i}")}),
                )
                .await;
                assert_eq!(status, 201, "{body}");
                written.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    while written.load(Ordering::SeqCst) < 3 {
        tokio::task::yield_now().await;
    }
    let backup = root.path().join("backup.redb");
    let o = {
        let (backup, data) = (backup.clone(), data.clone());
        tokio::task::spawn_blocking(move || {
            incidentd(
                &["backup", "--out", &backup.display().to_string()],
                &[("INCIDENTD_DATA_DIR", &data.display().to_string())],
                None,
            )
        })
        .await
        .expect("backup")
    };
    let during_backup = written.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    assert_success(&o, "backup while serving");
    assert!(stdout(&o).contains("backup written"), "{}", stdout(&o));
    assert!(backup.is_file());
    assert!(during_backup >= 3);
    // The store, its redo log and the backup hold secrets: their owner's only.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&backup), 0o600, "backup");
        assert_eq!(mode(&data.join("incidentd.redb")), 0o600, "store");
        for entry in std::fs::read_dir(&data).expect("data dir").flatten() {
            let p = entry.path();
            if p.is_file() {
                assert_eq!(mode(&p) & 0o077, 0, "{}", p.display());
            }
        }
    }
    // A backup never overwrites.
    let o = incidentd(
        &["backup", "--out", &backup.display().to_string()],
        &[("INCIDENTD_DATA_DIR", &data.display().to_string())],
        None,
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    // The operator's mistake, said once, naming the file: not an "internal error".
    assert_one_line_failure(
        &o,
        &["refusing to overwrite", &backup.display().to_string()],
    );
    assert!(!stderr(&o).contains("internal"), "{}", stderr(&o));
    assert_eq!(d.terminate(), Some(0));

    // Restore refuses a directory that is not empty...
    let o = incidentd(
        &["restore", &backup.display().to_string()],
        &[("INCIDENTD_DATA_DIR", &data.display().to_string())],
        None,
    );
    assert!(!o.status.success(), "restore over existing data must fail");
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("not empty").count(),
        1,
        "said once: {}",
        stderr(&o)
    );
    // ...and fills a new one.
    let restored = data_dir(&root, "restored");
    let renv = data_env(&restored);
    let renv = env_refs(&renv);
    let o = incidentd(&["restore", &backup.display().to_string()], &renv, None);
    assert_success(&o, "restore");
    assert!(restored.join(incidentd::store::STORE_FILE).is_file());

    let o = incidentd(&["migrate", "--status"], &renv, None);
    assert_success(&o, "migrate --status");
    let status = stdout(&o);
    let line = status
        .lines()
        .find(|l| l.starts_with("0001 initial"))
        .unwrap_or_else(|| panic!("no 0001 initial: {status}"));
    assert!(line.contains("applied"), "{status}");

    let d = Daemon::spawn(&restored, &env).await;
    let admin = token(&d.base, "admin", PASSWORD).await;
    let users = all(&d.base, "/api/v1/users", &admin).await;
    let services = all(&d.base, "/api/v1/services", &admin).await;
    let audit = all(&d.base, "/api/v1/audit", &admin).await;
    assert!(
        users_before.is_subset(&ids(&users)),
        "users lost: {users_before:?} vs {users:?}"
    );
    assert!(services_before.is_subset(&ids(&services)));
    assert!(audit_before.is_subset(&ids(&audit)));
    for name in ["ann", "ben", "cat"] {
        token(&d.base, name, "user-password-1").await;
    }
    // The copy is one consistent snapshot: every service has its audit entry and no audit
    // entry names a service that is missing.
    let created: BTreeSet<u64> = audit
        .iter()
        .filter(|e| e["action"] == "service.create")
        .map(|e| e["target"]["id"].as_u64().expect("id"))
        .collect();
    let listed: BTreeSet<u64> = ids(&services).into_iter().filter(|id| *id != 1).collect();
    assert_eq!(created, listed);
    // Migrate status through the running daemon's socket says the same.
    let o = incidentd(&["migrate", "--status"], &renv, None);
    assert_success(&o, "migrate --status (running)");
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("0001 initial") && l.contains("applied")),
        "{}",
        stdout(&o)
    );
}

/// The value after `label` on its own line of `text`.
fn line_value(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no '{label}' line in: {text}"))
        .trim()
        .to_owned()
}

/// A webhook with one firing alert, as Alertmanager posts it.
fn one_alert(name: &str) -> Value {
    json!({"version": "4", "status": "firing", "receiver": "incidentd", "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name}, "commonAnnotations": {},
        "externalURL": "http://am:9093", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": name, "severity": "warning"}, "annotations": {},
            "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc123"}]})
}

#[tokio::test]
async fn integration_commands_print_the_token_once_and_rotate_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let (data, env) = initialized_and_stopped(&root).await;
    let denv = data_env(&data);
    let denv = env_refs(&denv);

    // Stopped: created in the store directly; the token is printed with the URL.
    let o = incidentd(
        &["integration", "add", "prod-am", "--kind", "alertmanager"],
        &denv,
        None,
    );
    assert_success(&o, "integration add (stopped)");
    let out = stdout(&o);
    let am_token = line_value(&out, "token:");
    assert!(am_token.len() >= 32, "{out}");
    assert!(
        line_value(&out, "webhook URL:").ends_with(&format!("/hooks/alertmanager/{am_token}")),
        "{out}"
    );
    let o = incidentd(
        &[
            "integration",
            "add",
            "pd",
            "--kind",
            "pagerduty",
            "--service",
            "default",
        ],
        &denv,
        None,
    );
    assert_success(&o, "integration add pagerduty");
    let routing_key = line_value(&stdout(&o), "routing key:");
    assert!(line_value(&stdout(&o), "send events to:").contains("/v2/enqueue"));
    let o = incidentd(
        &["integration", "add", "x", "--kind", "nagios"],
        &denv,
        None,
    );
    assert!(
        !o.status.success() && stderr(&o).contains("nagios"),
        "{}",
        stderr(&o)
    );
    assert_one_line_failure(
        &incidentd(
            &[
                "integration",
                "add",
                "x",
                "--kind",
                "Generic",
                "--service",
                "Nope",
            ],
            &denv,
            None,
        ),
        &["Nope"],
    );
    // A name that looks like an id is a name first: integration "1" is not integration 1.
    let o = incidentd(
        &["integration", "add", "1", "--kind", "generic"],
        &denv,
        None,
    );
    assert_success(&o, "integration add 1");
    assert!(stdout(&o).contains("(id 3, generic)"), "{}", stdout(&o));
    let o = incidentd(&["integration", "rotate", "1"], &denv, None);
    assert_success(&o, "integration rotate 1");
    assert!(
        stdout(&o).contains("integration 1 (id 3)"),
        "{}",
        stdout(&o)
    );
    let o = incidentd(&["integration", "list"], &denv, None);
    assert_success(&o, "integration list");
    let list = stdout(&o);
    assert!(
        list.contains("prod-am") && list.contains("pagerduty"),
        "{list}"
    );
    assert!(
        !list.contains(&am_token) && !list.contains(&routing_key),
        "tokens are shown only once: {list}"
    );

    // Running: the token works; a rotation through the control socket replaces it.
    let d = Daemon::spawn(&data, &env).await;
    let http = client();
    let hook = |t: &str| format!("{}/hooks/alertmanager/{t}", d.base);
    let res = http
        .post(hook(&am_token))
        .json(&one_alert("DiskFull"))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 202);
    let o = incidentd(&["integration", "rotate", "PROD-AM"], &denv, None);
    assert_success(&o, "integration rotate (running)");
    let new_token = line_value(&stdout(&o), "token:");
    assert_ne!(new_token, am_token);
    let old = http
        .post(hook(&am_token))
        .json(&one_alert("DiskFull"))
        .send()
        .await
        .expect("post");
    assert_eq!(old.status(), 404, "the old token stops at once");
    let new = http
        .post(hook(&new_token))
        .json(&one_alert("DiskFull"))
        .send()
        .await
        .expect("post");
    assert_eq!(new.status(), 202);
    assert_one_line_failure(
        &incidentd(&["integration", "rotate", "no-such"], &denv, None),
        &["no-such"],
    );

    // Audited as the system.
    let admin = token(&d.base, "admin", PASSWORD).await;
    let system = all(&d.base, "/api/v1/audit?actor=system", &admin).await;
    let actions: Vec<&str> = system.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["integration.create", "integration.rotate"] {
        assert!(
            actions.contains(&action),
            "{action} not audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn heartbeat_commands_print_the_ping_url_once_and_rotate_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let (data, env) = initialized_and_stopped(&root).await;
    let denv = data_env(&data);
    let denv = env_refs(&denv);

    // Stopped: created in the store directly; the ping URL carries the token.
    let o = incidentd(
        &[
            "heartbeat",
            "add",
            "prometheus watchdog",
            "--interval-secs",
            "300",
            "--service",
            "default",
        ],
        &denv,
        None,
    );
    assert_success(&o, "heartbeat add (stopped)");
    let out = stdout(&o);
    assert!(
        out.contains(
            "created heartbeat monitor prometheus watchdog (id 1, at least one ping every 300 s"
        ),
        "{out}"
    );
    let first = line_value(&out, "token:");
    assert!(first.len() >= 32, "{out}");
    assert!(
        line_value(&out, "ping URL (POST or GET):").ends_with(&format!("/hooks/heartbeat/{first}")),
        "{out}"
    );
    // Bad input: one line naming what is wrong; nothing stored.
    assert_one_line_failure(
        &incidentd(
            &["heartbeat", "add", "cron", "--interval-secs", "5"],
            &denv,
            None,
        ),
        &["interval_secs"],
    );
    assert_one_line_failure(
        &incidentd(
            &[
                "heartbeat",
                "add",
                "cron",
                "--interval-secs",
                "60",
                "--service",
                "Nope",
            ],
            &denv,
            None,
        ),
        &["Nope"],
    );
    let o = incidentd(&["heartbeat", "list"], &denv, None);
    assert_success(&o, "heartbeat list");
    let list = stdout(&o);
    assert!(
        list.contains("prometheus watchdog") && list.contains("inactive") && list.contains("never"),
        "{list}"
    );
    assert!(
        !list.contains("cron"),
        "nothing stored for bad input: {list}"
    );
    assert!(!list.contains(&first), "tokens are shown only once: {list}");

    // Running: a ping with the token works; a rotation through the control socket
    // replaces it at once.
    let d = Daemon::spawn(&data, &env).await;
    let http = client();
    let ping = |t: &str| format!("{}/hooks/heartbeat/{t}", d.base);
    let res = http.post(ping(&first)).send().await.expect("ping");
    assert_eq!(res.status(), 200);
    let o = incidentd(&["heartbeat", "list"], &denv, None);
    assert_success(&o, "heartbeat list (running)");
    assert!(stdout(&o).contains("healthy"), "{}", stdout(&o));
    let o = incidentd(&["heartbeat", "rotate", "PROMETHEUS WATCHDOG"], &denv, None);
    assert_success(&o, "heartbeat rotate (running)");
    let second = line_value(&stdout(&o), "token:");
    assert_ne!(second, first);
    let old = http.get(ping(&first)).send().await.expect("ping");
    assert_eq!(old.status(), 404, "the old token stops at once");
    let new = http.get(ping(&second)).send().await.expect("ping");
    assert_eq!(new.status(), 200);
    let o = incidentd(&["heartbeat", "rotate", "1"], &denv, None);
    assert_success(&o, "heartbeat rotate by id");
    // Monitor names may repeat: the name is then ambiguous, `#N` is not.
    let o = incidentd(
        &[
            "heartbeat",
            "add",
            "Prometheus Watchdog",
            "--interval-secs",
            "60",
        ],
        &denv,
        None,
    );
    assert_success(&o, "heartbeat add (same name)");
    assert_one_line_failure(
        &incidentd(&["heartbeat", "rotate", "prometheus watchdog"], &denv, None),
        &["several", "#N"],
    );
    let o = incidentd(&["heartbeat", "rotate", "#2"], &denv, None);
    assert_success(&o, "heartbeat rotate #2");
    assert!(stdout(&o).contains("(id 2)"), "{}", stdout(&o));
    assert_one_line_failure(
        &incidentd(&["heartbeat", "rotate", "#99"], &denv, None),
        &["99"],
    );
    // A service by id as well as by name (`integration list` shows ids).
    for service in ["1", "#1", "DEFAULT"] {
        let o = incidentd(
            &[
                "heartbeat",
                "add",
                "db backup",
                "--interval-secs",
                "3600",
                "--service",
                service,
            ],
            &denv,
            None,
        );
        assert_success(&o, &format!("heartbeat add --service {service}"));
    }
    assert_one_line_failure(
        &incidentd(&["heartbeat", "rotate", "no-such"], &denv, None),
        &["no-such"],
    );

    // Audited as the system.
    let admin = token(&d.base, "admin", PASSWORD).await;
    let system = all(&d.base, "/api/v1/audit?actor=system", &admin).await;
    let actions: Vec<&str> = system.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["heartbeat.create", "heartbeat.rotate"] {
        assert!(
            actions.contains(&action),
            "{action} not audited: {actions:?}"
        );
    }
}
