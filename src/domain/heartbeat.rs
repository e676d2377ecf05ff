//! Heartbeat monitors: a dead man's switch for whatever watches the systems.
//!
//! Alerts only arrive while the monitoring pipeline works. A heartbeat monitor expects a
//! ping at least every `interval_secs` (Alertmanager's always-firing Watchdog alert sent to
//! its URL, a cron job's `curl`); when one is late, incidentd opens an incident on its
//! service, and the next ping resolves it. As in GoAlert, a monitor that was never pinged
//! is inactive: creating one does not page anybody before the sender is set up.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Shortest interval: pings more often than this are a load test, not a heartbeat.
pub const MIN_INTERVAL_SECS: u64 = 60;
/// Longest interval: a week.
pub const MAX_INTERVAL_SECS: u64 = 7 * 86_400;

/// A heartbeat monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Heartbeat {
    /// Id.
    pub id: u64,
    /// Name (shown in the incident it opens).
    pub name: String,
    /// The service whose incident a missed heartbeat opens.
    pub service_id: u64,
    /// The longest silence that is still healthy, in seconds.
    pub interval_secs: u64,
    /// SHA-256 of the ping token (the token itself is shown once, this never).
    pub token_hash: String,
    /// The token's first characters, to tell tokens apart.
    pub token_hint: String,
    /// The last ping; `None` while the monitor was never pinged (inactive).
    #[serde(default)]
    pub last_ping_at: Option<DateTime<Utc>>,
    /// The incident the current silence opened, until the next ping.
    #[serde(default)]
    pub incident_id: Option<u64>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed (settings, not pings).
    pub updated_at: DateTime<Utc>,
}

/// Where a monitor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatState {
    /// Never pinged: nothing is expected yet.
    Inactive,
    /// Pinged within its interval.
    Healthy,
    /// Silent for longer than its interval.
    Expired,
}

impl HeartbeatState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            HeartbeatState::Inactive => "inactive",
            HeartbeatState::Healthy => "healthy",
            HeartbeatState::Expired => "expired",
        }
    }
}

/// What the checker must do about a monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing.
    Nothing,
    /// Open an incident: the monitor just expired.
    Open,
}

impl Heartbeat {
    /// `at` plus one interval (saturating).
    fn after_interval(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let interval = i64::try_from(self.interval_secs)
            .ok()
            .and_then(Duration::try_seconds)
            .unwrap_or(Duration::MAX);
        at.checked_add_signed(interval)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When it expires if no ping comes; `None` while inactive.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.last_ping_at.map(|at| self.after_interval(at))
    }

    /// Its state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> HeartbeatState {
        match self.deadline() {
            None => HeartbeatState::Inactive,
            Some(deadline) if now > deadline => HeartbeatState::Expired,
            Some(_) => HeartbeatState::Healthy,
        }
    }

    /// What a checker watching since `watching_since` (the daemon's start) must do at
    /// `now`: open an incident once per silence (one opened and then resolved by hand is
    /// not opened again before the next ping), and never for a silence the daemon caused
    /// by being down itself: after a start, senders get one interval to ping again.
    pub fn due(&self, now: DateTime<Utc>, watching_since: DateTime<Utc>) -> Due {
        let grace_over = now > self.after_interval(watching_since);
        match (self.state(now), self.incident_id) {
            (HeartbeatState::Expired, None) if grace_over => Due::Open,
            _ => Due::Nothing,
        }
    }

    /// Records a ping at `at`; the incident of the silence it ends, if any, to resolve.
    pub fn ping(&mut self, at: DateTime<Utc>) -> Option<u64> {
        self.last_ping_at = Some(self.last_ping_at.map_or(at, |last| last.max(at)));
        self.incident_id.take()
    }
}

