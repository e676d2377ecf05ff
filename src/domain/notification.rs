//! Notifications: contact methods, notification rules, deliveries and the rules of the
//! outbox (retry backoff with jitter, Retry-After, per-address rate limits).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::event::EventKind;
use super::priority::Priority;

/// What API answers show instead of a secret that is set.
pub const REDACTED_SECRET: &str = "[redacted]";

/// Replaces a secret with a marker that says one is set, for API answers.
pub fn redact_secret(secret: &mut Option<String>) {
    if secret.is_some() {
        *secret = Some(REDACTED_SECRET.to_owned());
    }
}

/// The secret a change leaves: `given`, unless it is absent or the marker an answer
/// showed (a client that reads, edits and writes back an object must not replace the
/// secret with the marker), in which case `stored` stays.
pub fn kept_secret(given: Option<&str>, stored: Option<&str>) -> Option<String> {
    match given {
        Some(s) if s != REDACTED_SECRET => Some(s.to_owned()),
        _ => stored.map(str::to_owned),
    }
}

/// Why `url` cannot be a webhook's address, if it cannot: an absolute http(s) URL with a
/// host, as the sender will parse it (a bad one would otherwise be retried until it gives up).
fn check_webhook_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("must be an http:// or https:// URL: {why}"));
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return bad("it starts with neither");
    }
    if url.contains(char::is_whitespace) {
        return bad("it contains white space");
    }
    match url::Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => bad("it names no host"),
        Err(e) => bad(&e.to_string()),
    }
}

/// A way to reach someone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// E-mail over SMTP.
    Email,
    /// Text message (Twilio-compatible API).
    Sms,
    /// Phone call reading the incident out (Twilio-compatible API).
    Voice,
    /// Slack message.
    Slack,
    /// Discord message.
    Discord,
    /// Signed JSON POST.
    Webhook,
}

impl ChannelKind {
    /// Every channel.
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Email,
        ChannelKind::Sms,
        ChannelKind::Voice,
        ChannelKind::Slack,
        ChannelKind::Discord,
        ChannelKind::Webhook,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Voice => "voice",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// Stable code for index keys.
    pub const fn code(self) -> u8 {
        match self {
            ChannelKind::Email => 1,
            ChannelKind::Sms => 2,
            ChannelKind::Voice => 3,
            ChannelKind::Slack => 4,
            ChannelKind::Discord => 5,
            ChannelKind::Webhook => 6,
        }
    }

    /// Channels that cost money and wake people: at most one message per address per rate
    /// window, bursts collapsed into one summary (as GoAlert does).
    pub const fn is_rate_limited(self) -> bool {
        matches!(self, ChannelKind::Sms | ChannelKind::Voice)
    }

    /// Why `address` is not an address of this channel, if it is not.
    pub fn check_address(self, address: &str) -> Result<(), String> {
        let a = address.trim();
        match self {
            ChannelKind::Email => super::identity::check_email(a).map_err(str::to_owned),
            ChannelKind::Sms | ChannelKind::Voice => {
                let digits = a.strip_prefix('+').unwrap_or("");
                if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(())
                } else {
                    Err("must be an E.164 phone number such as +15551234567".into())
                }
            }
            ChannelKind::Webhook => check_webhook_url(a),
            ChannelKind::Discord => {
                if is_discord_id(a) {
                    Ok(())
                } else {
                    Err("must be a Discord user id (digits, Developer Mode > Copy User ID)".into())
                }
            }
            ChannelKind::Slack => {
                if a.is_empty() || a.len() > 100 || a.contains(char::is_whitespace) {
                    Err("must be a user or channel id".into())
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Whether `s` is a Discord id (a "snowflake": a 64-bit number, at most 20 digits).
pub fn is_discord_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>().is_ok()
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!("must be one of email, sms, voice, slack, discord, webhook (got '{s}')")
            })
    }
}

/// A user's contact method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactMethod {
    /// Id.
    pub id: u64,
    /// Whose.
    pub user_id: u64,
    /// The channel.
    pub kind: ChannelKind,
    /// Address: e-mail, E.164 number, URL, or chat user id.
    pub address: String,
    /// A name for it ("work phone").
    #[serde(default)]
    pub label: String,
    /// For webhooks: the HMAC secret. Stored; the API clears it before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Disabled methods are skipped.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

fn yes() -> bool {
    true
}

/// Who a rule notifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Target {
    /// Every enabled contact method of a user.
    User {
        /// The user.
        id: u64,
    },
    /// Every enabled contact method of every member of a group.
    Group {
        /// The group.
        id: u64,
    },
    /// An e-mail address.
    Email {
        /// The address.
        address: String,
    },
    /// A phone number, by text message.
    Sms {
        /// E.164 number.
        number: String,
    },
    /// A phone number, by call.
    Voice {
        /// E.164 number.
        number: String,
    },
    /// A URL, by signed POST.
    Webhook {
        /// The URL.
        url: String,
        /// The HMAC-SHA256 secret. Stored; the API clears it before answering.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
}

