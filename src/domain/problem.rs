//! ITIL problem management: the underlying cause of one or more incidents, its root-cause
//! analysis and, once a workaround is known, its entry in the known-error database.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;
use super::priority::{Level, Priority};
use super::transition::Lifecycle;

/// Where a problem is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProblemStatus {
    /// Recorded, not yet looked at.
    Open,
    /// Root-cause analysis under way.
    Investigating,
    /// Cause and workaround known; in the known-error database.
    KnownError,
    /// Permanently fixed; may reopen.
    Resolved,
    /// Done; final.
    Closed,
}

impl ProblemStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProblemStatus::Open => "open",
            ProblemStatus::Investigating => "investigating",
            ProblemStatus::KnownError => "known_error",
            ProblemStatus::Resolved => "resolved",
            ProblemStatus::Closed => "closed",
        }
    }

    /// Stable one-byte code used in index keys.
    pub const fn code(self) -> u8 {
        match self {
            ProblemStatus::Open => 1,
            ProblemStatus::Investigating => 2,
            ProblemStatus::KnownError => 3,
            ProblemStatus::Resolved => 4,
            ProblemStatus::Closed => 5,
        }
    }

    /// Not yet resolved or closed.
    pub const fn is_open(self) -> bool {
        matches!(
            self,
            ProblemStatus::Open | ProblemStatus::Investigating | ProblemStatus::KnownError
        )
    }
}

impl Lifecycle for ProblemStatus {
    const ALL: &'static [Self] = &[
        ProblemStatus::Open,
        ProblemStatus::Investigating,
        ProblemStatus::KnownError,
        ProblemStatus::Resolved,
        ProblemStatus::Closed,
    ];

    fn successors(self) -> &'static [Self] {
        use ProblemStatus::*;
        match self {
            Open => &[Investigating, KnownError, Resolved, Closed],
            Investigating => &[KnownError, Resolved, Closed],
            KnownError => &[Investigating, Resolved, Closed],
            Resolved => &[Investigating, Closed],
            Closed => &[],
        }
    }
}

/// An unknown status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of open, investigating, known_error, resolved, closed (got '{0}')")]
pub struct UnknownProblemStatus(pub String);

impl FromStr for ProblemStatus {
    type Err = UnknownProblemStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        ProblemStatus::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| UnknownProblemStatus(s.to_owned()))
    }
}

impl fmt::Display for ProblemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// Id; displayed as `PRB-<id>`.
    pub id: u64,
    /// One line.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub description: String,
    /// Lifecycle state.
    pub status: ProblemStatus,
    /// How much is affected, if assessed.
    #[serde(default)]
    pub impact: Option<Level>,
    /// How fast it must be fixed, if assessed.
    #[serde(default)]
    pub urgency: Option<Level>,
    /// From the matrix when both impact and urgency are set.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The affected service.
    #[serde(default)]
    pub service_id: Option<u64>,
    /// Who drives the analysis.
    #[serde(default)]
    pub assignee_id: Option<u64>,
    /// The root cause, once found.
    #[serde(default)]
    pub root_cause: Option<String>,
    /// What the problem affects and how badly (the impact analysis).
    #[serde(default)]
    pub impact_analysis: Option<String>,
    /// How to restore service until the fix lands; makes it a known error.
    #[serde(default)]
    pub workaround: Option<String>,
    /// Linked incidents.
    #[serde(default)]
    pub incident_ids: Vec<u64>,
    /// Who recorded it.
    pub created_by: ActorRef,
    /// Recorded.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// When it entered the known-error database.
    #[serde(default)]
    pub known_error_at: Option<DateTime<Utc>>,
    /// Resolved.
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Closed.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
}

/// Why a problem may not become a known error yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnownErrorRefused {
    /// A known error without a workaround helps nobody.
    #[error("a known error needs a workaround")]
    NoWorkaround,
}

impl Problem {
    /// How it is displayed: `PRB-7`.
    pub fn number(&self) -> String {
        format!("PRB-{}", self.id)
    }

    /// Moves to `to` at `at`: the lifecycle, the known-error rule and the timestamps.
    pub fn apply_transition(
        &mut self,
        to: ProblemStatus,
        at: DateTime<Utc>,
    ) -> Result<(), ProblemTransitionError> {
        self.status.check_move(to)?;
        if to == ProblemStatus::KnownError
            && self
                .workaround
                .as_deref()
                .is_none_or(|w| w.trim().is_empty())
        {
            return Err(KnownErrorRefused::NoWorkaround.into());
        }
        match to {
            ProblemStatus::KnownError => self.known_error_at = Some(at),
            ProblemStatus::Resolved => self.resolved_at = Some(at),
            ProblemStatus::Closed => self.closed_at = Some(at),
            // Back under investigation: neither fixed nor a known error (since when would
            // lie).
            ProblemStatus::Investigating => {
                self.resolved_at = None;
                self.known_error_at = None;
            }
            _ => {}
        }
        self.status = to;
        self.updated_at = at;
        Ok(())
    }

    /// Whether it belongs in the known-error database: its status is `known_error` (which
    /// needs a workaround). One definition for the database, the `known_error` flag, the
    /// status filter and the dashboard: a workaround recorded on a problem still under
    /// investigation is a field until the problem is moved to `known_error`.
    pub fn is_known_error(&self) -> bool {
        self.status == ProblemStatus::KnownError
    }
}

