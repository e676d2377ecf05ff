//! Multi-level approvals: a request (to close a P1, to roll back, to apply a problem's fix)
//! passes through the levels of a workflow in order; each level needs a number of
//! approvals from its approvers, one rejection anywhere ends it.
//!
//! A request keeps a copy of the workflow's levels as they were when it was made, so
//! editing a workflow never changes what a pending request needs. The rules (four eyes:
//! nobody approves their own request; one decision per person per level; only the
//! current level's approvers decide) live here, pure, so that the REST call and the chat
//! command apply exactly the same ones.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;

/// Most levels in a workflow.
pub const MAX_LEVELS: usize = 10;
/// Most approver entries on a level.
pub const MAX_APPROVERS: usize = 50;
/// Longest a workflow may let a request wait before it expires: 30 days.
pub const MAX_EXPIRY_MINUTES: u32 = 30 * 24 * 60;

/// Who may decide at a level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Approver {
    /// One user.
    User {
        /// User id.
        id: u64,
    },
    /// Any member of a group.
    Group {
        /// Group id.
        id: u64,
    },
}

/// One level of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalLevel {
    /// Name ("team lead", "change board").
    pub name: String,
    /// Who may decide.
    pub approvers: Vec<Approver>,
    /// Approvals needed to pass the level (default 1).
    #[serde(default = "one")]
    pub required: u32,
}

fn one() -> u32 {
    1
}

/// A configurable multi-level approval workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalWorkflow {
    /// Id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The levels, passed in order.
    pub levels: Vec<ApprovalLevel>,
    /// Minutes a request may wait for its decisions before it expires (none: it waits
    /// until decided or withdrawn). A change that waited that long is stale: whoever asked
    /// should ask again with what they know now.
    #[serde(default)]
    pub expires_after_minutes: Option<u32>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl ApprovalWorkflow {
    /// When a request made at `at` expires.
    pub fn expiry_of(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_after_minutes
            .map(|m| at + chrono::Duration::minutes(i64::from(m)))
    }
}

/// Why `expires_after_minutes` is not acceptable, if it is not.
pub fn check_expiry(minutes: Option<u32>) -> Option<String> {
    match minutes {
        Some(m) if m == 0 || m > MAX_EXPIRY_MINUTES => Some(format!(
            "must be between 1 and {MAX_EXPIRY_MINUTES} minutes (30 days), or null for never"
        )),
        _ => None,
    }
}

