//! Slack messages: incident cards posted once per channel and updated in place, and plain
//! messages for other events. Rate limits (429 with Retry-After, `ratelimited`) come back
//! as transient failures, so the outbox retries them.

use serde_json::Value;

use super::{BoxFuture, Channel, Outbound, SendError};
use crate::chat::slack::api::SlackApi;
use crate::domain::notification::ChannelKind;

/// The Slack channel.
pub struct SlackChannel {
    api: SlackApi,
}

impl SlackChannel {
    /// A channel posting with `api`.
    pub fn new(api: SlackApi) -> Self {
        Self { api }
    }
}

impl Channel for SlackChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Slack
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<Option<String>, SendError>> {
        Box::pin(async move {
            let message: Value = serde_json::from_str(&m.rendered.body)
                .map_err(|e| SendError::Permanent(format!("bad Slack message: {e}")))?;
            let text = message
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let blocks = message
                .get("blocks")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            if let Some((channel, ts)) = m.update_ref.as_deref().and_then(|r| r.split_once('|')) {
                if self.api.update(channel, ts, text, &blocks).await? {
                    return Ok(Some(format!("{channel}|{ts}")));
                }
                // The card was deleted in Slack: post it again (its new place is
                // remembered for the next update) rather than leave the channel without it.
                tracing::info!(channel, "a Slack card was deleted; posting it again");
            }
            let (channel, ts) = self
                .api
                .post_message(&m.delivery.target, text, &blocks, None)
                .await?;
            Ok(Some(format!("{channel}|{ts}")))
        })
    }
}
