//! The ITIL incident: its record, its lifecycle and the timestamps MTTA and MTTR need.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;
use super::priority::{Level, Priority};
use super::transition::Lifecycle;

/// Where an incident is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Opened, nobody has responded yet: escalation runs.
    New,
    /// Somebody owns it.
    Acknowledged,
    /// Being worked on.
    InProgress,
    /// Waiting on something outside the team.
    OnHold,
    /// Service restored; may reopen.
    Resolved,
    /// Confirmed resolved; final.
    Closed,
    /// Not an incident after all; final.
    Cancelled,
}

impl IncidentStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::InProgress => "in_progress",
            IncidentStatus::OnHold => "on_hold",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
            IncidentStatus::Cancelled => "cancelled",
        }
    }

    /// Stable one-byte code used in index keys.
    pub const fn code(self) -> u8 {
        match self {
            IncidentStatus::New => 1,
            IncidentStatus::Acknowledged => 2,
            IncidentStatus::InProgress => 3,
            IncidentStatus::OnHold => 4,
            IncidentStatus::Resolved => 5,
            IncidentStatus::Closed => 6,
            IncidentStatus::Cancelled => 7,
        }
    }

    /// Still needs attention: not resolved, closed or cancelled.
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::New
                | IncidentStatus::Acknowledged
                | IncidentStatus::InProgress
                | IncidentStatus::OnHold
        )
    }

    /// Somebody has responded: the states that count as acknowledged for MTTA.
    pub const fn counts_as_acknowledged(self) -> bool {
        matches!(
            self,
            IncidentStatus::Acknowledged | IncidentStatus::InProgress | IncidentStatus::OnHold
        )
    }

    /// Whether moving here needs `incident:close` rather than `incident:write`.
    pub const fn needs_close_permission(self) -> bool {
        matches!(self, IncidentStatus::Closed | IncidentStatus::Cancelled)
    }
}

impl Lifecycle for IncidentStatus {
    const ALL: &'static [Self] = &[
        IncidentStatus::New,
        IncidentStatus::Acknowledged,
        IncidentStatus::InProgress,
        IncidentStatus::OnHold,
        IncidentStatus::Resolved,
        IncidentStatus::Closed,
        IncidentStatus::Cancelled,
    ];

    fn successors(self) -> &'static [Self] {
        use IncidentStatus::*;
        match self {
            New => &[Acknowledged, InProgress, OnHold, Resolved, Cancelled],
            Acknowledged => &[InProgress, OnHold, Resolved, Cancelled],
            InProgress => &[OnHold, Resolved, Cancelled],
            OnHold => &[InProgress, Resolved, Cancelled],
            // Reopening: back to new (an alert fired again: page again) or straight to work.
            Resolved => &[New, Acknowledged, InProgress, Closed],
            Closed | Cancelled => &[],
        }
    }
}

/// An unknown status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be one of new, acknowledged, in_progress, on_hold, resolved, closed, cancelled (got '{0}')"
)]
pub struct UnknownStatus(pub String);