/// Why an interval is refused, if it is.
pub fn check_interval(secs: u64) -> Result<(), String> {
    if (MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(format!(
            "must be between {MIN_INTERVAL_SECS} and {MAX_INTERVAL_SECS} seconds (a week)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::at;

    /// Since when a checker that has watched for a long time watches.
    fn long_ago() -> DateTime<Utc> {
        at("2020-01-01T00:00:00Z")
    }

    fn monitor() -> Heartbeat {
        Heartbeat {
            id: 1,
            name: "watchdog".into(),
            service_id: 1,
            interval_secs: 300,
            token_hash: String::new(),
            token_hint: String::new(),
            last_ping_at: None,
            incident_id: None,
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn a_monitor_never_pinged_expects_nothing() {
        let m = monitor();
        let much_later = at("2027-01-01T00:00:00Z");
        assert_eq!(m.state(much_later), HeartbeatState::Inactive);
        assert_eq!(m.due(much_later, long_ago()), Due::Nothing);
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn silence_past_the_interval_opens_one_incident_and_a_ping_ends_it() {
        let mut m = monitor();
        assert_eq!(m.ping(at("2026-01-01T10:00:00Z")), None);
        assert_eq!(m.deadline(), Some(at("2026-01-01T10:05:00Z")));
        assert_eq!(
            m.state(at("2026-01-01T10:05:00Z")),
            HeartbeatState::Healthy,
            "on the dot is in time"
        );
        assert_eq!(m.due(at("2026-01-01T10:05:00Z"), long_ago()), Due::Nothing);
        assert_eq!(m.state(at("2026-01-01T10:05:01Z")), HeartbeatState::Expired);
        assert_eq!(m.due(at("2026-01-01T10:05:01Z"), long_ago()), Due::Open);
        m.incident_id = Some(7);
        assert_eq!(
            m.due(at("2026-01-01T11:00:00Z"), long_ago()),
            Due::Nothing,
            "once per silence"
        );
        assert_eq!(
            m.ping(at("2026-01-01T11:00:00Z")),
            Some(7),
            "the ping resolves it"
        );
        assert_eq!(m.incident_id, None);
        assert_eq!(m.state(at("2026-01-01T11:00:00Z")), HeartbeatState::Healthy);
    }

    #[test]
    fn after_a_start_senders_get_one_interval_before_anything_opens() {
        let mut m = monitor();
        m.ping(at("2026-01-01T10:00:00Z"));
        // The daemon was down from 10:01 to 11:00: the monitor is expired at once, but the
        // silence is the daemon's own until 11:05.
        let started = at("2026-01-01T11:00:00Z");
        assert_eq!(m.state(started), HeartbeatState::Expired);
        assert_eq!(m.due(at("2026-01-01T11:05:00Z"), started), Due::Nothing);
        assert_eq!(m.due(at("2026-01-01T11:05:01Z"), started), Due::Open);
        // A ping in the grace makes it healthy again.
        m.ping(at("2026-01-01T11:02:00Z"));
        assert_eq!(m.due(at("2026-01-01T11:05:01Z"), started), Due::Nothing);
    }

    #[test]
    fn a_late_arriving_older_ping_does_not_move_the_deadline_back() {
        let mut m = monitor();
        m.ping(at("2026-01-01T10:00:00Z"));
        m.ping(at("2026-01-01T09:00:00Z"));
        assert_eq!(m.last_ping_at, Some(at("2026-01-01T10:00:00Z")));
    }

    #[test]
    fn intervals_are_bounded_and_huge_ones_do_not_overflow() {
        assert!(check_interval(59).is_err());
        assert!(check_interval(60).is_ok());
        assert!(check_interval(MAX_INTERVAL_SECS).is_ok());
        assert!(check_interval(MAX_INTERVAL_SECS + 1).is_err());
        let mut m = monitor();
        m.interval_secs = u64::MAX;
        m.ping(at("2026-01-01T10:00:00Z"));
        assert_eq!(m.state(at("2099-01-01T00:00:00Z")), HeartbeatState::Healthy);
    }
}