/// Which events a rule applies to, beyond their kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuleFilter {
    /// Only incidents of these services (empty: any).
    pub service_ids: Vec<u64>,
    /// Only incidents at this priority or more urgent (P2 means P1 and P2).
    pub min_priority: Option<Priority>,
}

impl NotificationRule {
    /// The rule as the API shows it: webhook secrets redacted.
    pub fn redacted(mut self) -> Self {
        for t in &mut self.targets {
            if let Target::Webhook { secret, .. } = t {
                redact_secret(secret);
            }
        }
        self
    }
}

impl RuleFilter {
    /// Whether an incident of `service_id` at `priority` passes.
    pub fn accepts(&self, service_id: Option<u64>, priority: Option<Priority>) -> bool {
        let service_ok = self.service_ids.is_empty()
            || service_id.is_some_and(|s| self.service_ids.contains(&s));
        let priority_ok = match (self.min_priority, priority) {
            (None, _) => true,
            (Some(min), Some(p)) => p <= min,
            (Some(_), None) => false,
        };
        service_ok && priority_ok
    }
}

/// A notification rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotificationRule {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Off: matches nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The events it fires on.
    pub events: Vec<EventKind>,
    /// Narrowing.
    #[serde(default)]
    pub filter: RuleFilter,
    /// Who hears about it.
    pub targets: Vec<Target>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt.
    Pending,
    /// Delivered (or folded into a summary that was).
    Sent,
    /// The last attempt failed; another is scheduled.
    Failed,
    /// Given up: a permanent failure or too many attempts.
    Dead,
    /// Not sent because it was no longer wanted (a paging step due after the incident
    /// was acknowledged or resolved).
    Cancelled,
}

impl DeliveryStatus {
    /// Stable code for index keys.
    pub const fn code(self) -> u8 {
        match self {
            DeliveryStatus::Pending => 1,
            DeliveryStatus::Sent => 2,
            DeliveryStatus::Failed => 3,
            DeliveryStatus::Dead => 4,
            DeliveryStatus::Cancelled => 5,
        }
    }

    /// Whether the outbox still has work for it.
    pub const fn is_due_kind(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Failed)
    }
}

/// One message to one address, as the outbox and the delivery log keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Id.
    pub id: u64,
    /// The event that caused it.
    pub event_seq: u64,
    /// The event kind.
    pub event: EventKind,
    /// The rule that matched.
    #[serde(default)]
    pub rule_id: Option<u64>,
    /// The incident it is about.
    #[serde(default)]
    pub incident_id: Option<u64>,
    /// The channel.
    pub channel: ChannelKind,
    /// The address.
    pub target: String,
    /// The user reached, when known.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// For webhooks: the signing secret. Stored; the API clears it before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending and failed).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The provider's id for it (Twilio SID, SMTP response).
    #[serde(default)]
    pub provider_id: Option<String>,
    /// Another delivery that carried this one in a summary.
    #[serde(default)]
    pub collapsed_into: Option<u64>,
    /// Enqueued.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// Milliseconds from enqueue to delivery.
    #[serde(default)]
    pub latency_ms: Option<i64>,
}

impl Delivery {
    /// Whether it is a Slack or Discord message showing an incident (its card with
    /// buttons): one about an incident event. Other chat messages (an approval request
    /// about a linked incident) are text.
    pub fn shows_incident(&self) -> bool {
        matches!(self.channel, ChannelKind::Slack | ChannelKind::Discord)
            && self.incident_id.is_some()
            && self.event.is_incident()
    }

    /// Whether it is an incident's card in a channel: posted once per channel and edited
    /// as the incident changes. A page to a person is always a new message, so that it
    /// notifies them again.
    pub fn is_chat_card(&self) -> bool {
        self.shows_incident() && self.user_id.is_none()
    }
}

/// The longest a peer's `Retry-After` can hold a delivery back: a day. A peer asking for
/// more is tried again after a day, like one that asked for exactly that.
pub const MAX_PEER_WAIT: Duration = Duration::days(1);

