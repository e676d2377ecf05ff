//! Shared test harness: a real daemon (the real router, store and workers) on a random
//! loopback port with its store in a temp dir, an HTTP client, and helpers to log in and
//! create users. Black-box: tests talk HTTP like any client.
#![allow(dead_code)]

pub mod fakes;
pub mod ingest;
pub mod notify;
pub mod peers;
pub mod slack;
pub mod smtp;

#[allow(unused_imports)]
pub use peers::peer_or_skip;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use incidentd::app::App;
use incidentd::config::Config;
use incidentd::daemon::{self, Running};
use incidentd::domain::clock::{Clock, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The admin password every test daemon starts with.
pub const ADMIN_PASSWORD: &str = "admin-test-password";
/// The password `user()` gives new users.
pub const USER_PASSWORD: &str = "user-test-password";

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for tests that drive a real binary.
#[allow(dead_code)]
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A configuration for a test daemon in `dir`, on a random port.
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.auth.jwt_secret = Some("test-secret-test-secret-test-secret!".into());
    c.http.shutdown_grace_secs = 2;
    c
}

/// A daemon under test.
pub struct TestDaemon {
    pub base: String,
    pub http: reqwest::Client,
    pub app: Arc<App>,
    pub admin: String,
    running: Option<Running>,
    pub dir: Option<tempfile::TempDir>,
}

/// An HTTP answer: status, headers and JSON body (Null if none or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an error answer is problem+json with this status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "content type {} body {}",
            self.content_type(),
            self.text
        );
        assert_eq!(self.body["status"], json!(status), "{}", self.text);
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.text
        );
        self
    }

    pub fn id(&self) -> u64 {
        self.body["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
    }
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::start_with(|_| {}, Arc::new(SystemClock)).await
    }

    /// Starts a daemon after `adjust` changed its config, with `clock`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> TestDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut d = Self::start_in(dir.path(), adjust, clock).await;
        d.dir = Some(dir);
        d
    }

    /// Starts a daemon on an existing data directory (restarts).
    pub async fn start_in(
        path: &Path,
        adjust: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
    ) -> TestDaemon {
        install_crypto();
        let mut config = test_config(path);
        adjust(&mut config);
        let app = daemon::open_app(config, clock).await.expect("open app");
        incidentd::app::users::ensure_admin(&app, Some(ADMIN_PASSWORD.into()))
            .await
            .expect("admin");
        let running = daemon::start(app.clone()).await.expect("start");
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let mut d = TestDaemon {
            base,
            http,
            app,
            admin: String::new(),
            running: Some(running),
            dir: None,
        };
        d.admin = d.login("admin", ADMIN_PASSWORD).await;
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        into_answer(res).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Logs in and returns the access token (panics on failure).
    pub async fn login(&self, username: &str, password: &str) -> String {
        let a = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "login {username}: {}", a.text);
        a.body["access_token"].as_str().expect("token").to_owned()
    }

    /// Logs the admin in again, for a test that moved the daemon's clock past the life of
    /// its access token (a day).
    pub async fn relogin_admin(&mut self) {
        self.admin = self.login("admin", ADMIN_PASSWORD).await;
    }

    /// Creates a user with `role` and returns (id, access token).
    pub async fn user(&self, username: &str, role: &str) -> (u64, String) {
        let a = self
            .post(
                "/api/v1/users",
                &self.admin,
                json!({"username": username, "email": format!("{username}@example.com"), "password": USER_PASSWORD, "roles": [role]}),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::CREATED,
            "create {username}: {}",
            a.text
        );
        (a.id(), self.login(username, USER_PASSWORD).await)
    }

    /// Stops the daemon gracefully (the data directory stays).
    /// The audit entries of `action` among the latest 500, newest first.
    pub async fn audited(&self, action: &str) -> Vec<Value> {
        let a = self.get("/api/v1/audit?limit=500", &self.admin).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    /// Moves incident `id` to status `to` as the admin; asserts 200.
    pub async fn transition(&self, id: u64, to: &str) {
        let a = self
            .post(
                &format!("/api/v1/incidents/{id}/transition"),
                &self.admin,
                serde_json::json!({"to": to}),
            )
            .await;
        assert_eq!(a.status, 200, "INC-{id} to {to}: {}", a.text);
    }

    /// Deactivates user `id` as the admin (asserting 200).
    pub async fn deactivate(&self, id: u64) {
        let a = self
            .patch(
                &format!("/api/v1/users/{id}"),
                &self.admin,
                serde_json::json!({"active": false}),
            )
            .await;
        assert_eq!(a.status, 200, "deactivate user {id}: {}", a.text);
    }

    /// The `/metrics` page.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.app.config.data_dir.clone()
    }
}

pub async fn into_answer(res: reqwest::Response) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// The `incidentd` binary as a child process.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub stderr_path: PathBuf,
}

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_incidentd")
}

impl Daemon {
    /// Spawns `incidentd serve` on `data_dir` with extra environment, waiting for /healthz.
    pub async fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        install_crypto();
        let port = free_port();
        let stderr_path = data_dir.with_extension(format!("stderr.{port}"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INCIDENTD_LISTEN", format!("127.0.0.1:{port}"))
            .env("INCIDENTD_DATA_DIR", data_dir)
            .env("INCIDENTD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn incidentd");
        let base = format!("http://127.0.0.1:{port}");
        let d = Daemon {
            child,
            base,
            stderr_path,
        };
        d.wait_healthy().await;
        d
    }

    pub async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("daemon did not become healthy; stderr: {}", self.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Daemon {
    /// Logs the admin in over HTTP and returns the access token.
    pub async fn admin_token(&self, client: &reqwest::Client) -> String {
        let res = client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login");
        let a = into_answer(res).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body["access_token"].as_str().expect("token").to_owned()
    }

    /// Every item of a list, following the cursors; `path` may carry `?limit=`.
    pub async fn list_all(&self, client: &reqwest::Client, token: &str, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}{path}", self.base);
            if let Some(c) = &cursor {
                url.push_str(if path.contains('?') {
                    "&cursor="
                } else {
                    "?cursor="
                });
                url.push_str(c);
            }
            let res = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("list");
            let a = into_answer(res).await;
            assert_eq!(a.status, 200, "{}", a.text);
            out.extend(a.body["items"].as_array().expect("items").iter().cloned());
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample of `/metrics` text that is exactly `series` (name and labels).
pub fn metric_sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
