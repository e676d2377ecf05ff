//! Escalation policies: who is paged while an incident stays unacknowledged, and when the
//! next level is paged if nobody responds.
//!
//! The semantics are PagerDuty's and GoAlert's: level 1 is paged when the incident opens;
//! if nobody acknowledges it within that level's delay, level 2 is paged, and so on; after
//! the last level's delay the policy starts over from level 1, `repeat` more times, and
//! then stops. Acknowledging, resolving or closing the incident stops it; reopening starts
//! it again from level 1.
//!
//! Everything here is pure: a run ([`EscalationRun`]) is a value that the store keeps per
//! incident (`app::escalation`) and the engine moves forward when it falls due
//! (`engine::escalation`), so the timer survives a restart and can be tested on a clock
//! that only moves when told to.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most levels in one policy.
pub const MAX_STEPS: usize = 20;
/// Most targets on one level.
pub const MAX_TARGETS: usize = 20;
/// Most extra rounds through the whole policy.
pub const MAX_REPEAT: u32 = 9;
/// Longest wait before the next level: one day.
pub const MAX_DELAY_MINUTES: u32 = 1440;

/// Who a level pages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EscalationTarget {
    /// One user, on every enabled contact method.
    User {
        /// User id.
        id: u64,
    },
    /// Every active member of a group.
    Group {
        /// Group id.
        id: u64,
    },
    /// Whoever a schedule has on call when the level is paged.
    Schedule {
        /// Schedule id.
        id: u64,
    },
}

/// One level of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Minutes to wait after paging this level before paging the next one (1..=1440).
    pub delay_minutes: u32,
    /// Who is paged (1..=20).
    pub targets: Vec<EscalationTarget>,
}

