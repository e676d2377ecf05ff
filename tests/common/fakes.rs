//! HTTP fakes of the peers the daemon calls: a recording axum server on 127.0.0.1:0 that
//! answers programmably (a default answer per peer, plus scripted answers for the next N
//! requests to a path: 429 with Retry-After, 400, a slow answer...). Every request is kept
//! with its arrival time, method, path, query, headers and body.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it arrived (monotonic).
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {}", self.path, self.text()))
    }

    /// The body as form pairs (decoded independently of the daemon's decoder).
    pub fn form(&self) -> Vec<(String, String)> {
        form_decode(&self.text())
    }

    /// The first value of form field `key`.
    pub fn form_get(&self, key: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The first value of query parameter `key`.
    pub fn query_get(&self, key: &str) -> Option<String> {
        form_decode(&self.query)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// An answer of the fake.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, s: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: s.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

struct Script {
    path_contains: String,
    remaining: usize,
    reply: Reply,
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    log: Arc<Mutex<Vec<Recorded>>>,
    scripts: Arc<Mutex<Vec<Script>>>,
    default: Responder,
}

/// A recording HTTP fake.
pub struct Fake {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rec = Recorded {
        at: Instant::now(),
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers,
        body: body.to_vec(),
    };
    s.log.lock().expect("log").push(rec.clone());
    let scripted = {
        let mut scripts = s.scripts.lock().expect("scripts");
        let hit = scripts
            .iter_mut()
            .find(|sc| sc.remaining > 0 && rec.path.contains(&sc.path_contains));
        hit.map(|sc| {
            sc.remaining -= 1;
            sc.reply.clone()
        })
    };
    let reply = scripted.unwrap_or_else(|| (s.default)(&rec));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut res = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        res.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    res
}

impl Fake {
    /// Starts a fake answering with `default` unless a script says otherwise.
    pub async fn start(default: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Fake {
        let shared = Shared {
            log: Arc::default(),
            scripts: Arc::default(),
            default: Arc::new(default),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        let addr = listener.local_addr().expect("addr");
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Fake {
            base: format!("http://{addr}"),
            shared,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next `times` requests whose path contains `path_contains` get `reply`.
    pub fn script(&self, path_contains: &str, times: usize, reply: Reply) {
        self.shared.scripts.lock().expect("scripts").push(Script {
            path_contains: path_contains.into(),
            remaining: times,
            reply,
        });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().expect("log").clone()
    }

    /// The requests whose path contains `path_contains`.
    pub fn to(&self, path_contains: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(path_contains))
            .collect()
    }

    /// Waits until at least `n` requests to `path_contains` match `pred`; returns them.
    pub async fn wait_for(
        &self,
        path_contains: &str,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let hits: Vec<Recorded> = self
                .to(path_contains)
                .into_iter()
                .filter(|r| pred(r))
                .collect();
            if hits.len() >= n {
                return hits;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.text()))
                    .collect();
                panic!(
                    "waited {timeout:?} for {n} matching requests to {path_contains}, got {}; all requests: {seen:#?}",
                    hits.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// `application/x-www-form-urlencoded` encoding.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes one form component (space as `+`).
pub fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a form body.
pub fn form_decode(s: &str) -> Vec<(String, String)> {
    let dec = |s: &str| -> String {
        let b = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&b[i + 1..i + 3]), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Slack Web API

pub const SLACK_TOKEN: &str = "xoxb-test-bot-token";
pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A fake Slack Web API (`/api/...`) and `response_url` receiver (`/response/...`).
pub struct SlackFake {
    pub fake: Fake,
    emails: Arc<Mutex<HashMap<String, String>>>,
}

impl SlackFake {
    pub async fn start() -> SlackFake {
        let emails: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let known = emails.clone();
        let ts = AtomicU64::new(1);
        let fake = Fake::start(move |r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            match r.path.as_str() {
                "/api/chat.postMessage" => {
                    let n = ts.fetch_add(1, Ordering::SeqCst);
                    Reply::json(
                        200,
                        json!({"ok": true, "channel": body["channel"], "ts": format!("1763975551.{n:06}"),
                               "message": {"text": body["text"], "type": "message"}}),
                    )
                }
                "/api/chat.postEphemeral" => Reply::json(
                    200,
                    json!({"ok": true, "message_ts": "1763975551.900000"}),
                ),
                "/api/chat.update" => Reply::json(
                    200,
                    json!({"ok": true, "channel": body["channel"], "ts": body["ts"], "text": body["text"]}),
                ),
                "/api/users.info" => {
                    let user = r.query_get("user").unwrap_or_default();
                    match known.lock().expect("emails").get(&user) {
                        Some(e) => Reply::json(
                            200,
                            json!({"ok": true, "user": {"id": user, "profile": {"email": e}}}),
                        ),
                        None => Reply::json(200, json!({"ok": false, "error": "user_not_found"})),
                    }
                }
                "/api/views.open" => Reply::json(200, json!({"ok": true, "view": {"id": "V0001"}})),
                // response_url: ours, and the fixtures' paths once their host is replaced.
                p if p.starts_with("/response/")
                    || p.starts_with("/commands/")
                    || p.starts_with("/actions/") =>
                {
                    Reply::text(200, "ok")
                }
                _ => Reply::json(404, json!({"ok": false, "error": "unknown_method"})),
            }
        })
        .await;
        SlackFake { fake, emails }
    }

    /// The `api_base_url` to configure.
    pub fn api_base(&self) -> String {
        self.fake.url("/api/")
    }

    /// A fresh `response_url`.
    pub fn response_url(&self, name: &str) -> String {
        self.fake.url(&format!("/response/{name}"))
    }

    /// What `users.info` reports as the e-mail of `user`.
    pub fn set_email(&self, user: &str, email: &str) {
        self.emails
            .lock()
            .expect("emails")
            .insert(user.into(), email.into());
    }
}

// ---------------------------------------------------------------------------------------
// Twilio

pub const TWILIO_SID: &str = "AC00000000000000000000000000000042";
pub const TWILIO_TOKEN: &str = "twilio-test-auth-token";
pub const TWILIO_FROM: &str = "+15017122661";

/// A fake Twilio REST API: Messages.json and Calls.json answered like Twilio (201 + sid).
pub async fn twilio_fake() -> Fake {
    let n = AtomicU64::new(1);
    Fake::start(move |r| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let to = r.form_get("To").unwrap_or_default();
        if r.path.ends_with("/Messages.json") {
            Reply::json(
                201,
                json!({"account_sid": TWILIO_SID, "api_version": "2010-04-01", "sid": format!("SM{i:032x}"),
                       "status": "queued", "to": to, "from": r.form_get("From"), "body": r.form_get("Body")}),
            )
        } else if r.path.ends_with("/Calls.json") {
            Reply::json(
                201,
                json!({"account_sid": TWILIO_SID, "sid": format!("CA{i:032x}"), "status": "queued", "to": to}),
            )
        } else {
            Reply::json(
                404,
                json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
            )
        }
    })
    .await
}

/// A webhook receiver answering 200.
pub async fn webhook_fake() -> Fake {
    Fake::start(|_| Reply::json(200, json!({}))).await
}

// ---------------------------------------------------------------------------------------
// Discord

pub const DISCORD_BOT_TOKEN: &str = "discord-test-bot-token";
/// The id the fake gives every direct-message channel: `9<recipient id>` cut to 19 digits.
pub fn discord_dm_channel(user: &str) -> String {
    format!("9{user}").chars().take(19).collect()
}

/// A fake Discord REST API under `/api/v10`: channel messages are created (with fresh ids)
/// and edited, DM channels opened, commands overwritten (echoed with ids), and an
/// interaction's original answer edited. Anything else is Discord's 404.
pub async fn discord_fake() -> Fake {
    let n = AtomicU64::new(1);
    Fake::start(move |r| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let parts: Vec<&str> = r.path.trim_start_matches("/api/v10/").split('/').collect();
        let id = || format!("{}", 1_400_000_000_000_000_000u64 + n.fetch_add(1, Ordering::SeqCst));
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["channels", channel, "messages"]) => Reply::json(
                200,
                json!({"id": id(), "channel_id": channel, "content": body["content"], "embeds": body["embeds"]}),
            ),
            ("PATCH", ["channels", channel, "messages", message]) => Reply::json(
                200,
                json!({"id": message, "channel_id": channel, "embeds": body["embeds"]}),
            ),
            ("POST", ["users", "@me", "channels"]) => {
                let user = body["recipient_id"].as_str().unwrap_or_default();
                Reply::json(200, json!({"id": discord_dm_channel(user), "type": 1}))
            }
            ("PUT", ["applications", _, "commands"] | ["applications", _, "guilds", _, "commands"]) => {
                let mut list = body.as_array().cloned().unwrap_or_default();
                for c in &mut list {
                    c["id"] = json!(id());
                }
                Reply::json(200, Value::Array(list))
            }
            ("PATCH", ["webhooks", _, _, "messages", "@original"]) => {
                Reply::json(200, json!({"id": id()}))
            }
            _ => Reply::json(404, json!({"message": "404: Not Found", "code": 0})),
        }
    })
    .await
}