impl FromStr for IncidentStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        IncidentStatus::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incident as stored. New fields must be `#[serde(default)]` so that records written
/// by older versions still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// Id; displayed as `INC-<id>`.
    pub id: u64,
    /// One line.
    pub title: String,
    /// Details, free text.
    #[serde(default)]
    pub description: String,
    /// Lifecycle state.
    pub status: IncidentStatus,
    /// How much is affected.
    pub impact: Level,
    /// How fast it must be handled.
    pub urgency: Level,
    /// From the priority matrix.
    pub priority: Priority,
    /// The affected service.
    pub service_id: u64,
    /// The responsible person.
    #[serde(default)]
    pub assignee_id: Option<u64>,
    /// The responsible team.
    #[serde(default)]
    pub group_id: Option<u64>,
    /// Linked problems.
    #[serde(default)]
    pub problem_ids: Vec<u64>,
    /// Alerts attached by ingestion.
    #[serde(default)]
    pub alert_count: u64,
    /// Of those, how many are firing; when it drops to 0 the incident may auto-resolve.
    #[serde(default)]
    pub firing_alerts: u64,
    /// The integration whose alerts opened it.
    #[serde(default)]
    pub integration_id: Option<u64>,
    /// Who is paged for it.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Who opened it.
    pub created_by: ActorRef,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// First response (acknowledged, in progress or on hold); MTTA ends here.
    #[serde(default)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Resolved; MTTR ends here. Cleared when the incident reopens.
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Closed or cancelled.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// How many times it was reopened after being resolved.
    #[serde(default)]
    pub reopen_count: u32,
    /// Acknowledged and snoozed: at this time it goes back to `new` and pages again,
    /// unless it has moved on. Any status change ends the snooze.
    #[serde(default)]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Merged into that incident (its alerts went there) and resolved.
    #[serde(default)]
    pub merged_into: Option<u64>,
}

/// Longest snooze: a week (PagerDuty's longest is a day; a week covers a weekend plus a
/// holiday, and anything longer is a problem record, not a snooze).
pub const MAX_SNOOZE_MINUTES: u32 = 7 * 24 * 60;

/// Why an incident cannot be snoozed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnoozeError {
    /// Only an acknowledged incident can be snoozed: a `new` one must be acknowledged
    /// first (someone took it), one in progress or on hold is being handled, and an ended
    /// one has nothing to page for.
    #[error("only an acknowledged incident can be snoozed (it is {0})")]
    NotAcknowledged(IncidentStatus),
    /// The end of a snooze must be after its start.
    #[error("a snooze must end in the future")]
    NotInFuture,
}

/// What a new incident starts from; the rest of [`Incident`] starts empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// Id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Impact.
    pub impact: Level,
    /// Urgency.
    pub urgency: Level,
    /// Priority (from the matrix in force).
    pub priority: Priority,
    /// Service.
    pub service_id: u64,
    /// Who opened it.
    pub created_by: ActorRef,
    /// When.
    pub at: DateTime<Utc>,
}

impl Incident {
    /// A new incident: status `new`, nobody assigned, no alerts, problems or history.
    pub fn open(o: Opening) -> Incident {
        Incident {
            id: o.id,
            title: o.title,
            description: o.description,
            status: IncidentStatus::New,
            impact: o.impact,
            urgency: o.urgency,
            priority: o.priority,
            service_id: o.service_id,
            assignee_id: None,
            group_id: None,
            problem_ids: vec![],
            alert_count: 0,
            firing_alerts: 0,
            integration_id: None,
            escalation_policy_id: None,
            created_by: o.created_by,
            created_at: o.at,
            updated_at: o.at,
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            reopen_count: 0,
            snoozed_until: None,
            merged_into: None,
        }
    }

    /// How it is displayed: `INC-42`.
    pub fn number(&self) -> String {
        format!("INC-{}", self.id)
    }

    /// Moves to `to` at `at`, keeping the timestamps consistent. Does not check
    /// permissions; does check the lifecycle.
    pub fn apply_transition(
        &mut self,
        to: IncidentStatus,
        at: DateTime<Utc>,
    ) -> Result<(), super::transition::InvalidTransition> {
        self.status.check_move(to)?;
        let from = self.status;
        if to.counts_as_acknowledged() && self.acknowledged_at.is_none() {
            self.acknowledged_at = Some(at);
        }
        match to {
            IncidentStatus::Resolved => self.resolved_at = Some(at),
            IncidentStatus::Closed | IncidentStatus::Cancelled => self.closed_at = Some(at),
            _ => {}
        }
        if from == IncidentStatus::Resolved && to != IncidentStatus::Closed {
            // Reopened: it is no longer resolved. The first response stays what it was, so
            // MTTA counts every incident once.
            self.resolved_at = None;
            self.reopen_count += 1;
        }
        self.status = to;
        self.updated_at = at;
        self.snoozed_until = None;
        Ok(())
    }

