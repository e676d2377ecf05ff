//! Discord messages: incident cards posted once per channel and edited in place, and pages
//! to people as direct messages (a `discord` contact method holds the person's Discord
//! user id; the DM channel is opened on each send, which Discord answers with the existing
//! one). Rate limits (429 with Retry-After) come back as transient failures, so the outbox
//! retries them.

use serde_json::Value;

use super::{BoxFuture, Channel, Outbound, SendError};
use crate::chat::discord::api::{DiscordApi, MessageRef};
use crate::domain::notification::ChannelKind;

/// The Discord channel.
pub struct DiscordChannel {
    api: DiscordApi,
}

impl DiscordChannel {
    /// A channel posting with `api` (which carries the bot token).
    pub fn new(api: DiscordApi) -> Self {
        Self { api }
    }
}

impl Channel for DiscordChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<Option<String>, SendError>> {
        Box::pin(async move {
            let message: Value = serde_json::from_str(&m.rendered.body)
                .map_err(|e| SendError::Permanent(format!("bad Discord message: {e}")))?;
            if let Some(at) = m.update_ref.as_deref().and_then(MessageRef::decode) {
                if self.api.edit_message(&at, &message).await? {
                    return Ok(Some(at.encode()));
                }
                // The card was deleted in Discord: post it again (its new place is
                // remembered for the next edit).
                tracing::info!(channel = %at.channel, "a Discord card was deleted; posting it again");
            }
            // A person's contact method names them; a card's target is a channel.
            let channel = match m.delivery.user_id {
                Some(_) => self.api.open_dm(&m.delivery.target).await?,
                None => m.delivery.target.clone(),
            };
            let at = self.api.post_message(&channel, &message).await?;
            Ok(Some(at.encode()))
        })
    }
}
