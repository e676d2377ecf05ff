//! Helpers for the notification and chat-ops tests: peer configuration, request signing
//! written here independently of the daemon (Slack v0, Twilio, outbound webhooks), rules,
//! contact methods, incidents, the delivery log and polling.

use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{KeyInit, Mac};
use incidentd::config::{Config, EmailConfig, SlackConfig, TwilioConfig};
use serde_json::{Value, json};

use super::fakes::{SLACK_SECRET, SLACK_TOKEN, TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN};
use super::{Answer, TestDaemon, into_answer};

/// Small retry intervals so that retries happen within a test.
pub fn fast_retries(c: &mut Config) {
    c.notify.retry_base_secs = 1;
    c.notify.retry_max_secs = 2;
    c.notify.max_attempts = 50;
    c.notify.timeout_secs = 10;
}

pub fn email_config(smtp_url: &str) -> EmailConfig {
    EmailConfig {
        smtp_url: smtp_url.into(),
        from: "incidentd <incidentd@example.com>".into(),
        username: None,
        password: None,
    }
}

pub fn twilio_config(base: &str) -> TwilioConfig {
    TwilioConfig {
        account_sid: TWILIO_SID.into(),
        auth_token: TWILIO_TOKEN.into(),
        from_number: TWILIO_FROM.into(),
        api_base_url: base.into(),
    }
}

pub fn slack_config(api_base: &str, default_channel: Option<&str>) -> SlackConfig {
    SlackConfig {
        signing_secret: SLACK_SECRET.into(),
        bot_token: SLACK_TOKEN.into(),
        api_base_url: api_base.into(),
        default_channel: default_channel.map(str::to_owned),
    }
}

/// Slack's v0 signature: `v0=` + hex HMAC-SHA256(secret, `v0:{ts}:{body}`).
pub fn slack_signature(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Twilio's X-Twilio-Signature: base64 HMAC-SHA1(auth token, URL + each POST parameter's
/// name and value, sorted by name).
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac =
        <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).expect("hmac key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `v1=` + hex HMAC-SHA256(secret, "{timestamp}.{body}"): what `X-Incidentd-Signature`
/// must say for a request with `X-Incidentd-Timestamp: {timestamp}`.
pub fn webhook_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

/// POSTs `body` to `path` with the given Slack timestamp and signature headers.
pub async fn post_signed_as(
    d: &TestDaemon,
    path: &str,
    body: &str,
    ts: &str,
    signature: Option<&str>,
) -> Answer {
    let ctype = if body.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut req = d
        .http
        .post(d.url(path))
        .header("content-type", ctype)
        .header("x-slack-request-timestamp", ts)
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("x-slack-signature", s);
    }
    into_answer(req.send().await.expect("request")).await
}

/// POSTs `body` to `path` signed as Slack does, now.
pub async fn post_signed(d: &TestDaemon, path: &str, body: &str) -> Answer {
    let ts = now_secs().to_string();
    let sig = slack_signature(SLACK_SECRET, &ts, body.as_bytes());
    post_signed_as(d, path, body, &ts, Some(&sig)).await
}

/// Creates a notification rule; returns its answer (201 asserted).
pub async fn rule(d: &TestDaemon, name: &str, events: &[&str], targets: Value) -> Value {
    let a = d
        .post(
            "/api/v1/notification-rules",
            &d.admin,
            json!({"name": name, "events": events, "targets": targets}),
        )
        .await;
    assert_eq!(a.status, 201, "create rule: {}", a.text);
    a.body
}

/// Adds a contact method to a user; returns its id.
pub async fn contact(d: &TestDaemon, user_id: u64, kind: &str, address: &str) -> u64 {
    let a = d
        .post(
            &format!("/api/v1/users/{user_id}/contact-methods"),
            &d.admin,
            json!({"kind": kind, "address": address}),
        )
        .await;
    assert_eq!(a.status, 201, "contact method: {}", a.text);
    a.id()
}

/// Opens an incident through the REST API; returns its id.
pub async fn open_incident(d: &TestDaemon, token: &str, title: &str) -> u64 {
    let a = d
        .post(
            "/api/v1/incidents",
            token,
            json!({"title": title, "description": format!("Details of {title}"), "impact": "high", "urgency": "high"}),
        )
        .await;
    assert_eq!(a.status, 201, "open incident: {}", a.text);
    a.id()
}

pub async fn incident(d: &TestDaemon, id: u64) -> Value {
    let a = d.get(&format!("/api/v1/incidents/{id}"), &d.admin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

pub async fn timeline(d: &TestDaemon, id: u64) -> Vec<Value> {
    let a = d
        .get(
            &format!("/api/v1/incidents/{id}/timeline?limit=500"),
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"].as_array().cloned().unwrap_or_default()
}

/// The delivery log (`GET /api/v1/notifications?{query}`), newest first.
pub async fn deliveries(d: &TestDaemon, query: &str) -> Vec<Value> {
    let a = d
        .get(
            &format!("/api/v1/notifications?limit=500&{query}"),
            &d.admin,
        )
        .await;
    assert_eq!(a.status, 200, "delivery log: {}", a.text);
    a.body["items"].as_array().cloned().expect("items")
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the delivery log for `incident` on `channel` has `n` deliveries that all
/// satisfy `pred`; returns them.
pub async fn wait_deliveries(
    d: &TestDaemon,
    incident: u64,
    channel: &str,
    n: usize,
    pred: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = deliveries(d, &format!("incident_id={incident}&channel={channel}")).await;
        if all.len() >= n && all.iter().all(&pred) {
            return all;
        }
        last = if all.is_empty() { last } else { all };
        assert!(
            Instant::now() < deadline,
            "deliveries of INC-{incident} on {channel} never reached the wanted state: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn is_sent(d: &Value) -> bool {
    d["status"] == "sent"
}
