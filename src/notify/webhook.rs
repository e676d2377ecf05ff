//! Outbound webhooks: a JSON POST signed with the target's secret.
//!
//! `X-Incidentd-Signature: sha256=<hex HMAC-SHA256 of the body>` lets the receiver verify the
//! body; `X-Incidentd-Timestamp` (seconds) and `X-Incidentd-Delivery` (the delivery id, the
//! same on retries) let it refuse replays and deduplicate.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::{BoxFuture, Channel, Outbound, SendError, classify, transport_error};
use crate::domain::notification::ChannelKind;

/// The webhook channel.
pub struct WebhookChannel {
    http: reqwest::Client,
}

impl WebhookChannel {
    /// A channel sending with `http`.
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Channel for WebhookChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<Option<String>, SendError>> {
        Box::pin(async move {
            let body = m.rendered.body.clone().into_bytes();
            let mut req = self
                .http
                .post(&m.delivery.target)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    "X-Incidentd-Timestamp",
                    chrono::Utc::now().timestamp().to_string(),
                )
                .header("X-Incidentd-Delivery", m.delivery.id.to_string())
                .header("X-Incidentd-Event", m.delivery.event.as_str());
            if let Some(secret) = m.delivery.secret.as_deref().filter(|s| !s.is_empty()) {
                req = req.header("X-Incidentd-Signature", signature(secret, &body));
            }
            let res = req
                .body(body)
                .send()
                .await
                .map_err(|e| transport_error("webhook", e))?;
            classify(res, "webhook").await?;
            Ok(None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