/// "90 minutes", "2 hours", "3 days": how long a request was given, for people.
pub fn wait_in_words(wait: chrono::Duration) -> String {
    const DAY: i64 = 24 * 60;
    let minutes = wait.num_minutes().max(0);
    let (n, unit) = match minutes {
        0 => (0, "minute"),
        m if m % DAY == 0 => (m / DAY, "day"),
        m if m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Where a request stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for decisions at `level`.
    Pending,
    /// Every level passed.
    Approved,
    /// Somebody rejected it.
    Rejected,
    /// Withdrawn by the requester.
    Cancelled,
    /// Nobody decided before its workflow's deadline.
    Expired,
}

impl ApprovalStatus {
    /// Stable one-byte code for index keys.
    pub const fn code(self) -> u8 {
        match self {
            ApprovalStatus::Pending => 1,
            ApprovalStatus::Approved => 2,
            ApprovalStatus::Rejected => 3,
            ApprovalStatus::Cancelled => 4,
            ApprovalStatus::Expired => 5,
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Cancelled => "cancelled",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// Every status, in code order.
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Cancelled,
        ApprovalStatus::Expired,
    ];

    /// The status named `s` on the wire.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Yes.
    Approve,
    /// No.
    Reject,
}

/// One person's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// The level it was made at (0-based).
    pub level: u32,
    /// Who.
    pub user_id: u64,
    /// Their username then.
    pub username: String,
    /// Approve or reject.
    pub decision: Verdict,
    /// Why.
    #[serde(default)]
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A request for approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRequest {
    /// Id (`APR-<id>`).
    pub id: u64,
    /// The workflow it follows.
    pub workflow_id: u64,
    /// Its name then.
    pub workflow_name: String,
    /// What is to be approved.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub description: String,
    /// The incident it is about.
    #[serde(default)]
    pub incident_id: Option<u64>,
    /// The problem it is about.
    #[serde(default)]
    pub problem_id: Option<u64>,
    /// Who asked.
    pub requested_by: ActorRef,
    /// The user who asked (nobody may approve their own request).
    #[serde(default)]
    pub requester_id: Option<u64>,
    /// Pending, approved, rejected, cancelled or expired.
    pub status: ApprovalStatus,
    /// The level waiting for decisions (0-based); the last one once decided.
    pub level: u32,
    /// The workflow's levels when the request was made.
    pub levels: Vec<ApprovalLevel>,
    /// Every decision, in order.
    pub decisions: Vec<Decision>,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Approved, rejected, cancelled or expired at.
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    /// When it expires if still pending (from the workflow's `expires_after_minutes`
    /// when it was made; none: never).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a user stands among a request's approvers, as the caller found it (it resolves
/// groups to people): what [`ApprovalRequest::decide`] needs to tell a stranger (403) from
/// an approver whose level another approver passed a moment earlier (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Among the current level's approvers.
    Approver,
    /// Not among them, but among an earlier level's.
    EarlierApprover,
    /// Among neither.
    Outsider,
}

/// Why a decision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The request is no longer pending.
    #[error("APR-{0} is already {1}")]
    NotPending(u64, &'static str),
    /// Four eyes.
    #[error("you may not decide on your own request")]
    OwnRequest,
    /// Not among the current level's approvers.
    #[error("you are not an approver of level {level} ('{name}') of APR-{id}")]
    NotAnApprover {
        /// Request id.
        id: u64,
        /// 1-based level.
        level: u32,
        /// Level name.
        name: String,
    },
    /// Not among the current level's approvers but among an earlier one's: the decision
    /// raced with the one that passed that level (a 409, not a 403: the user had the right).
    #[error(
        "APR-{id} has already moved on to level {level} ('{name}'), whose approvers decide now"
    )]
    LevelPassed {
        /// Request id.
        id: u64,
        /// 1-based current level.
        level: u32,
        /// Its name.
        name: String,
    },
    /// Already decided at this level.
    #[error("you have already decided on level {0} of APR-{1}")]
    AlreadyDecided(u32, u64),
    /// The request has no level to decide at.
    #[error("APR-{0} has no level left to decide at")]
    NoLevel(u64),
    /// Its deadline has passed: it expires, whatever the decision.
    #[error("APR-{0} has expired: its deadline passed before it was decided")]
    Overdue(u64),
    /// Its deadline has not passed yet.
    #[error("APR-{0} has not reached its deadline")]
    NotDue(u64),
}

/// What a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted; the level needs more approvals.
    Counted {
        /// Approvals so far at the level.
        approvals: u32,
        /// Needed.
        required: u32,
    },
    /// The level passed; the next one (0-based) now decides.
    NextLevel(u32),
    /// The last level passed.
    Approved,
    /// Rejected.
    Rejected,
}

impl ApprovalRequest {
    /// The number shown to people.
    pub fn number(&self) -> String {
        format!("APR-{}", self.id)
    }

    /// The level waiting for decisions.
    pub fn current_level(&self) -> Option<&ApprovalLevel> {
        self.levels.get(self.level as usize)
    }

    /// Approvals given so far at the current level.
    pub fn approvals_at_level(&self) -> u32 {
        self.decisions
            .iter()
            .filter(|d| d.level == self.level && d.decision == Verdict::Approve)
            .count() as u32
    }