/// How the outbox retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits about this long.
    pub base: Duration,
    /// No wait is longer.
    pub max: Duration,
    /// After this many attempts the delivery is dead.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::seconds(5),
            max: Duration::minutes(10),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failed attempts: exponential from `base`, capped,
    /// with jitter (`jitter` in [0, 1) spreads it over ±20%), never before `retry_after`
    /// (which counts up to [`MAX_PEER_WAIT`]).
    /// `None` when the attempts are used up.
    pub fn next_attempt(
        &self,
        now: DateTime<Utc>,
        attempts: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(30);
        let raw = self
            .base
            .num_milliseconds()
            .saturating_mul(1i64 << exp)
            .min(self.max.num_milliseconds());
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        let wait = Duration::milliseconds((raw as f64 * factor) as i64);
        let wait = retry_after.map_or(wait, |r| wait.max(r.min(MAX_PEER_WAIT)));
        Some(
            now.checked_add_signed(wait)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::at;

    #[test]
    fn the_redaction_marker_written_back_keeps_the_secret() {
        assert_eq!(
            kept_secret(Some("new"), Some("old")).as_deref(),
            Some("new")
        );
        assert_eq!(kept_secret(Some("new"), None).as_deref(), Some("new"));
        assert_eq!(kept_secret(None, Some("old")).as_deref(), Some("old"));
        assert_eq!(
            kept_secret(Some(REDACTED_SECRET), Some("old")).as_deref(),
            Some("old")
        );
        assert_eq!(kept_secret(Some(REDACTED_SECRET), None), None);
        assert_eq!(kept_secret(None, None), None);
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let now = at("2026-01-01T00:00:00Z");
        let mid = |attempts| {
            p.next_attempt(now, attempts, 0.5, None)
                .map(|t| (t - now).num_seconds())
        };
        assert_eq!(mid(1), Some(5));
        assert_eq!(mid(2), Some(10));
        assert_eq!(mid(3), Some(20));
        assert_eq!(mid(9), Some(600), "capped at 10 minutes");
        assert_eq!(mid(10), None, "attempts used up");
        let low = p.next_attempt(now, 1, 0.0, None).expect("retry");
        let high = p.next_attempt(now, 1, 0.999, None).expect("retry");
        assert_eq!((low - now).num_milliseconds(), 4000);
        assert!((high - now).num_milliseconds() > 5900 && (high - now).num_milliseconds() < 6000);
        let later = p
            .next_attempt(now, 1, 0.5, Some(Duration::seconds(120)))
            .expect("retry");
        assert_eq!((later - now).num_seconds(), 120);
        let sooner = p
            .next_attempt(now, 3, 0.5, Some(Duration::seconds(1)))
            .expect("retry");
        assert_eq!(
            (sooner - now).num_seconds(),
            20,
            "Retry-After never shortens the backoff"
        );
    }

    #[test]
    fn retry_after_is_capped_and_the_end_of_time_does_not_overflow() {
        let p = RetryPolicy::default();
        let now = at("2026-01-01T00:00:00Z");
        let capped = p
            .next_attempt(now, 1, 0.5, Some(Duration::MAX))
            .expect("retry");
        assert_eq!(capped - now, MAX_PEER_WAIT);
        let last = DateTime::<Utc>::MAX_UTC - Duration::seconds(1);
        assert_eq!(
            p.next_attempt(last, 1, 0.5, Some(MAX_PEER_WAIT)),
            Some(DateTime::<Utc>::MAX_UTC)
        );
    }

    #[test]
    fn filters() {
        let f = RuleFilter {
            service_ids: vec![2],
            min_priority: Some(Priority::P2),
        };
        assert!(f.accepts(Some(2), Some(Priority::P1)));
        assert!(f.accepts(Some(2), Some(Priority::P2)));
        assert!(!f.accepts(Some(2), Some(Priority::P3)));
        assert!(!f.accepts(Some(3), Some(Priority::P1)));
        assert!(!f.accepts(None, Some(Priority::P1)));
        assert!(RuleFilter::default().accepts(None, None));
    }

    #[test]
    fn addresses() {
        assert!(ChannelKind::Sms.check_address("+15558675310").is_ok());
        assert!(ChannelKind::Sms.check_address("15558675310").is_err());
        assert!(ChannelKind::Voice.check_address("+1555").is_err());
        assert!(ChannelKind::Email.check_address("a@b.co").is_ok());
        assert!(
            ChannelKind::Webhook
                .check_address("https://hooks.example.com/x")
                .is_ok()
        );
        assert!(ChannelKind::Webhook.check_address("ftp://x").is_err());
        for ok in [
            "http://127.0.0.1:8080/hook",
            "https://[::1]:443/x?y=1",
            "https://user:pw@hooks.example.com",
        ] {
            assert!(ChannelKind::Webhook.check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://[zz",
            "http://host:99999/",
            "http://",
            "http://a b/",
            "http://host:port/",
        ] {
            let why = ChannelKind::Webhook.check_address(bad);
            assert!(why.is_err(), "{bad}");
        }
        assert!(ChannelKind::Slack.check_address("U024BE7LH").is_ok());
        assert!(
            ChannelKind::Discord
                .check_address("1344444444444444444")
                .is_ok()
        );
        assert!(ChannelKind::Discord.check_address("U024BE7LH").is_err());
        assert!(
            ChannelKind::Discord
                .check_address("99999999999999999999")
                .is_err()
        );
        assert!(ChannelKind::Discord.check_address("").is_err());
        assert_eq!("SMS".parse::<ChannelKind>(), Ok(ChannelKind::Sms));
        assert!("fax".parse::<ChannelKind>().is_err());
    }

    #[test]
    fn targets_deserialize_by_kind() {
        let t: Vec<Target> = serde_json::from_str(r#"[{"kind":"user","id":3},{"kind":"webhook","url":"https://x","secret":"s"},{"kind":"sms","number":"+15551234567"}]"#).expect("parses");
        assert_eq!(t[0], Target::User { id: 3 });
        assert!(matches!(&t[1], Target::Webhook { secret: Some(s), .. } if s == "s"));
        assert!(serde_json::from_str::<Target>(r#"{"kind":"pager","id":1}"#).is_err());
    }
}
