//! A thin client for the Discord REST API calls incidentd makes: posting and editing
//! channel messages, opening a direct-message channel, overwriting the application's
//! slash commands, and editing an interaction's original answer (a deferred command's
//! result). The base URL is configurable so tests run against a fake on loopback.
//!
//! Errors are classified like every outbound channel's: 429 and 5xx are transient (with
//! Discord's `Retry-After`), other 4xx permanent.

use serde_json::Value;

use crate::notify::{SendError, classify, transport_error};

/// The client.
#[derive(Clone)]
pub struct DiscordApi {
    http: reqwest::Client,
    base: String,
    bot_token: String,
}

impl std::fmt::Debug for DiscordApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A message Discord created: where it is, to edit it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// The channel id.
    pub channel: String,
    /// The message id.
    pub message: String,
}

impl MessageRef {
    /// `channel|message`, as the outbox remembers a chat card.
    pub fn encode(&self) -> String {
        format!("{}|{}", self.channel, self.message)
    }

    /// The reverse of [`MessageRef::encode`].
    pub fn decode(s: &str) -> Option<MessageRef> {
        let (channel, message) = s.split_once('|')?;
        (!channel.is_empty() && !message.is_empty()).then(|| MessageRef {
            channel: channel.to_owned(),
            message: message.to_owned(),
        })
    }
}

impl DiscordApi {
    /// A client for `base` (such as `https://discord.com/api/v10`) with the bot token
    /// (empty: only interaction webhooks, which need none, can be called).
    pub fn new(http: reqwest::Client, base: &str, bot_token: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            bot_token: bot_token.to_owned(),
        }
    }

    /// Sends `body` to `path` with `method`; the answer's JSON (or `Null` for 204).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        bot: bool,
    ) -> Result<Value, SendError> {
        let what = format!("Discord {method} {}", redact_path(path));
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(body);
        if bot {
            req = req.header(
                reqwest::header::AUTHORIZATION,
                format!("Bot {}", self.bot_token),
            );
        }
        let res = req.send().await.map_err(|e| transport_error(&what, e))?;
        let res = classify(res, &what).await?;
        if res.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        res.json().await.map_err(|e| {
            SendError::transient(format!("{what}: unreadable answer: {}", e.without_url()))
        })
    }

    /// Posts a message to a channel.
    pub async fn post_message(&self, channel: &str, body: &Value) -> Result<MessageRef, SendError> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/channels/{channel}/messages"),
                body,
                true,
            )
            .await?;
        message_ref(&v, channel)
    }

    /// Replaces a message's content, embeds and components; `Ok(false)` if it is gone
    /// (404: someone deleted it), so that the caller can post it again.
    pub async fn edit_message(&self, at: &MessageRef, body: &Value) -> Result<bool, SendError> {
        match self
            .call(
                reqwest::Method::PATCH,
                &format!("/channels/{}/messages/{}", at.channel, at.message),
                body,
                true,
            )
            .await
        {
            Ok(_) => Ok(true),
            // `classify` words a refusal as "<what> answered <status>: <body>"; Discord's
            // body names Unknown Message as code 10008 (an unknown channel is another).
            Err(SendError::Permanent(e)) if e.contains(" answered 404 ") && e.contains("10008") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The direct-message channel with a user (Discord returns the existing one if any).
    pub async fn open_dm(&self, user: &str) -> Result<String, SendError> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/users/@me/channels",
                &serde_json::json!({"recipient_id": user}),
                true,
            )
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SendError::Permanent(format!("Discord gave no DM channel: {v}")))
    }

    /// Replaces the application's global slash commands (or one guild's) with `commands`;
    /// returns how many Discord now has.
    pub async fn overwrite_commands(
        &self,
        application_id: &str,
        guild_id: Option<&str>,
        commands: &Value,
    ) -> Result<usize, SendError> {
        let path = match guild_id {
            Some(g) => format!("/applications/{application_id}/guilds/{g}/commands"),
            None => format!("/applications/{application_id}/commands"),
        };
        let v = self
            .call(reqwest::Method::PUT, &path, commands, true)
            .await?;
        Ok(v.as_array().map_or(0, Vec::len))
    }

    /// Replaces the original answer of an interaction (after a deferred answer).
    pub async fn edit_original(
        &self,
        application_id: &str,
        interaction_token: &str,
        body: &Value,
    ) -> Result<(), SendError> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/webhooks/{application_id}/{interaction_token}/messages/@original"),
            body,
            false,
        )
        .await
        .map(drop)
    }
}

/// Where a created message is, from Discord's answer.
fn message_ref(v: &Value, channel: &str) -> Result<MessageRef, SendError> {
    let message = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| SendError::Permanent(format!("Discord gave no message id: {v}")))?;
    let channel = v
        .get("channel_id")
        .and_then(Value::as_str)
        .unwrap_or(channel);
    Ok(MessageRef {
        channel: channel.to_owned(),
        message: message.to_owned(),
    })
}

/// A path fit for an error message: an interaction token is a credential.
fn redact_path(path: &str) -> String {
    match path.strip_prefix("/webhooks/") {
        Some(rest) => {
            let app = rest.split('/').next().unwrap_or_default();
            format!("/webhooks/{app}/[token]/messages/@original")
        }
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_refs_round_trip() {
        let m = MessageRef {
            channel: "1".into(),
            message: "2".into(),
        };
        assert_eq!(MessageRef::decode(&m.encode()), Some(m));
        assert_eq!(MessageRef::decode("1|"), None);
        assert_eq!(MessageRef::decode("12"), None);
    }

    #[test]
    fn interaction_tokens_stay_out_of_errors() {
        assert_eq!(
            redact_path("/webhooks/42/secret-token/messages/@original"),
            "/webhooks/42/[token]/messages/@original"
        );
        assert_eq!(redact_path("/channels/1/messages"), "/channels/1/messages");
    }
}