    /// Snoozes an acknowledged incident until `until`: it stays acknowledged, and then
    /// goes back to `new` and pages again ([`Incident::wake`]) unless it moved on.
    /// Snoozing a snoozed incident moves its wake-up time.
    pub fn snooze(&mut self, until: DateTime<Utc>, at: DateTime<Utc>) -> Result<(), SnoozeError> {
        if self.status != IncidentStatus::Acknowledged {
            return Err(SnoozeError::NotAcknowledged(self.status));
        }
        if until <= at {
            return Err(SnoozeError::NotInFuture);
        }
        self.snoozed_until = Some(until);
        self.updated_at = at;
        Ok(())
    }

    /// Whether its snooze has run out at `now` (and it is still acknowledged).
    pub fn snooze_due(&self, now: DateTime<Utc>) -> bool {
        self.status == IncidentStatus::Acknowledged && self.snoozed_until.is_some_and(|u| u <= now)
    }

    /// Ends a snooze that has run out: back to `new`, the one way back from acknowledged
    /// (the responder asked to be paged again). `false`, and no change, if the snooze is
    /// not due.
    pub fn wake(&mut self, now: DateTime<Utc>) -> bool {
        if !self.snooze_due(now) {
            return false;
        }
        self.status = IncidentStatus::New;
        self.snoozed_until = None;
        self.updated_at = now;
        true
    }

    /// Seconds from opening to first response, if there was one.
    pub fn time_to_acknowledge(&self) -> Option<i64> {
        self.acknowledged_at
            .map(|at| (at - self.created_at).num_seconds().max(0))
    }

    /// Seconds from opening to resolution, if resolved.
    pub fn time_to_resolve(&self) -> Option<i64> {
        self.resolved_at
            .map(|at| (at - self.created_at).num_seconds().max(0))
    }
}

/// Parses `42`, `INC-42`, `inc-42` or `#42` into an id.
pub fn parse_incident_ref(s: &str) -> Option<u64> {
    parse_prefixed_id(s, "INC-")
}

