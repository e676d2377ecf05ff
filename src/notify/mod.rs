//! Outbound channels: one trait, one module per channel. The outbox worker
//! (`engine::outbox`) renders a delivery and hands it to the channel of its kind.

pub mod discord;
pub mod email;
pub mod slack;
pub mod twilio;
pub mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::notifications::templates::Rendered;
use crate::config::Config;
use crate::domain::notification::{ChannelKind, Delivery, MAX_PEER_WAIT};

/// A boxed future, for object-safe async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message ready to go out.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// What the outbox knows of it (target address, secret, ids).
    pub delivery: Delivery,
    /// The rendered text (for webhooks: the JSON body).
    pub rendered: Rendered,
    /// Where a voice call's key press goes.
    pub callback_url: Option<String>,
    /// A chat message to update instead of posting a new one (`channel|ts`).
    pub update_ref: Option<String>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// May pass if tried again (timeout, connection refused, 5xx, 429).
    #[error("{reason}")]
    Transient {
        /// What happened.
        reason: String,
        /// The peer's Retry-After.
        retry_after: Option<chrono::Duration>,
    },
    /// Will not pass (4xx, bad address, not configured).
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    /// A transient failure without Retry-After.
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// A channel.
pub trait Channel: Send + Sync {
    /// Which kind it sends.
    fn kind(&self) -> ChannelKind;

    /// Sends one message; `Ok` carries the provider's id for it, if any.
    fn send<'a>(
        &'a self,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Option<String>, SendError>>;
}

/// The channels this daemon is configured with.
#[derive(Clone, Default)]
pub struct Channels {
    by_kind: HashMap<ChannelKind, Arc<dyn Channel>>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kind.keys()).finish()
    }
}

impl Channels {
    /// Builds every configured channel.
    pub fn from_config(config: &Config) -> Result<Channels, String> {
        let timeout = Duration::from_secs(config.notify.timeout_secs);
        let http = http_client(timeout)?;
        let mut c = Channels::default();
        c.add(Arc::new(webhook::WebhookChannel::new(http.clone())));
        if let Some(e) = &config.notify.email {
            c.add(Arc::new(email::EmailChannel::new(e, timeout)?));
        }
        if let Some(s) = &config.slack {
            c.add(Arc::new(slack::SlackChannel::new(
                crate::chat::slack::api::SlackApi::new(http.clone(), &s.api_base_url, &s.bot_token),
            )));
        }
        if let Some(d) = &config.discord
            && !d.bot_token.is_empty()
        {
            c.add(Arc::new(discord::DiscordChannel::new(
                crate::chat::discord::api::DiscordApi::new(
                    http.clone(),
                    &d.api_base_url,
                    &d.bot_token,
                ),
            )));
        }
        if let Some(t) = &config.notify.twilio {
            let client = twilio::TwilioClient::new(http, t);
            c.add(Arc::new(twilio::SmsChannel(client.clone())));
            c.add(Arc::new(twilio::VoiceChannel(client)));
        }
        Ok(c)
    }

    /// Adds (or replaces) a channel.
    pub fn add(&mut self, channel: Arc<dyn Channel>) {
        self.by_kind.insert(channel.kind(), channel);
    }

    /// The channel of a kind, if configured.
    pub fn get(&self, kind: ChannelKind) -> Option<Arc<dyn Channel>> {
        self.by_kind.get(&kind).cloned()
    }
}

/// The HTTP client outbound channels share.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        // A redirect is a failure to deliver: following one would send a webhook where
        // nobody configured it (as a GET without its body, too).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("incidentd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Reads a `Retry-After` header: seconds, or an HTTP date; never more than
/// [`MAX_PEER_WAIT`], whatever the peer asks.
pub fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: DateTime<Utc>,
) -> Option<chrono::Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match v.parse::<i64>() {
        Ok(secs) => chrono::Duration::seconds(secs.clamp(0, MAX_PEER_WAIT.num_seconds())),
        // Digits past i64: longer than any wait we honour, or long past.
        Err(_) if is_integer(v) => {
            if v.starts_with('-') {
                chrono::Duration::zero()
            } else {
                MAX_PEER_WAIT
            }
        }
        Err(_) => DateTime::parse_from_rfc2822(v)
            .ok()?
            .with_timezone(&Utc)
            .signed_duration_since(now),
    };
    Some(wait.clamp(chrono::Duration::zero(), MAX_PEER_WAIT))
}

/// Whether `v` is digits with an optional sign.
fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Classifies an HTTP answer of a known API (Slack, Discord, Twilio), whose error body
/// says what was wrong: 2xx ok; 408, 425, 429 and 5xx transient (with Retry-After); other
/// 4xx (and 3xx: redirects are not followed) permanent.
pub async fn classify(res: reqwest::Response, what: &str) -> Result<reqwest::Response, SendError> {
    classify_answer(res, what, true).await
}

/// [`classify`] for an address someone typed (a webhook): the reason gives the status
/// only. The delivery log is readable by many, and quoting what any URL answered would
/// let them read pages of the daemon's network through it.
pub async fn classify_status(
    res: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, SendError> {
    classify_answer(res, what, false).await
}

async fn classify_answer(
    res: reqwest::Response,
    what: &str,
    quote_body: bool,
) -> Result<reqwest::Response, SendError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let after = retry_after(res.headers(), Utc::now());
    let reason = if quote_body {
        let body: String = res
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        format!("{what} answered {status}: {}", body.trim())
    } else {
        format!("{what} answered {status}")
    };
    if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
        Err(SendError::Transient {
            reason,
            retry_after: after,
        })
    } else {
        Err(SendError::Permanent(reason))
    }
}

/// Maps a transport error (timeout, refused, TLS) to a transient failure. The URL is left
/// out: some carry credentials (a Slack `response_url`, a Discord interaction token, a
/// webhook's secret path), and the error ends up in logs and the delivery log.
pub fn transport_error(what: &str, e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    SendError::transient(format!("{what}: {kind}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(chrono::Duration::seconds(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Thu, 01 Jan 2026 00:01:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(chrono::Duration::seconds(60)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn a_peer_cannot_hold_a_delivery_back_longer_than_a_day() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        let (day, at_once) = (Some(MAX_PEER_WAIT), Some(chrono::Duration::zero()));
        for (value, expected) in [
            ("86401", day),
            ("9223372036854775807", day),
            ("99999999999999999999999", day),
            ("Fri, 31 Dec 9999 23:59:59 GMT", day),
            ("-5", at_once),
            ("-9223372036854775808", at_once),
            ("-99999999999999999999999", at_once),
            ("Thu, 01 Jan 1970 00:00:00 GMT", at_once),
        ] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(value));
            assert_eq!(retry_after(&h, now), expected, "{value}");
        }
    }
}