    /// Records `user`'s decision at `at`. `standing` says where the user is among the
    /// levels' approvers (the caller resolves groups).
    pub fn decide(
        &mut self,
        user_id: u64,
        username: &str,
        standing: Standing,
        verdict: Verdict,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Outcome, DecisionError> {
        if self.status != ApprovalStatus::Pending {
            return Err(DecisionError::NotPending(self.id, self.status.as_str()));
        }
        if self.is_overdue(at) {
            return Err(DecisionError::Overdue(self.id));
        }
        if self.requester_id == Some(user_id) {
            return Err(DecisionError::OwnRequest);
        }
        let level = self.level;
        let Some(current) = self.current_level().cloned() else {
            // Workflows without levels are refused, so this cannot happen; never approve
            // without a decision by an approver.
            return Err(DecisionError::NoLevel(self.id));
        };
        match standing {
            Standing::Approver => {}
            Standing::EarlierApprover => {
                return Err(DecisionError::LevelPassed {
                    id: self.id,
                    level: level + 1,
                    name: current.name,
                });
            }
            Standing::Outsider => {
                return Err(DecisionError::NotAnApprover {
                    id: self.id,
                    level: level + 1,
                    name: current.name,
                });
            }
        }
        if self
            .decisions
            .iter()
            .any(|d| d.level == level && d.user_id == user_id)
        {
            return Err(DecisionError::AlreadyDecided(level + 1, self.id));
        }
        self.decisions.push(Decision {
            level,
            user_id,
            username: username.to_owned(),
            decision: verdict,
            comment,
            at,
        });
        self.updated_at = at;
        if verdict == Verdict::Reject {
            self.status = ApprovalStatus::Rejected;
            self.decided_at = Some(at);
            return Ok(Outcome::Rejected);
        }
        let approvals = self.approvals_at_level();
        let required = current.required.max(1);
        if approvals < required {
            return Ok(Outcome::Counted {
                approvals,
                required,
            });
        }
        if (level as usize) + 1 < self.levels.len() {
            self.level += 1;
            Ok(Outcome::NextLevel(self.level))
        } else {
            self.status = ApprovalStatus::Approved;
            self.decided_at = Some(at);
            Ok(Outcome::Approved)
        }
    }

    /// Withdraws a pending request (not past its deadline: it expires instead).
    pub fn cancel(&mut self, at: DateTime<Utc>) -> Result<(), DecisionError> {
        if self.is_overdue(at) {
            return Err(DecisionError::Overdue(self.id));
        }
        self.close(ApprovalStatus::Cancelled, at)
    }

    /// Whether somebody may still decide on it at `now` (pending, deadline not passed).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Pending && !self.is_overdue(now)
    }

    /// Whether it is pending past its deadline at `now` (and so must expire: no decision
    /// counts any more, see [`ApprovalRequest::decide`]).
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == ApprovalStatus::Pending && self.expires_at.is_some_and(|e| now >= e)
    }

    /// Ends a pending request whose deadline has passed.
    pub fn expire(&mut self, at: DateTime<Utc>) -> Result<(), DecisionError> {
        if self.status == ApprovalStatus::Pending && !self.is_overdue(at) {
            return Err(DecisionError::NotDue(self.id));
        }
        self.close(ApprovalStatus::Expired, at)
    }

    /// Ends a pending request as `status` at `at`.
    fn close(&mut self, status: ApprovalStatus, at: DateTime<Utc>) -> Result<(), DecisionError> {
        if self.status != ApprovalStatus::Pending {
            return Err(DecisionError::NotPending(self.id, self.status.as_str()));
        }
        self.status = status;
        self.decided_at = Some(at);
        self.updated_at = at;
        Ok(())
    }
}

/// Reads an approval id: `12`, `APR-12` or `#12`.
pub fn parse_approval_ref(s: &str) -> Option<u64> {
    super::incident::parse_prefixed_id(s, "APR-")
}