/// Parses `<n>`, `<PREFIX><n>` (any case) or `#<n>` into a positive id.
pub fn parse_prefixed_id(s: &str, prefix: &str) -> Option<u64> {
    let s = s.trim();
    let digits = if let Some(rest) = s.strip_prefix('#') {
        rest
    } else if let Some(rest) = s
        .get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .and_then(|_| s.get(prefix.len()..))
    {
        rest
    } else {
        s
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ActorKind;
    use crate::domain::clock::at;
    use crate::domain::transition::testing::check_every_pair;
    use IncidentStatus::*;

    #[test]
    fn every_pair_of_the_lifecycle() {
        check_every_pair(&[
            (New, Acknowledged),
            (New, InProgress),
            (New, OnHold),
            (New, Resolved),
            (New, Cancelled),
            (Acknowledged, InProgress),
            (Acknowledged, OnHold),
            (Acknowledged, Resolved),
            (Acknowledged, Cancelled),
            (InProgress, OnHold),
            (InProgress, Resolved),
            (InProgress, Cancelled),
            (OnHold, InProgress),
            (OnHold, Resolved),
            (OnHold, Cancelled),
            (Resolved, New),
            (Resolved, Acknowledged),
            (Resolved, InProgress),
            (Resolved, Closed),
        ]);
        assert!(Closed.is_final());
        assert!(Cancelled.is_final());
        assert!(!Resolved.is_final());
    }

    #[test]
    fn statuses_parse_and_print() {
        for s in IncidentStatus::ALL {
            assert_eq!(s.as_str().parse::<IncidentStatus>(), Ok(*s));
            let json = serde_json::to_string(s).expect("serialize");
            assert_eq!(json, format!("\"{s}\""));
        }
        assert_eq!("In-Progress".parse::<IncidentStatus>(), Ok(InProgress));
        assert!("open".parse::<IncidentStatus>().is_err());
        let codes: std::collections::BTreeSet<u8> =
            IncidentStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), IncidentStatus::ALL.len());
    }

    fn incident() -> Incident {
        Incident {
            id: 7,
            title: "t".into(),
            description: String::new(),
            status: New,
            impact: Level::High,
            urgency: Level::High,
            priority: Priority::P1,
            service_id: 1,
            assignee_id: None,
            group_id: None,
            problem_ids: vec![],
            alert_count: 0,
            firing_alerts: 0,
            integration_id: None,
            escalation_policy_id: None,
            created_by: ActorRef {
                kind: ActorKind::System,
                id: 0,
                name: "system".into(),
            },
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            reopen_count: 0,
            snoozed_until: None,
            merged_into: None,
        }
    }

    #[test]
    fn timestamps_follow_the_lifecycle() {
        let mut i = incident();
        i.apply_transition(Acknowledged, at("2026-01-01T00:05:00Z"))
            .expect("ack");
        assert_eq!(i.time_to_acknowledge(), Some(300));
        i.apply_transition(InProgress, at("2026-01-01T00:06:00Z"))
            .expect("work");
        assert_eq!(i.time_to_acknowledge(), Some(300), "first response counts");
        i.apply_transition(Resolved, at("2026-01-01T01:00:00Z"))
            .expect("resolve");
        assert_eq!(i.time_to_resolve(), Some(3600));
        i.apply_transition(New, at("2026-01-01T02:00:00Z"))
            .expect("reopen");
        assert_eq!(i.resolved_at, None);
        assert_eq!(i.time_to_acknowledge(), Some(300), "first response is kept");
        assert_eq!(i.reopen_count, 1);
        i.apply_transition(Resolved, at("2026-01-01T03:00:00Z"))
            .expect("resolve again");
        i.apply_transition(Closed, at("2026-01-01T04:00:00Z"))
            .expect("close");
        assert_eq!(i.time_to_resolve(), Some(3 * 3600));
        assert_eq!(i.closed_at, Some(at("2026-01-01T04:00:00Z")));
        let err = i
            .apply_transition(New, at("2026-01-01T05:00:00Z"))
            .expect_err("closed is final");
        assert_eq!(err.to_string(), "cannot move from 'closed' to 'new'");
        let err = i
            .apply_transition(Closed, at("2026-01-01T05:00:00Z"))
            .expect_err("already closed");
        assert_eq!(err.to_string(), "it is already 'closed'");
    }

    #[test]
    fn only_an_acknowledged_incident_snoozes_and_wakes_back_to_new() {
        let t = |m: i64| at("2026-01-01T00:00:00Z") + chrono::Duration::minutes(m);
        let mut i = incident();
        assert_eq!(
            i.snooze(t(30), t(0)),
            Err(SnoozeError::NotAcknowledged(New))
        );
        i.apply_transition(Acknowledged, t(1)).expect("ack");
        assert_eq!(i.snooze(t(1), t(1)), Err(SnoozeError::NotInFuture));
        assert_eq!(i.snoozed_until, None, "a refused snooze changes nothing");
        i.snooze(t(31), t(1)).expect("snooze");
        assert_eq!((i.snoozed_until, i.updated_at), (Some(t(31)), t(1)));
        // Snoozing again moves the wake-up.
        i.snooze(t(61), t(2)).expect("snooze longer");
        assert!(!i.snooze_due(t(60)));
        assert!(!i.wake(t(60)), "not yet");
        assert_eq!(i.status, Acknowledged);
        assert!(i.wake(t(61)));
        assert_eq!(
            (i.status, i.snoozed_until, i.updated_at),
            (New, None, t(61))
        );
        assert_eq!(
            i.acknowledged_at,
            Some(t(1)),
            "the first response stays for MTTA"
        );
        assert!(!i.wake(t(62)), "once");

        // Any status change ends a snooze; nothing wakes then.
        for to in [InProgress, OnHold, Resolved, Cancelled] {
            let mut i = incident();
            i.apply_transition(Acknowledged, t(1)).expect("ack");
            i.snooze(t(31), t(1)).expect("snooze");
            i.apply_transition(to, t(2)).expect("move on");
            assert_eq!(i.snoozed_until, None, "{to}");
            assert!(!i.wake(t(40)), "{to}");
            assert_eq!(i.status, to);
        }
        for from in [InProgress, OnHold, Resolved] {
            let mut i = incident();
            i.apply_transition(from, t(1)).expect("move");
            assert_eq!(
                i.snooze(t(30), t(2)),
                Err(SnoozeError::NotAcknowledged(from))
            );
        }
    }

    #[test]
    fn resolving_without_response_leaves_no_ack_time() {
        let mut i = incident();
        i.apply_transition(Resolved, at("2026-01-01T00:10:00Z"))
            .expect("resolve");
        assert_eq!(i.time_to_acknowledge(), None);
        assert_eq!(i.time_to_resolve(), Some(600));
    }

    #[test]
    fn status_classes() {
        let open: Vec<_> = IncidentStatus::ALL
            .iter()
            .filter(|s| s.is_open())
            .copied()
            .collect();
        assert_eq!(open, [New, Acknowledged, InProgress, OnHold]);
        let acked: Vec<_> = IncidentStatus::ALL
            .iter()
            .filter(|s| s.counts_as_acknowledged())
            .copied()
            .collect();
        assert_eq!(acked, [Acknowledged, InProgress, OnHold]);
        let close: Vec<_> = IncidentStatus::ALL
            .iter()
            .filter(|s| s.needs_close_permission())
            .copied()
            .collect();
        assert_eq!(close, [Closed, Cancelled]);
        // Exactly the final states need the close permission.
        for s in IncidentStatus::ALL {
            assert_eq!(s.is_final(), s.needs_close_permission(), "{s}");
        }
    }

    #[test]
    fn first_response_is_any_working_state() {
        for first in [Acknowledged, InProgress, OnHold] {
            let mut i = incident();
            i.apply_transition(first, at("2026-01-01T00:07:00Z"))
                .expect("respond");
            assert_eq!(i.time_to_acknowledge(), Some(420), "{first}");
            assert_eq!(i.updated_at, at("2026-01-01T00:07:00Z"));
        }
    }

    #[test]
    fn cancelling_is_not_resolving() {
        let mut i = incident();
        i.apply_transition(Cancelled, at("2026-01-01T00:03:00Z"))
            .expect("cancel");
        assert_eq!(i.closed_at, Some(at("2026-01-01T00:03:00Z")));
        assert_eq!(i.time_to_resolve(), None);
        assert_eq!(i.time_to_acknowledge(), None);
        assert!(i.status.is_final());
    }

    #[test]
    fn a_refused_move_changes_nothing() {
        let mut i = incident();
        let before = i.clone();
        for to in [New, Closed] {
            let err = i
                .apply_transition(to, at("2026-01-01T00:05:00Z"))
                .expect_err("refused");
            assert_eq!(err.from, "new");
            assert_eq!(err.to, to.as_str());
            assert_eq!(i, before);
        }
    }

    #[test]
    fn incident_references() {
        assert_eq!(parse_incident_ref("42"), Some(42));
        assert_eq!(parse_incident_ref("INC-42"), Some(42));
        assert_eq!(parse_incident_ref("inc-42"), Some(42));
        assert_eq!(parse_incident_ref("#42"), Some(42));
        assert_eq!(parse_incident_ref(" 7 "), Some(7));
        for bad in [
            "", "0", "INC-", "INC-x", "-1", "4 2", "PRB-4", "#", "事件-1",
        ] {
            assert_eq!(parse_incident_ref(bad), None, "{bad}");
        }
    }
}
