//! Domain events: what happened, for whoever reacts to it (notifications, chat cards,
//! escalation, playbooks). They are appended to the store in the same transaction as the
//! change itself, so a consumer that keeps its cursor in the store never misses one.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;

macro_rules! event_kinds {
    ($( $variant:ident => $name:literal ),+ $(,)?) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
        pub enum EventKind { $( #[doc = $name] #[schema(rename = $name)] $variant, )+ }

        impl EventKind {
            /// Every kind.
            pub const ALL: &'static [EventKind] = &[ $( EventKind::$variant, )+ ];

            /// The wire name, `incident.opened`.
            pub const fn as_str(self) -> &'static str {
                match self { $( EventKind::$variant => $name, )+ }
            }
        }

        impl std::str::FromStr for EventKind {
            type Err = UnknownEventKind;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $( $name => Ok(EventKind::$variant), )+ _ => Err(UnknownEventKind(s.to_owned())) }
            }
        }
    };
}

event_kinds! {
    IncidentOpened => "incident.opened",
    IncidentAcknowledged => "incident.acknowledged",
    IncidentStatusChanged => "incident.status_changed",
    IncidentResolved => "incident.resolved",
    IncidentReopened => "incident.reopened",
    IncidentClosed => "incident.closed",
    IncidentUpdated => "incident.updated",
    IncidentAssigned => "incident.assigned",
    IncidentCommented => "incident.commented",
    IncidentEscalated => "incident.escalated",
    IncidentAlertsChanged => "incident.alerts_changed",
    IncidentPaged => "incident.paged",
    ProblemOpened => "problem.opened",
    ProblemUpdated => "problem.updated",
    ProblemStatusChanged => "problem.status_changed",
    ProblemKnownError => "problem.known_error",
    ProblemLinked => "problem.linked",
    ProblemUnlinked => "problem.unlinked",
    ApprovalRequested => "approval.requested",
    ApprovalApproved => "approval.approved",
    ApprovalRejected => "approval.rejected",
    ApprovalCancelled => "approval.cancelled",
    ApprovalExpired => "approval.expired",
}

/// An event name this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event '{0}'")]
pub struct UnknownEventKind(pub String);

impl EventKind {
    /// Whether it is about an incident (`incident.*`).
    pub fn is_incident(self) -> bool {
        self.as_str().starts_with("incident.")
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One thing that happened, as stored in the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DomainEvent {
    /// Position in the log; consumers remember the last one they handled.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: EventKind,
    /// Who caused it.
    pub actor: ActorRef,
    /// The incident it is about.
    #[serde(default)]
    pub incident_id: Option<u64>,
    /// The problem it is about.
    #[serde(default)]
    pub problem_id: Option<u64>,
    /// Specifics (`{"from": "new", "to": "acknowledged"}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_dotted() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(*k));
            assert!(k.as_str().contains('.'));
        }
        assert!("incident.exploded".parse::<EventKind>().is_err());
    }
}