/// An escalation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EscalationPolicy {
    /// Id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The levels, paged in order.
    pub steps: Vec<EscalationStep>,
    /// Extra rounds through all levels once the last one went unanswered (0..=9).
    #[serde(default)]
    pub repeat: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A place in a policy: a level (0-based `step`) in a round (0 is the first pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Position {
    /// Index into the policy's steps (level `step + 1`).
    pub step: u32,
    /// 0 on the first pass, then one per repeat.
    pub round: u32,
}

impl Position {
    /// Level 1 of the first pass.
    pub const START: Position = Position { step: 0, round: 0 };
}

/// Why the levels and repeat count of a policy are not acceptable: `(field, reason)` pairs.
pub fn check_steps(steps: &[EscalationStep], repeat: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if steps.is_empty() {
        out.push(("steps".into(), "at least one level is needed".into()));
    }
    if steps.len() > MAX_STEPS {
        out.push(("steps".into(), format!("at most {MAX_STEPS} levels")));
    }
    for (i, s) in steps.iter().enumerate() {
        if !(1..=MAX_DELAY_MINUTES).contains(&s.delay_minutes) {
            out.push((
                format!("steps[{i}].delay_minutes"),
                format!("must be between 1 and {MAX_DELAY_MINUTES}"),
            ));
        }
        if s.targets.is_empty() {
            out.push((
                format!("steps[{i}].targets"),
                "at least one target is needed".into(),
            ));
        }
        if s.targets.len() > MAX_TARGETS {
            out.push((
                format!("steps[{i}].targets"),
                format!("at most {MAX_TARGETS} targets"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (j, t) in s.targets.iter().enumerate() {
            if !seen.insert(*t) {
                out.push((format!("steps[{i}].targets[{j}]"), "listed twice".into()));
            }
        }
    }
    if repeat > MAX_REPEAT {
        out.push((
            "repeat".into(),
            format!("must be between 0 and {MAX_REPEAT}"),
        ));
    }
    out
}

impl EscalationPolicy {
    /// Where `p` really is in this policy: itself, or (when the policy lost levels since
    /// `p` was planned) level 1 of the next round, or nowhere once the rounds are used up.
    pub fn resolve(&self, p: Position) -> Option<Position> {
        if (p.step as usize) < self.steps.len() {
            Some(p)
        } else if p.round < self.repeat && !self.steps.is_empty() {
            Some(Position {
                step: 0,
                round: p.round + 1,
            })
        } else {
            None
        }
    }

    /// The place paged after `p`, or `None` when `p` was the last level of the last round.
    pub fn after(&self, p: Position) -> Option<Position> {
        self.resolve(Position {
            step: p.step + 1,
            round: p.round,
        })
    }

    /// How long `p`'s level waits before the next one is paged.
    pub fn delay_of(&self, p: Position) -> Duration {
        let minutes = self
            .steps
            .get(p.step as usize)
            .map_or(1, |s| s.delay_minutes.max(1));
        Duration::minutes(i64::from(minutes))
    }

    /// The targets of `p`'s level (none if the policy has no such level).
    pub fn targets_of(&self, p: Position) -> &[EscalationTarget] {
        self.steps
            .get(p.step as usize)
            .map_or(&[], |s| s.targets.as_slice())
    }
}

/// Where an incident's escalation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The next level will be paged at `due_at`.
    Active,
    /// Somebody responded (or the incident ended): nothing more is paged by itself.
    Stopped,
    /// Every level of every round was paged.
    Exhausted,
}

/// The escalation of one incident: the timer the store keeps and the engine advances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscalationRun {
    /// The incident.
    pub incident_id: u64,
    /// The policy it follows.
    pub policy_id: u64,
    /// Active, stopped or exhausted.
    pub state: RunState,
    /// The place paged next.
    pub next: Position,
    /// When `next` is paged, while active.
    pub due_at: Option<DateTime<Utc>>,
    /// The place paged last.
    pub last_paged: Option<Position>,
    /// Levels paged so far.
    pub pages: u32,
    /// When the run (re)started.
    pub started_at: DateTime<Utc>,
}

impl EscalationRun {
    /// A run that pages level 1 at `now`.
    pub fn start(incident_id: u64, policy_id: u64, now: DateTime<Utc>) -> Self {
        Self {
            incident_id,
            policy_id,
            state: RunState::Active,
            next: Position::START,
            due_at: Some(now),
            last_paged: None,
            pages: 0,
            started_at: now,
        }
    }

    /// Whether the engine should page now.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.state == RunState::Active && self.due_at.is_some_and(|d| d <= now)
    }

    /// Stops the timer (acknowledged, resolved, closed, or the policy is gone).
    pub fn stop(&mut self) {
        if self.state == RunState::Active {
            self.state = RunState::Stopped;
        }
        self.due_at = None;
    }

    /// Records that `paged` was paged at `now` and reached nobody (nobody on call, nobody
    /// active on it): the next level of the same round is due at once instead of after
    /// this one's delay, as PagerDuty moves past an escalation rule with nobody on it, so
    /// that an empty level never leaves an incident unpaged for its whole delay. The next
    /// round still waits the last level's delay: a round that reached nobody is not
    /// repeated in a burst, and a shift about to start gets its time to begin.
    pub fn paged_nobody(&mut self, policy: &EscalationPolicy, paged: Position, now: DateTime<Utc>) {
        self.paged(policy, paged, now);
        if self.state == RunState::Active && self.due_at.is_some() && self.next.round == paged.round
        {
            self.due_at = Some(now);
        }
    }

    /// The place an escalation at `now` pages: the planned next level while there is one,
    /// else the policy's last level again (somebody asked for more help and there is
    /// nobody further up). `None` if the policy has no levels.
    pub fn to_page(&self, policy: &EscalationPolicy) -> Option<Position> {
        match policy.resolve(self.next) {
            Some(p) if self.state != RunState::Exhausted => Some(p),
            _ => {
                let last = u32::try_from(policy.steps.len().checked_sub(1)?).ok()?;
                Some(Position {
                    step: last,
                    round: self.last_paged.map_or(0, |l| l.round),
                })
            }
        }
    }

    /// Records that `paged` was paged at `now`, and plans what follows: while active, the
    /// next level after `paged`'s delay, or exhaustion after the last level of the last
    /// round. A stopped run stays stopped (a manual escalation pages once).
    pub fn paged(&mut self, policy: &EscalationPolicy, paged: Position, now: DateTime<Utc>) {
        self.last_paged = Some(paged);
        self.pages += 1;
        match policy.after(paged) {
            Some(next) => {
                self.next = next;
                if self.state == RunState::Active {
                    self.due_at = Some(now + policy.delay_of(paged));
                }
            }
            None => {
                self.state = RunState::Exhausted;
                self.due_at = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0)
            .single()
            .expect("t0")
    }

    fn step(delay_minutes: u32, users: &[u64]) -> EscalationStep {
        EscalationStep {
            delay_minutes,
            targets: users
                .iter()
                .map(|id| EscalationTarget::User { id: *id })
                .collect(),
        }
    }

    fn policy(steps: Vec<EscalationStep>, repeat: u32) -> EscalationPolicy {
        EscalationPolicy {
            id: 1,
            name: "ops".into(),
            description: String::new(),
            steps,
            repeat,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn pos(step: u32, round: u32) -> Position {
        Position { step, round }
    }

    /// Drives a run to the end, returning (position, minutes after start) of every page.
    fn pages(p: &EscalationPolicy) -> Vec<(Position, i64)> {
        let mut run = EscalationRun::start(7, 1, t0());
        let mut out = Vec::new();
        while let Some(due) = run.due_at {
            assert!(run.is_due(due) && !run.is_due(due - Duration::milliseconds(1)));
            let at = run.to_page(p).expect("a level");
            out.push((at, (due - t0()).num_minutes()));
            run.paged(p, at, due);
            assert!(out.len() < 1000, "never ends");
        }
        assert_eq!(run.state, RunState::Exhausted);
        out
    }

    #[test]
    fn levels_are_paged_in_order_after_each_levels_delay() {
        let p = policy(vec![step(5, &[1]), step(10, &[2]), step(15, &[3])], 0);
        assert_eq!(
            pages(&p),
            vec![(pos(0, 0), 0), (pos(1, 0), 5), (pos(2, 0), 15)]
        );
    }

    #[test]
    fn repeat_starts_over_after_the_last_levels_delay() {
        let p = policy(vec![step(5, &[1]), step(10, &[2])], 2);
        assert_eq!(
            pages(&p),
            vec![
                (pos(0, 0), 0),
                (pos(1, 0), 5),
                (pos(0, 1), 15),
                (pos(1, 1), 20),
                (pos(0, 2), 30),
                (pos(1, 2), 35),
            ]
        );
    }

    #[test]
    fn a_single_level_without_repeat_pages_once() {
        let p = policy(vec![step(30, &[1])], 0);
        assert_eq!(pages(&p), vec![(pos(0, 0), 0)]);
    }

    #[test]
    fn a_level_that_reached_nobody_is_followed_at_once() {
        let p = policy(vec![step(30, &[1]), step(10, &[2]), step(15, &[3])], 1);
        let mut run = EscalationRun::start(7, 1, t0());
        run.paged_nobody(&p, pos(0, 0), t0());
        assert_eq!((run.next, run.due_at), (pos(1, 0), Some(t0())));
        assert!(run.is_due(t0()));
        run.paged(&p, pos(1, 0), t0());
        assert_eq!(run.due_at, Some(t0() + Duration::minutes(10)));
        // Nobody anywhere: the round's levels at once, then the last level's delay before
        // the next round, whose levels again follow at once; then the run ends.
        let mut run = EscalationRun::start(7, 1, t0());
        let mut now = t0();
        let mut pages = Vec::new();
        while let Some(due) = run.due_at {
            now = now.max(due);
            let at = run.to_page(&p).expect("a level");
            run.paged_nobody(&p, at, now);
            pages.push((at, (now - t0()).num_minutes()));
        }
        assert_eq!(
            pages,
            vec![
                (pos(0, 0), 0),
                (pos(1, 0), 0),
                (pos(2, 0), 0),
                (pos(0, 1), 15),
                (pos(1, 1), 15),
                (pos(2, 1), 15),
            ]
        );
        assert_eq!(run.state, RunState::Exhausted);
        // A stopped run (a manual escalation) gets no timer from it.
        let mut run = EscalationRun::start(7, 1, t0());
        run.stop();
        run.paged_nobody(&p, pos(0, 0), t0());
        assert_eq!((run.state, run.due_at), (RunState::Stopped, None));
    }

    #[test]
    fn stopping_ends_the_timer_and_keeps_the_place() {
        let p = policy(vec![step(5, &[1]), step(10, &[2])], 0);
        let mut run = EscalationRun::start(7, 1, t0());
        run.paged(&p, pos(0, 0), t0());
        run.stop();
        assert_eq!(run.state, RunState::Stopped);
        assert_eq!(run.due_at, None);
        assert!(!run.is_due(t0() + Duration::days(1)));
        // A manual escalation of a stopped run pages the next level once, no timer.
        let at = run.to_page(&p).expect("level 2");
        assert_eq!(at, pos(1, 0));
        run.paged(&p, at, t0() + Duration::minutes(1));
        assert_eq!(run.state, RunState::Exhausted);
        assert_eq!(run.due_at, None);
        assert_eq!(run.pages, 2);
    }

    #[test]
    fn a_manual_escalation_of_a_stopped_run_never_starts_the_timer() {
        let p = policy(vec![step(5, &[1]), step(10, &[2]), step(10, &[3])], 1);
        let mut run = EscalationRun::start(7, 1, t0());
        run.stop();
        let at = run.to_page(&p).expect("level 1");
        assert_eq!(at, pos(0, 0));
        run.paged(&p, at, t0());
        assert_eq!(
            (run.state, run.due_at, run.next),
            (RunState::Stopped, None, pos(1, 0))
        );
    }

    #[test]
    fn escalating_an_active_run_pages_the_next_level_and_restarts_its_delay() {
        let p = policy(vec![step(5, &[1]), step(10, &[2]), step(15, &[3])], 0);
        let mut run = EscalationRun::start(7, 1, t0());
        run.paged(&p, pos(0, 0), t0());
        let now = t0() + Duration::minutes(2);
        let at = run.to_page(&p).expect("level 2");
        run.paged(&p, at, now);
        assert_eq!(at, pos(1, 0));
        assert_eq!(run.due_at, Some(now + Duration::minutes(10)));
        assert_eq!(run.next, pos(2, 0));
    }

    #[test]
    fn an_exhausted_run_escalates_to_the_last_level_again() {
        let p = policy(vec![step(5, &[1]), step(10, &[2])], 0);
        let mut run = EscalationRun::start(7, 1, t0());
        run.paged(&p, pos(0, 0), t0());
        run.paged(&p, pos(1, 0), t0());
        assert_eq!(run.state, RunState::Exhausted);
        assert_eq!(run.to_page(&p), Some(pos(1, 0)));
        run.paged(&p, pos(1, 0), t0());
        assert_eq!(run.state, RunState::Exhausted);
        assert_eq!(run.due_at, None);
    }

    #[test]
    fn a_policy_that_lost_levels_continues_with_the_next_round_or_ends() {
        let long = policy(vec![step(5, &[1]), step(5, &[2]), step(5, &[3])], 1);
        let mut run = EscalationRun::start(7, 1, t0());
        run.paged(&long, pos(0, 0), t0());
        run.paged(&long, pos(1, 0), t0());
        assert_eq!(run.next, pos(2, 0));
        // The policy is cut to two levels while level 3 is pending.
        let short = policy(vec![step(5, &[1]), step(5, &[2])], 1);
        assert_eq!(run.to_page(&short), Some(pos(0, 1)));
        let no_repeat = policy(vec![step(5, &[1]), step(5, &[2])], 0);
        assert_eq!(no_repeat.resolve(pos(2, 0)), None);
        assert_eq!(
            run.to_page(&no_repeat),
            Some(pos(1, 0)),
            "the last level again"
        );
        let empty = policy(vec![], 3);
        assert_eq!(empty.resolve(pos(0, 0)), None);
        assert_eq!(run.to_page(&empty), None);
        assert!(empty.targets_of(pos(0, 0)).is_empty());
    }

    #[test]
    fn delays_are_whole_minutes_and_never_zero() {
        let p = policy(vec![step(0, &[1]), step(1440, &[2])], 0);
        assert_eq!(p.delay_of(pos(0, 0)), Duration::minutes(1));
        assert_eq!(p.delay_of(pos(1, 0)), Duration::minutes(1440));
        assert_eq!(p.delay_of(pos(9, 0)), Duration::minutes(1));
    }

    #[test]
    fn timers_are_absolute_instants_across_a_dst_change() {
        // 2026-03-29 01:00 UTC is when Europe moves its clocks forward: a 60-minute delay
        // is still 60 minutes of real time (the store keeps UTC instants).
        let p = policy(vec![step(60, &[1]), step(60, &[2])], 0);
        let mut run = EscalationRun::start(7, 1, t0());
        run.paged(&p, pos(0, 0), t0());
        assert_eq!(run.due_at, Some(t0() + Duration::hours(1)));
    }

    #[test]
    fn the_checks_name_each_bad_field() {
        let fields = |steps: Vec<EscalationStep>, repeat| -> Vec<String> {
            check_steps(&steps, repeat)
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        assert_eq!(fields(vec![step(5, &[1])], 0), Vec::<String>::new());
        assert_eq!(fields(vec![], 0), vec!["steps"]);
        assert_eq!(
            fields(vec![step(0, &[1]), step(1441, &[])], 10),
            vec![
                "steps[0].delay_minutes",
                "steps[1].delay_minutes",
                "steps[1].targets",
                "repeat"
            ]
        );
        assert_eq!(
            fields(vec![step(5, &[1, 2, 1])], 0),
            vec!["steps[0].targets[2]"]
        );
        let many: Vec<u64> = (0..=MAX_TARGETS as u64).collect();
        assert_eq!(fields(vec![step(5, &many)], 0), vec!["steps[0].targets"]);
        let levels = vec![step(5, &[1]); MAX_STEPS + 1];
        assert_eq!(fields(levels, MAX_REPEAT), vec!["steps"]);
    }

    #[test]
    fn targets_read_as_tagged_objects() {
        let t: Vec<EscalationTarget> =
            serde_json::from_str(r#"[{"type":"user","id":3},{"type":"group","id":4}]"#)
                .expect("targets");
        assert_eq!(
            t,
            vec![
                EscalationTarget::User { id: 3 },
                EscalationTarget::Group { id: 4 }
            ]
        );
        assert!(serde_json::from_str::<EscalationTarget>(r#"{"type":"team","id":3}"#).is_err());
        assert!(
            serde_json::from_str::<EscalationTarget>(r#"{"type":"user","id":3,"x":1}"#).is_err()
        );
    }
}
