//! A thin client for the Slack Web API methods incidentd uses: `chat.postMessage`,
//! `chat.update`, `users.info`, `views.open`, and posting to a `response_url`. The base URL
//! is configurable so tests run against a fake on loopback.

use serde_json::{Value, json};

use crate::notify::{SendError, classify, transport_error};

/// Slack errors that may pass if tried again.
const TRANSIENT: &[&str] = &[
    "ratelimited",
    "service_unavailable",
    "internal_error",
    "fatal_error",
    "request_timeout",
    "team_added_to_org",
];

/// The client.
#[derive(Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl SlackApi {
    /// A client for `base` (ending in `/`) with the bot token.
    pub fn new(http: reqwest::Client, base: &str, token: &str) -> Self {
        let base = if base.ends_with('/') {
            base.to_owned()
        } else {
            format!("{base}/")
        };
        Self {
            http,
            base,
            token: token.to_owned(),
        }
    }

    /// Calls a method with a JSON body; Slack's `ok: false` becomes an error.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        let what = format!("Slack {method}");
        let res = self
            .http
            .post(format!("{}{method}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(&what, e))?;
        let res = classify(res, &what).await?;
        let v: Value = res.json().await.map_err(|e| {
            SendError::transient(format!("{what}: unreadable answer: {}", e.without_url()))
        })?;
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(v);
        }
        let error = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_owned();
        if TRANSIENT.contains(&error.as_str()) {
            Err(SendError::transient(format!("{what}: {error}")))
        } else {
            Err(SendError::Permanent(format!("{what}: {error}")))
        }
    }

    /// Posts a message; returns (channel id, ts).
    pub async fn post_message(
        &self,
        channel: &str,
        text: &str,
        blocks: &Value,
        thread_ts: Option<&str>,
    ) -> Result<(String, String), SendError> {
        // `text` is what notifications and old clients show, and Slack reads mentions in it:
        // escaped here, the one way out, like the blocks' text.
        let mut body = json!({"channel": channel, "text": super::blocks::escape(text), "blocks": blocks, "unfurl_links": false});
        if let Some(t) = thread_ts {
            body["thread_ts"] = json!(t);
        }
        let v = self.call("chat.postMessage", &body).await?;
        let ch = v
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or(channel)
            .to_owned();
        let ts = v
            .get("ts")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok((ch, ts))
    }

    /// Posts a message only `user` sees (in `thread_ts`'s thread, if given).
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        blocks: &Value,
        thread_ts: Option<&str>,
    ) -> Result<(), SendError> {
        let mut body = json!({"channel": channel, "user": user, "text": super::blocks::escape(text), "blocks": blocks});
        if let Some(t) = thread_ts {
            body["thread_ts"] = json!(t);
        }
        self.call("chat.postEphemeral", &body).await.map(drop)
    }

    /// Replaces a message; `Ok(false)` if it is gone (someone deleted it), so that the
    /// caller can post it again rather than give up on it.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: &Value,
    ) -> Result<bool, SendError> {
        match self
            .call(
                "chat.update",
                &json!({"channel": channel, "ts": ts, "text": super::blocks::escape(text), "blocks": blocks}),
            )
            .await
        {
            Ok(_) => Ok(true),
            // `call` words a refusal as "<what>: <Slack's error code>".
            Err(SendError::Permanent(e)) if e.ends_with(": message_not_found") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A user's e-mail address (needs the `users:read.email` scope).
    pub async fn user_email(&self, user: &str) -> Result<Option<String>, SendError> {
        let what = "Slack users.info";
        let res = self
            .http
            .get(format!("{}users.info", self.base))
            .bearer_auth(&self.token)
            .query(&[("user", user)])
            .send()
            .await
            .map_err(|e| transport_error(what, e))?;
        let v: Value = classify(res, what)
            .await?
            .json()
            .await
            .map_err(|e| SendError::transient(format!("{what}: {e}")))?;
        Ok(v.pointer("/user/profile/email")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// Opens a modal.
    pub async fn views_open(&self, trigger_id: &str, view: &Value) -> Result<(), SendError> {
        self.call(
            "views.open",
            &json!({"trigger_id": trigger_id, "view": view}),
        )
        .await
        .map(|_| ())
    }

    /// Answers through a command's or an action's `response_url`.
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SendError> {
        let res = self
            .http
            .post(response_url)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error("Slack response_url", e))?;
        classify(res, "Slack response_url").await.map(|_| ())
    }
}
