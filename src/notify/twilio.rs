//! SMS and voice through a Twilio-compatible REST API.
//!
//! Messages go to `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` and calls to
//! `.../Calls.json`, form-encoded, with Basic auth `sid:auth_token`. A call carries TwiML
//! that reads the incident out and gathers one key press, posted to the daemon's callback;
//! the callback's `X-Twilio-Signature` is checked with [`signature`].

use base64::Engine;
use hmac::{KeyInit, Mac};

use super::{BoxFuture, Channel, Outbound, SendError, classify, transport_error};
use crate::config::TwilioConfig;
use crate::domain::notification::ChannelKind;

/// A Twilio account.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base: String,
    sid: String,
    token: String,
    from: String,
}

impl TwilioClient {
    /// A client for the configured account.
    pub fn new(http: reqwest::Client, c: &TwilioConfig) -> Self {
        Self {
            http,
            base: c.api_base_url.trim_end_matches('/').to_owned(),
            sid: c.account_sid.clone(),
            token: c.auth_token.clone(),
            from: c.from_number.clone(),
        }
    }

    async fn post(
        &self,
        resource: &str,
        form: &[(&str, &str)],
    ) -> Result<Option<String>, SendError> {
        let url = format!("{}/2010-04-01/Accounts/{}/{resource}", self.base, self.sid);
        let res = self
            .http
            .post(url)
            .basic_auth(&self.sid, Some(&self.token))
            .form(form)
            .send()
            .await
            .map_err(|e| transport_error("Twilio", e))?;
        let res = classify(res, "Twilio").await?;
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        Ok(body.get("sid").and_then(|s| s.as_str()).map(str::to_owned))
    }
}

/// Text messages.
pub struct SmsChannel(pub TwilioClient);

impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<Option<String>, SendError>> {
        Box::pin(async move {
            let body: String = m.rendered.body.chars().take(1600).collect();
            self.0
                .post(
                    "Messages.json",
                    &[
                        ("To", &m.delivery.target),
                        ("From", &self.0.from),
                        ("Body", &body),
                    ],
                )
                .await
        })
    }
}

/// Phone calls.
pub struct VoiceChannel(pub TwilioClient);

/// Escapes text for XML.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The TwiML of a call: say the message, gather one digit, 1 acknowledges.
pub fn twiml(say: &str, action: Option<&str>) -> String {
    let gather = match action {
        Some(url) => format!(
            "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"10\" action=\"{}\" method=\"POST\"><Say>{} Press 1 to acknowledge.</Say></Gather><Say>No input received. Goodbye.</Say>",
            xml(url),
            xml(say)
        ),
        None => format!("<Say>{}</Say>", xml(say)),
    };
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{gather}</Response>")
}

/// A TwiML answer that only speaks.
pub fn say(text: &str) -> String {
    twiml(text, None)
}

impl Channel for VoiceChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Voice
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<Option<String>, SendError>> {
        Box::pin(async move {
            let doc = twiml(&m.rendered.body, m.callback_url.as_deref());
            self.0
                .post(
                    "Calls.json",
                    &[
                        ("To", &m.delivery.target),
                        ("From", &self.0.from),
                        ("Twiml", &doc),
                        ("Timeout", "30"),
                    ],
                )
                .await
        })
    }
}

/// Twilio's request signature: base64 HMAC-SHA1, keyed by the auth token, over the full URL
/// followed by every POST parameter's name and value, sorted by name (a repeated name's
/// distinct values sorted, as Twilio's helper libraries do).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let sorted: std::collections::BTreeSet<&(String, String)> = params.iter().collect();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_documentation_example() {
        // The vectors of Twilio's helper libraries (RequestValidatorTest).
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = pairs(&[
            ("From", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(
            signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let repeated = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            signature("12345", url, &repeated),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
        assert_ne!(
            signature("12345", &format!("{url}&x=1"), &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn twiml_gathers_and_escapes() {
        let t = twiml("P1 <db> & co", Some("https://x/cb?a=1&b=2"));
        assert!(t.contains("numDigits=\"1\""));
        assert!(t.contains("action=\"https://x/cb?a=1&amp;b=2\""));
        assert!(t.contains("P1 &lt;db&gt; &amp; co Press 1 to acknowledge."));
    }
}
