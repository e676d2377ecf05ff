//! Helpers for the alert-ingestion tests: integrations, webhook calls, counting alerts and
//! incidents through the API, fixtures, Alertmanager-shaped payloads and polling.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, TestDaemon, into_answer};

/// An integration as created through the API.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: u64,
    pub token: String,
    pub url: String,
}

/// A fixture from `tests/fixtures`, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One alert of an Alertmanager v4 webhook.
pub fn am_alert(status: &str, labels: Value) -> Value {
    let ends = if status == "resolved" {
        "2030-01-01T00:00:05Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "status": status,
        "labels": labels,
        "annotations": {"summary": "synthetic", "description": "from the ingestion tests"},
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": ends,
        "generatorURL": "http://prometheus.test:9090/graph",
    })
}

/// An Alertmanager v4 webhook envelope around `alerts`.
pub fn am_webhook(group_key: &str, alerts: Vec<Value>) -> Value {
    let firing = alerts.iter().any(|a| a["status"] == "firing");
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "incidentd",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test:9093",
        "alerts": alerts,
    })
}

/// Polls `probe` until it gives `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts a 422 problem whose `errors` name `field`; returns the messages for it.
pub fn assert_invalid_field(a: &Answer, field: &str) -> Vec<String> {
    a.assert_problem(422);
    let msgs = a.body["errors"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no errors for '{field}' in {}", a.text));
    assert!(!msgs.is_empty(), "{}", a.text);
    msgs.iter()
        .map(|m| m.as_str().expect("message").to_owned())
        .collect()
}

impl TestDaemon {
    /// Creates an integration of `kind`; `extra` is merged into the request body.
    pub async fn integration(&self, kind: &str, extra: Value) -> Integration {
        let mut body = json!({"name": format!("{kind}-{}", rand_suffix()), "kind": kind});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let a = self.post("/api/v1/integrations", &self.admin, body).await;
        assert_eq!(a.status, 201, "create integration: {}", a.text);
        Integration {
            id: a.id(),
            token: a.body["token"].as_str().expect("token").to_owned(),
            url: a.body["url"].as_str().expect("url").to_owned(),
        }
    }

    /// POSTs raw bytes as JSON to `path` without a user token.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Answer {
        let res = self
            .http
            .request(Method::POST, self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        into_answer(res).await
    }

    /// POSTs `body` to `/hooks/{kind}/{token}?wait=applied`: answered with what the alerts
    /// did.
    pub async fn hook(&self, kind: &str, token: &str, body: &Value) -> Answer {
        self.post_raw(
            &format!("/hooks/{kind}/{token}?wait=applied"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// POSTs a PagerDuty event to `/v2/enqueue`.
    pub async fn enqueue(&self, body: &Value) -> Answer {
        self.post_raw("/v2/enqueue", body.to_string().into_bytes())
            .await
    }

    /// Every item of a paginated list (`path` may carry a query).
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{path}{sep}limit=500");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let a = self.get(&url, &self.admin).await;
            assert_eq!(a.status, 200, "GET {url}: {}", a.text);
            out.extend(a.body["items"].as_array().expect("items").iter().cloned());
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// (alerts, incidents) stored.
    pub async fn counts(&self) -> (usize, usize) {
        (
            self.all("/api/v1/alerts").await.len(),
            self.all("/api/v1/incidents").await.len(),
        )
    }

    /// The alerts of an incident, via `GET /api/v1/alerts?incident_id=`.
    pub async fn alerts_of(&self, incident: u64) -> Vec<Value> {
        self.all(&format!("/api/v1/alerts?incident_id={incident}"))
            .await
    }

    /// `GET /api/v1/incidents/{id}`.
    pub async fn incident(&self, id: u64) -> Value {
        let a = self
            .get(&format!("/api/v1/incidents/{id}"), &self.admin)
            .await;
        assert_eq!(a.status, 200, "incident {id}: {}", a.text);
        a.body
    }

    /// The stored alert with this fingerprint (the newest record of it).
    pub async fn alert_by_fingerprint(&self, fingerprint: &str) -> Option<Value> {
        self.all("/api/v1/alerts")
            .await
            .into_iter()
            .find(|a| a["fingerprint"] == fingerprint)
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