/// Why a problem transition failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemTransitionError {
    /// Not allowed by the lifecycle (409).
    #[error(transparent)]
    Lifecycle(#[from] super::transition::InvalidTransition),
    /// Allowed by the lifecycle but not by its rule (422).
    #[error(transparent)]
    KnownError(#[from] KnownErrorRefused),
}

/// Parses `7`, `PRB-7` or `#7`.
pub fn parse_problem_ref(s: &str) -> Option<u64> {
    super::incident::parse_prefixed_id(s, "PRB-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ActorKind;
    use crate::domain::clock::at;
    use crate::domain::transition::testing::check_every_pair;
    use ProblemStatus::*;

    #[test]
    fn every_pair_of_the_lifecycle() {
        check_every_pair(&[
            (Open, Investigating),
            (Open, KnownError),
            (Open, Resolved),
            (Open, Closed),
            (Investigating, KnownError),
            (Investigating, Resolved),
            (Investigating, Closed),
            (KnownError, Investigating),
            (KnownError, Resolved),
            (KnownError, Closed),
            (Resolved, Investigating),
            (Resolved, Closed),
        ]);
        assert!(Closed.is_final());
    }

    fn problem() -> Problem {
        Problem {
            id: 3,
            title: "db pool exhaustion".into(),
            description: String::new(),
            status: Open,
            impact: None,
            urgency: None,
            priority: None,
            service_id: None,
            assignee_id: None,
            root_cause: None,
            impact_analysis: None,
            workaround: None,
            incident_ids: vec![],
            created_by: ActorRef {
                kind: ActorKind::System,
                id: 0,
                name: "system".into(),
            },
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
            known_error_at: None,
            resolved_at: None,
            closed_at: None,
        }
    }

    #[test]
    fn known_error_needs_a_workaround() {
        let mut p = problem();
        assert_eq!(
            p.apply_transition(KnownError, at("2026-01-02T00:00:00Z")),
            Err(ProblemTransitionError::KnownError(
                KnownErrorRefused::NoWorkaround
            ))
        );
        p.workaround = Some("  ".into());
        assert!(
            p.apply_transition(KnownError, at("2026-01-02T00:00:00Z"))
                .is_err()
        );
        p.workaround = Some("restart the pool".into());
        assert!(!p.is_known_error(), "a workaround alone is a field");
        p.apply_transition(KnownError, at("2026-01-02T00:00:00Z"))
            .expect("known error");
        assert!(p.is_known_error());
        assert_eq!(p.known_error_at, Some(at("2026-01-02T00:00:00Z")));
        p.apply_transition(Resolved, at("2026-01-03T00:00:00Z"))
            .expect("resolve");
        assert!(!p.is_known_error());
        p.apply_transition(Investigating, at("2026-01-04T00:00:00Z"))
            .expect("reopen");
        assert_eq!(p.resolved_at, None);
        assert_eq!(
            p.known_error_at, None,
            "reopened: not a known error since then"
        );
        assert!(!p.is_known_error(), "reopened: under investigation again");
        p.apply_transition(KnownError, at("2026-01-04T12:00:00Z"))
            .expect("known error again");
        p.apply_transition(Investigating, at("2026-01-04T13:00:00Z"))
            .expect("back to investigating");
        assert_eq!(p.known_error_at, None, "no longer a known error");
        p.apply_transition(Closed, at("2026-01-05T00:00:00Z"))
            .expect("close");
        assert!(!p.is_known_error());
        let err = p
            .apply_transition(Open, at("2026-01-06T00:00:00Z"))
            .expect_err("final");
        assert_eq!(err.to_string(), "cannot move from 'closed' to 'open'");
    }

    #[test]
    fn refused_moves_change_nothing_and_close_stamps_the_time() {
        let mut p = problem();
        let before = p.clone();
        assert!(
            p.apply_transition(KnownError, at("2026-01-02T00:00:00Z"))
                .is_err()
        );
        assert_eq!(p, before, "the known-error rule leaves no trace");
        let err = p
            .apply_transition(Open, at("2026-01-02T00:00:00Z"))
            .expect_err("open -> open");
        assert!(matches!(err, ProblemTransitionError::Lifecycle(_)));
        assert_eq!(p, before);
        p.apply_transition(Closed, at("2026-01-03T00:00:00Z"))
            .expect("close");
        assert_eq!(p.closed_at, Some(at("2026-01-03T00:00:00Z")));
        assert_eq!(p.updated_at, at("2026-01-03T00:00:00Z"));
        assert!(!p.status.is_open());
        let open: Vec<_> = ProblemStatus::ALL
            .iter()
            .filter(|s| s.is_open())
            .copied()
            .collect();
        assert_eq!(open, [Open, Investigating, KnownError]);
    }

    #[test]
    fn statuses_parse() {
        for s in ProblemStatus::ALL {
            assert_eq!(s.as_str().parse::<ProblemStatus>(), Ok(*s));
        }
        assert_eq!("Known-Error".parse::<ProblemStatus>(), Ok(KnownError));
        assert!("new".parse::<ProblemStatus>().is_err());
        assert_eq!(parse_problem_ref("PRB-12"), Some(12));
        assert_eq!(parse_problem_ref("prb-12"), Some(12));
        assert_eq!(parse_problem_ref("INC-12"), None);
    }
}
