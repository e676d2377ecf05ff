//! E-mail over SMTP (lettre): plain, STARTTLS or TLS, with optional authentication.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{BoxFuture, Channel, Outbound, SendError};
use crate::config::EmailConfig;
use crate::domain::notification::ChannelKind;

/// The e-mail channel.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailChannel {
    /// Builds the SMTP transport from the configuration.
    pub fn new(config: &EmailConfig, timeout: Duration) -> Result<Self, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| format!("notify.email.smtp_url: {e}"))?
            .timeout(Some(timeout));
        if let (Some(user), Some(pass)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("notify.email.from: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<Option<String>, SendError>> {
        Box::pin(async move {
            let to = m.delivery.target.parse::<Mailbox>().map_err(|e| {
                SendError::Permanent(format!("bad address {}: {e}", m.delivery.target))
            })?;
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(
                    m.rendered
                        .subject
                        .clone()
                        .unwrap_or_else(|| "incidentd".into()),
                )
                .header(ContentType::TEXT_PLAIN)
                .message_id(Some(format!(
                    "<delivery-{}.{}@incidentd>",
                    m.delivery.id, m.delivery.event_seq
                )))
                .body(m.rendered.body.clone())
                .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
            match self.transport.send(message).await {
                Ok(response) => Ok(Some(response.message().collect::<Vec<_>>().join(" "))),
                Err(e) if e.is_permanent() => {
                    Err(SendError::Permanent(format!("SMTP refused: {e}")))
                }
                Err(e) => Err(SendError::transient(format!("SMTP: {e}"))),
            }
        })
    }
}