/// Why a workflow's levels are not acceptable: `(field, reason)` pairs.
pub fn check_levels(levels: &[ApprovalLevel]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if levels.is_empty() {
        out.push(("levels".into(), "at least one level is needed".into()));
    }
    if levels.len() > MAX_LEVELS {
        out.push(("levels".into(), format!("at most {MAX_LEVELS} levels")));
    }
    for (i, l) in levels.iter().enumerate() {
        if l.name.trim().is_empty() || l.name.chars().count() > 100 {
            out.push((format!("levels[{i}].name"), "1 to 100 characters".into()));
        }
        if l.approvers.is_empty() || l.approvers.len() > MAX_APPROVERS {
            out.push((
                format!("levels[{i}].approvers"),
                format!("1 to {MAX_APPROVERS} approvers"),
            ));
        }
        let users = l
            .approvers
            .iter()
            .filter(|a| matches!(a, Approver::User { .. }))
            .count();
        let has_group = l
            .approvers
            .iter()
            .any(|a| matches!(a, Approver::Group { .. }));
        if l.required == 0 || l.required as usize > MAX_APPROVERS {
            out.push((
                format!("levels[{i}].required"),
                format!("must be between 1 and {MAX_APPROVERS}"),
            ));
        } else if !has_group && l.required as usize > users {
            out.push((
                format!("levels[{i}].required"),
                format!(
                    "needs {} approvals but names only {users} approver(s)",
                    l.required
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (j, a) in l.approvers.iter().enumerate() {
            if !seen.insert(*a) {
                out.push((format!("levels[{i}].approvers[{j}]"), "listed twice".into()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ActorKind;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
            .single()
            .expect("t")
            + chrono::Duration::minutes(min)
    }

    fn level(name: &str, users: &[u64], required: u32) -> ApprovalLevel {
        ApprovalLevel {
            name: name.into(),
            approvers: users.iter().map(|id| Approver::User { id: *id }).collect(),
            required,
        }
    }

    fn request(levels: Vec<ApprovalLevel>) -> ApprovalRequest {
        ApprovalRequest {
            id: 7,
            workflow_id: 1,
            workflow_name: "change".into(),
            title: "Roll back payments to v41".into(),
            description: String::new(),
            incident_id: Some(3),
            problem_id: None,
            requested_by: ActorRef {
                kind: ActorKind::User,
                id: 1,
                name: "rita".into(),
            },
            requester_id: Some(1),
            status: ApprovalStatus::Pending,
            level: 0,
            levels,
            decisions: vec![],
            created_at: t(0),
            updated_at: t(0),
            decided_at: None,
            expires_at: None,
        }
    }

    fn approve(r: &mut ApprovalRequest, user: u64) -> Result<Outcome, DecisionError> {
        r.decide(
            user,
            "u",
            Standing::Approver,
            Verdict::Approve,
            None,
            t(user as i64),
        )
    }

    #[test]
    fn levels_pass_in_order_until_approved() {
        let mut r = request(vec![
            level("lead", &[2, 3], 1),
            level("board", &[4, 5, 6], 2),
        ]);
        assert_eq!(approve(&mut r, 2), Ok(Outcome::NextLevel(1)));
        assert_eq!(
            approve(&mut r, 4),
            Ok(Outcome::Counted {
                approvals: 1,
                required: 2
            })
        );
        assert_eq!(r.status, ApprovalStatus::Pending);
        assert_eq!(approve(&mut r, 6), Ok(Outcome::Approved));
        assert_eq!(r.status, ApprovalStatus::Approved);
        assert_eq!(r.decided_at, Some(t(6)));
        assert_eq!(r.decisions.len(), 3);
        assert_eq!(
            approve(&mut r, 5),
            Err(DecisionError::NotPending(7, "approved"))
        );
    }

    #[test]
    fn one_rejection_ends_it_at_any_level() {
        let mut r = request(vec![level("lead", &[2], 1), level("board", &[4, 5], 2)]);
        approve(&mut r, 2).expect("level 1");
        approve(&mut r, 4).expect("one of two");
        let out = r.decide(
            5,
            "eve",
            Standing::Approver,
            Verdict::Reject,
            Some("not now".into()),
            t(9),
        );
        assert_eq!(out, Ok(Outcome::Rejected));
        assert_eq!(r.status, ApprovalStatus::Rejected);
        assert_eq!(r.decisions[2].comment.as_deref(), Some("not now"));
        assert!(r.cancel(t(10)).is_err());
    }

    #[test]
    fn four_eyes_eligibility_and_one_decision_per_level() {
        let mut r = request(vec![
            level("lead", &[1, 2, 3], 2),
            level("board", &[2, 4], 1),
        ]);
        assert_eq!(approve(&mut r, 1), Err(DecisionError::OwnRequest));
        assert_eq!(
            r.decide(
                9,
                "mallory",
                Standing::Outsider,
                Verdict::Approve,
                None,
                t(1)
            ),
            Err(DecisionError::NotAnApprover {
                id: 7,
                level: 1,
                name: "lead".into()
            })
        );
        approve(&mut r, 2).expect("first");
        assert_eq!(approve(&mut r, 2), Err(DecisionError::AlreadyDecided(1, 7)));
        assert_eq!(approve(&mut r, 3), Ok(Outcome::NextLevel(1)));
        // The same person may decide again at a later level.
        assert_eq!(approve(&mut r, 2), Ok(Outcome::Approved));
        // Refused decisions were not recorded.
        assert_eq!(r.decisions.len(), 3);
    }

    #[test]
    fn an_approver_of_a_passed_level_is_told_it_passed() {
        let mut r = request(vec![level("lead", &[2, 3], 1), level("board", &[4], 1)]);
        assert_eq!(approve(&mut r, 2), Ok(Outcome::NextLevel(1)));
        // 3 clicked at the same moment as 2: too late, but not a stranger.
        let late = r.decide(
            3,
            "u",
            Standing::EarlierApprover,
            Verdict::Approve,
            None,
            t(3),
        );
        assert_eq!(
            late,
            Err(DecisionError::LevelPassed {
                id: 7,
                level: 2,
                name: "board".into()
            })
        );
        assert_eq!(r.decisions.len(), 1);
        assert_eq!(r.level, 1);
    }

    #[test]
    fn cancelling_is_for_pending_requests_only() {
        let mut r = request(vec![level("lead", &[2], 1)]);
        r.cancel(t(1)).expect("pending");
        assert_eq!(r.status, ApprovalStatus::Cancelled);
        assert_eq!(
            approve(&mut r, 2),
            Err(DecisionError::NotPending(7, "cancelled"))
        );
        assert_eq!(
            r.cancel(t(2)),
            Err(DecisionError::NotPending(7, "cancelled"))
        );
    }

    #[test]
    fn level_checks_name_each_bad_field() {
        let fields = |levels: Vec<ApprovalLevel>| -> Vec<String> {
            check_levels(&levels).into_iter().map(|(f, _)| f).collect()
        };
        assert!(fields(vec![level("lead", &[1], 1)]).is_empty());
        assert_eq!(fields(vec![]), vec!["levels"]);
        assert_eq!(
            fields(vec![level(" ", &[], 0)]),
            vec![
                "levels[0].name",
                "levels[0].approvers",
                "levels[0].required"
            ]
        );
        assert_eq!(
            fields(vec![level("x", &[1, 2], 3)]),
            vec!["levels[0].required"]
        );
        let mut group = level("x", &[1], 3);
        group.approvers.push(Approver::Group { id: 5 });
        assert!(
            fields(vec![group]).is_empty(),
            "a group may hold enough people"
        );
        assert_eq!(
            fields(vec![level("x", &[1, 1], 1)]),
            vec!["levels[0].approvers[1]"]
        );
        assert_eq!(
            fields(vec![level("x", &[1], 1); MAX_LEVELS + 1]),
            vec!["levels"]
        );
        let parsed: ApprovalLevel =
            serde_json::from_str(r#"{"name":"lead","approvers":[{"type":"group","id":2}]}"#)
                .expect("level");
        assert_eq!(parsed.required, 1, "one approval by default");
    }

    #[test]
    fn a_request_expires_only_once_its_deadline_has_passed() {
        let mut r = request(vec![level("lead", &[2, 3], 1)]);
        assert!(!r.is_overdue(t(10_000)), "no deadline: never overdue");
        assert_eq!(r.expire(t(10_000)), Err(DecisionError::NotDue(7)));
        r.expires_at = Some(t(60));
        assert!(!r.is_overdue(t(59)));
        assert_eq!(r.expire(t(59)), Err(DecisionError::NotDue(7)));
        assert_eq!(r.status, ApprovalStatus::Pending);
        assert!(r.is_overdue(t(60)), "due at the deadline itself");
        r.expire(t(61)).expect("due");
        assert_eq!(r.status, ApprovalStatus::Expired);
        assert_eq!(r.decided_at, Some(t(61)));
        assert_eq!(r.updated_at, t(61));
        assert!(!r.is_overdue(t(62)), "no longer pending");
        assert_eq!(
            r.expire(t(62)),
            Err(DecisionError::NotPending(7, "expired"))
        );
        assert_eq!(
            r.cancel(t(62)),
            Err(DecisionError::NotPending(7, "expired"))
        );
    }

    #[test]
    fn no_decision_counts_once_the_deadline_has_passed() {
        let mut r = request(vec![level("lead", &[2, 3], 2)]);
        r.expires_at = Some(t(60));
        assert_eq!(
            r.decide(2, "u", Standing::Approver, Verdict::Approve, None, t(59)),
            Ok(Outcome::Counted {
                approvals: 1,
                required: 2
            })
        );
        for verdict in [Verdict::Approve, Verdict::Reject] {
            assert_eq!(
                r.decide(3, "u", Standing::Approver, verdict, None, t(60)),
                Err(DecisionError::Overdue(7))
            );
        }
        assert_eq!(r.decisions.len(), 1, "the late decisions are not recorded");
        assert_eq!(
            r.cancel(t(61)),
            Err(DecisionError::Overdue(7)),
            "nor a withdrawal"
        );
        assert_eq!(r.status, ApprovalStatus::Pending, "the checker expires it");
        assert!(r.is_open(t(59)) && !r.is_open(t(60)));
    }

    #[test]
    fn a_decided_or_withdrawn_request_does_not_expire() {
        for end in [ApprovalStatus::Approved, ApprovalStatus::Cancelled] {
            let mut r = request(vec![level("lead", &[2], 1)]);
            r.expires_at = Some(t(60));
            match end {
                ApprovalStatus::Approved => {
                    approve(&mut r, 2).expect("approved");
                }
                _ => r.cancel(t(5)).expect("withdrawn"),
            }
            assert!(!r.is_overdue(t(120)));
            assert_eq!(
                r.expire(t(120)),
                Err(DecisionError::NotPending(7, end.as_str()))
            );
        }
    }

    #[test]
    fn expiry_settings_are_one_minute_to_thirty_days() {
        assert_eq!(check_expiry(None), None);
        assert_eq!(check_expiry(Some(1)), None);
        assert_eq!(check_expiry(Some(MAX_EXPIRY_MINUTES)), None);
        assert!(check_expiry(Some(0)).is_some());
        assert!(check_expiry(Some(MAX_EXPIRY_MINUTES + 1)).is_some());
        let w = ApprovalWorkflow {
            id: 1,
            name: "change".into(),
            description: String::new(),
            levels: vec![level("lead", &[2], 1)],
            expires_after_minutes: Some(90),
            created_at: t(0),
            updated_at: t(0),
        };
        assert_eq!(w.expiry_of(t(10)), Some(t(100)));
        let never = ApprovalWorkflow {
            expires_after_minutes: None,
            ..w
        };
        assert_eq!(never.expiry_of(t(10)), None);
    }

    #[test]
    fn statuses_round_trip_through_their_wire_names_and_codes() {
        let mut codes = std::collections::BTreeSet::new();
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
            assert!(codes.insert(s.code()), "codes are distinct");
        }
        assert_eq!(ApprovalStatus::parse("Pending"), None);
    }

    #[test]
    fn records_stored_before_expiry_existed_still_load() {
        let mut old = serde_json::to_value(request(vec![level("lead", &[2], 1)])).expect("json");
        old.as_object_mut().expect("object").remove("expires_at");
        let r: ApprovalRequest = serde_json::from_value(old).expect("old request");
        assert_eq!(r.expires_at, None);
    }

    #[test]
    fn waits_read_in_the_largest_whole_unit() {
        let words = |m: i64| wait_in_words(chrono::Duration::minutes(m));
        assert_eq!(words(1), "1 minute");
        assert_eq!(words(90), "90 minutes");
        assert_eq!(words(60), "1 hour");
        assert_eq!(words(120), "2 hours");
        assert_eq!(words(24 * 60), "1 day");
        assert_eq!(words(3 * 24 * 60), "3 days");
        assert_eq!(words(25 * 60), "25 hours");
        assert_eq!(words(0), "0 minutes");
        assert_eq!(words(-5), "0 minutes");
        assert_eq!(
            wait_in_words(chrono::Duration::seconds(119)),
            "1 minute",
            "whole minutes"
        );
    }
}
