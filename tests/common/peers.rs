//! Real third-party peers for end-to-end tests, started privately on loopback.
//!
//! A peer that is not installed skips its test with a `SKIPPED: needs <package>` line,
//! unless `INCIDENTD_REQUIRE_PEERS=1` (CI), where a missing peer fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::free_port;

/// The first of `binaries` found on `PATH`; `None` (after printing `SKIPPED: needs
/// <package>`) if there is none. Panics instead when `INCIDENTD_REQUIRE_PEERS=1`.
pub fn peer_or_skip(package: &str, binaries: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for b in binaries {
            let candidate = dir.join(b);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    missing(&format!("{package} (looked for {binaries:?})"))
}

/// A peer is missing: under `INCIDENTD_REQUIRE_PEERS=1` (what `.ci/run` sets) that fails the
/// test; under a plain `cargo test` the test says SKIPPED and passes.
pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var("INCIDENTD_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("INCIDENTD_REQUIRE_PEERS=1 but this test's peer is missing: {what}");
    }
    println!("SKIPPED: needs {what}");
    None
}

/// The Alertmanager binary (Debian's `prometheus-alertmanager` or upstream's `alertmanager`).
pub fn alertmanager_or_skip() -> Option<PathBuf> {
    peer_or_skip(
        "prometheus-alertmanager",
        &["prometheus-alertmanager", "alertmanager"],
    )
}

/// How the private Alertmanager routes to the webhook.
#[derive(Debug, Clone)]
pub struct AmOptions {
    /// `route.group_by`, as YAML.
    pub group_by: String,
    pub group_wait: String,
    pub group_interval: String,
    /// Short, so that Alertmanager re-sends unchanged groups (as it does on failures).
    pub repeat_interval: String,
    /// Sent as `Authorization: Bearer` instead of a token in the URL.
    pub bearer_token: Option<String>,
}

impl Default for AmOptions {
    fn default() -> Self {
        Self {
            group_by: "['alertname']".into(),
            group_wait: "1s".into(),
            group_interval: "1s".into(),
            repeat_interval: "1h".into(),
            bearer_token: None,
        }
    }
}

/// A private Prometheus Alertmanager (cluster off, own temp dir) whose only receiver is one
/// webhook. Killed on drop, also when the test panics.
pub struct Alertmanager {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Config, data and log.
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Alertmanager {
    /// Starts Alertmanager `bin` routing every alert to `webhook_url`; waits for `/-/ready`.
    pub async fn start(bin: &Path, webhook_url: &str, opts: &AmOptions) -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = match &opts.bearer_token {
            Some(t) => format!(
                "    http_config:\n      authorization:\n        type: Bearer\n        credentials: '{t}'\n"
            ),
            None => String::new(),
        };
        let config = format!(
            "global:\n  resolve_timeout: 5m\nroute:\n  receiver: daemon\n  group_by: {}\n  group_wait: {}\n  group_interval: {}\n  repeat_interval: {}\nreceivers:\n- name: daemon\n  webhook_configs:\n  - url: '{webhook_url}'\n    send_resolved: true\n    max_alerts: 0\n{auth}",
            opts.group_by, opts.group_wait, opts.group_interval, opts.repeat_interval
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("write config");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let log_path = dir.path().join("alertmanager.log");
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        // A free port can be taken between probing and binding: retry a few times.
        for _ in 0..5 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let log = std::fs::File::create(&log_path).expect("log");
            let mut child = Command::new(bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--web.external-url={url}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=debug")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn alertmanager");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    eprintln!("alertmanager exited early; log:\n{}", read_log());
                    break;
                }
                if let Ok(r) = http.get(format!("{url}/-/ready")).send().await
                    && r.status().is_success()
                {
                    return Alertmanager {
                        child,
                        url,
                        dir,
                        http,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("alertmanager not ready after 15 s; log:\n{}", read_log());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("alertmanager could not start; log:\n{}", read_log());
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// `POST /api/v2/alerts` (panics unless 200).
    pub async fn post_alerts(&self, alerts: &Value) {
        let res = self
            .http
            .post(format!("{}/api/v2/alerts", self.url))
            .json(alerts)
            .send()
            .await
            .expect("post alerts to alertmanager");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "alertmanager /api/v2/alerts: {text}");
    }

    /// The alerts Alertmanager holds (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Vec<Value> {
        let res = self
            .http
            .get(format!("{}/api/v2/alerts", self.url))
            .send()
            .await
            .expect("get alerts");
        res.json::<Vec<Value>>().await.expect("alerts json")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
