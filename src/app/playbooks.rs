//! Running triage playbooks (`domain::playbook`): loading them from their directory,
//! reading what a playbook looks at from the store, and carrying out its steps through
//! the same use cases as the REST API, as the playbook's own actor (so the timeline and
//! the audit log name it). `engine::playbooks` decides when.
//!
//! A step that fails (a 409 because somebody already moved the incident, a user who no
//! longer exists) stops that playbook for that incident, and the reason is left as a
//! comment on the incident, where the responders look.
//!
//! After every step the runner stores how far it got ([`Progress`]), so that a crash in
//! the middle of a playbook resumes with the step in flight rather than from the first
//! one: a step is done at least once, and only the one a crash interrupted may be done
//! twice.

use std::collections::BTreeMap;
use std::path::Path;

use crate::app::incidents::{self, Assignment, IncidentPatch, NewComment, TransitionRequest};
use crate::app::{App, AppError, AppResult};
use crate::domain::actor::Actor;
use crate::domain::event::EventKind;
use crate::domain::incident::{Incident, Opening};
use crate::domain::playbook::{self, Facts, Playbook, Step};
use crate::domain::priority::{Level, Priority, PriorityMatrix};
use crate::domain::service::Service;
use crate::store::access::{self, Reader};
use crate::store::{StoreError, tables};

/// How far the runner got with the playbooks one event set off, so that a restart after
/// a crash neither runs a finished playbook again nor starts a half-done one over. Kept
/// in the store after every step; it means nothing once the runner's cursor is past
/// `event_seq`. Playbooks are known by name (ignoring case, as their uniqueness is), not
/// by their place in the directory, which may change between the crash and the restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The event whose playbooks run.
    pub event_seq: u64,
    /// The playbooks done with the event (all steps, or stopped by a failing one).
    #[serde(default)]
    pub finished: Vec<String>,
    /// The playbook half done, if any.
    #[serde(default)]
    pub running: Option<Running>,
}

/// A playbook half done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Running {
    /// Its name.
    pub playbook: String,
    /// The index of its first step not done yet.
    pub next_step: usize,
    /// [`steps_digest`] of its steps then: a playbook edited since resumes nowhere.
    pub steps_digest: String,
}

/// What to do with a playbook for the event of a [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Not started: run it if its conditions hold.
    Start,
    /// Half done: go on at this step (its conditions held when it started; its own steps
    /// may have changed what they look at since).
    At(usize),
    /// Finished, or half done and edited since (where to go on is unknowable; repeating
    /// its steps is worse than leaving them): leave it.
    Skip,
}

/// The META key of the runner's [`Progress`].
const PROGRESS_KEY: &[u8] = b"playbooks/progress";

/// A digest of a playbook's steps as they are now.
pub fn steps_digest(playbook: &Playbook) -> String {
    let steps = serde_json::to_string(&playbook.spec.steps).unwrap_or_default();
    crate::auth::secret::sha256_hex(&steps)
}

impl Progress {
    /// Nothing done yet for the event `event_seq`.
    pub fn of(event_seq: u64) -> Self {
        Self {
            event_seq,
            ..Self::default()
        }
    }

    /// The progress stored by the last step, if any.
    pub fn load(r: &impl Reader) -> Result<Option<Progress>, StoreError> {
        access::get_json(r, tables::META, PROGRESS_KEY)
    }

    /// Stores it (durably, like every write: it is what a restart resumes from).
    pub fn save(&self, tx: &redb::WriteTransaction) -> Result<(), StoreError> {
        access::put_json(tx, tables::META, PROGRESS_KEY, self)
    }

    /// What to do with `playbook` now.
    pub fn resume(&self, playbook: &Playbook) -> Resume {
        let name = playbook.name();
        if self.finished.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            return Resume::Skip;
        }
        match &self.running {
            Some(r) if r.playbook.eq_ignore_ascii_case(name) => {
                if r.steps_digest == steps_digest(playbook) {
                    Resume::At(r.next_step)
                } else {
                    Resume::Skip
                }
            }
            _ => Resume::Start,
        }
    }

    /// Records that `playbook` did its steps before `next_step`; finished if that is all
    /// of them or `stopped`.
    fn record(&mut self, playbook: &Playbook, next_step: usize, stopped: bool) {
        if stopped || next_step >= playbook.spec.steps.len() {
            self.running = None;
            self.finished.push(playbook.name().to_owned());
        } else {
            self.running = Some(Running {
                playbook: playbook.name().to_owned(),
                next_step,
                steps_digest: steps_digest(playbook),
            });
        }
    }
}

/// Reads every `*.yaml` / `*.yml` file of `dir` (one playbook each, in file-name order).
/// The error names the file and the mistake; names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Playbook>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| {
                    x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    files.sort();
    let mut out: Vec<Playbook> = Vec::with_capacity(files.len());
    for file in files {
        let p = load_file(&file)?;
        if let Some(other) = out.iter().find(|o| o.name().eq_ignore_ascii_case(p.name())) {
            return Err(format!(
                "{}: the name '{}' is already used by another playbook",
                file.display(),
                other.name()
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// Reads one playbook file; the error names the file.
pub fn load_file(file: &Path) -> Result<Playbook, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    playbook::parse(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// What a playbook looks at, read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFacts {
    /// The incident.
    pub incident: Incident,
    /// Its service's name.
    pub service: String,
    /// The labels of the alert that opened it.
    pub labels: BTreeMap<String, String>,
}

impl IncidentFacts {
    /// Reads them for incident `id`.
    pub fn read(r: &impl Reader, id: u64) -> AppResult<IncidentFacts> {
        let incident = incidents::load(r, id)?;
        let service = access::get::<Service>(r, incident.service_id)?
            .map(|s| s.name)
            .unwrap_or_default();
        let labels = crate::app::alerts::first_labels_of(r, id)?;
        Ok(IncidentFacts {
            incident,
            service,
            labels,
        })
    }

    /// The facts `event` presents to a playbook.
    pub fn for_event(&self, event: EventKind) -> Facts<'_> {
        Facts {
            event,
            service: &self.service,
            priority: self.incident.priority,
            title: &self.incident.title,
            labels: &self.labels,
        }
    }
}

/// Fills `{{ incident.* }}`, `{{ service }}` and `{{ labels.* }}` into a comment.
pub fn render_text(text: &str, facts: &IncidentFacts) -> Result<String, String> {
    let i = &facts.incident;
    let ctx = minijinja::context! {
        incident => minijinja::context! {
            id => i.id,
            number => i.number(),
            title => i.title.clone(),
            priority => i.priority.to_string(),
            status => i.status.as_str(),
            impact => i.impact.as_str(),
            urgency => i.urgency.as_str(),
        },
        service => facts.service.clone(),
        labels => facts.labels.clone(),
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.set_fuel(Some(super::notifications::templates::RENDER_FUEL));
    env.render_str(text, ctx)
        .map_err(|e| format!("the text cannot be filled in: {e}"))
}

/// A line saying what `step` does, for `incidentd playbook test`.
pub fn describe(step: &Step, facts: &IncidentFacts) -> String {
    match step {
        Step::Comment(t) => match render_text(t, facts) {
            Ok(text) => format!("comment: {text}"),
            Err(e) => format!("comment: FAILS: {e}"),
        },
        Step::Assign { user, group } => format!(
            "assign to{}{}",
            user.as_deref()
                .map(|u| format!(" user {u}"))
                .unwrap_or_default(),
            group
                .as_deref()
                .map(|g| format!(" group {g}"))
                .unwrap_or_default()
        ),
        Step::Set { impact, urgency } => format!(
            "set{}{}",
            impact
                .map(|l| format!(" impact {}", l.as_str()))
                .unwrap_or_default(),
            urgency
                .map(|l| format!(" urgency {}", l.as_str()))
                .unwrap_or_default()
        ),
        Step::Transition { to, .. } => format!("move to {}", to.as_str()),
        Step::LinkProblem(p) => format!("link to PRB-{p}"),
        Step::Escalate { .. } => "page the next escalation level".into(),
        Step::RequestApproval { workflow, .. } => {
            format!("request an approval through workflow '{workflow}'")
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Every step was done (the count: those done in this run, after a resume fewer).
    Done(usize),
    /// Step `index` failed with `error`; the steps after it were not run.
    Stopped {
        /// The failing step (0-based).
        index: usize,
        /// Why.
        error: AppError,
    },
}

/// Runs `playbook`'s steps on the incident of `facts` (the event's; each step renders the
/// incident as it is when the step runs), one use case each, from step `first` (0 unless
/// resuming after a crash), recording each in `progress` and storing it.
pub async fn run(
    app: &App,
    playbook: &Playbook,
    facts: &IncidentFacts,
    progress: &mut Progress,
    first: usize,
) -> RunOutcome {
    let actor = Actor::playbook(playbook.name());
    let id = facts.incident.id;
    let steps = &playbook.spec.steps;
    for (index, step) in steps.iter().enumerate().skip(first) {
        // Each step sees the incident as the steps before it left it (a comment after a
        // `set` says the new priority); the event's facts if it cannot be read.
        let now = app
            .store
            .read()
            .ok()
            .and_then(|r| IncidentFacts::read(&r, id).ok());
        let facts_now = now.as_ref().unwrap_or(facts);
        let stopped = match run_step(app, &actor, id, step, facts_now).await {
            Ok(()) => None,
            Err(error) => {
                let note = format!(
                    "Playbook '{}' stopped at step {} ({}): {error}",
                    playbook.name(),
                    index + 1,
                    step.kind()
                );
                if let Err(e) = incidents::comment(app, &actor, id, NewComment { body: note }).await
                {
                    tracing::warn!(incident = id, error = %e, "playbook: could not note a failed step");
                }
                Some(RunOutcome::Stopped { index, error })
            }
        };
        // A stopped playbook is finished too: a restart must not run it again.
        progress.record(playbook, index + 1, stopped.is_some());
        let stored = progress.clone();
        if let Err(e) = app.store.write(move |tx| stored.save(tx)).await {
            tracing::warn!(incident = id, error = %e, "playbook: could not store its progress; a restart may repeat a step");
        }
        if let Some(outcome) = stopped {
            return outcome;
        }
    }
    RunOutcome::Done(steps.len().saturating_sub(first))
}

async fn run_step(
    app: &App,
    actor: &Actor,
    id: u64,
    step: &Step,
    facts: &IncidentFacts,
) -> AppResult<()> {
    match step {
        Step::Comment(text) => {
            let body = render_text(text, facts).map_err(AppError::Refused)?;
            incidents::comment(app, actor, id, NewComment { body }).await?;
        }
        Step::Assign { user, group } => {
            let r = app.store.read()?;
            let assignee_id = match user {
                Some(name) => Some(Some(
                    crate::app::users::find_by_username(&r, name)?
                        .filter(|u| u.active)
                        .ok_or_else(|| AppError::Refused(format!("no active user '{name}'")))?
                        .id,
                )),
                None => None,
            };
            let group_id = match group {
                Some(name) => {
                    Some(Some(crate::app::names::GROUPS.find(&r, name)?.ok_or_else(
                        || AppError::Refused(format!("no group '{name}'")),
                    )?))
                }
                None => None,
            };
            drop(r);
            incidents::assign(
                app,
                actor,
                id,
                Assignment {
                    assignee_id,
                    group_id,
                },
            )
            .await?;
        }
        Step::Set { impact, urgency } => {
            let patch = IncidentPatch {
                impact: *impact,
                urgency: *urgency,
                ..Default::default()
            };
            incidents::update(app, actor, id, patch).await?;
        }
        Step::Transition { to, note } => {
            let request = TransitionRequest {
                to: *to,
                note: note.clone(),
            };
            incidents::transition(app, actor, id, request).await?;
        }
        Step::LinkProblem(problem) => {
            crate::app::problems::link(app, actor, *problem, id).await?;
        }
        Step::Escalate { note } => {
            incidents::escalate(app, actor, id, note.clone()).await?;
        }
        Step::RequestApproval { workflow, title } => {
            let workflow_id = crate::app::names::APPROVAL_WORKFLOWS
                .find(&app.store.read()?, workflow)?
                .ok_or_else(|| AppError::Refused(format!("no approval workflow '{workflow}'")))?;
            let title = match title {
                Some(t) => render_text(t, facts).map_err(AppError::Refused)?,
                None => format!("{} {}", facts.incident.number(), facts.incident.title),
            };
            let input = crate::app::approvals::NewApproval {
                workflow_id,
                title: title.chars().take(200).collect(),
                description: format!("Requested by playbook '{}'", actor.reference.name),
                incident_id: Some(id),
                problem_id: None,
            };
            crate::app::approvals::request(app, actor, input).await?;
        }
    }
    Ok(())
}

/// An incident as `incidentd playbook test --incident FILE` describes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleIncident {
    /// The event (default `incident.opened`).
    #[serde(default = "opened")]
    pub event: EventKind,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Service name.
    #[serde(default)]
    pub service: String,
    /// Impact (default high).
    #[serde(default)]
    pub impact: Option<Level>,
    /// Urgency (default high).
    #[serde(default)]
    pub urgency: Option<Level>,
    /// Priority (default: from impact and urgency by the default matrix).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Labels of the alert that opened it.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn opened() -> EventKind {
    EventKind::IncidentOpened
}

impl SampleIncident {
    /// The facts a playbook would see, for incident `INC-0`.
    pub fn facts(&self, now: chrono::DateTime<chrono::Utc>) -> IncidentFacts {
        let impact = self.impact.unwrap_or(Level::High);
        let urgency = self.urgency.unwrap_or(Level::High);
        let priority = self
            .priority
            .unwrap_or_else(|| PriorityMatrix::default().priority(impact, urgency));
        let incident = Incident::open(Opening {
            id: 0,
            title: self.title.clone(),
            description: String::new(),
            impact,
            urgency,
            priority,
            service_id: 0,
            created_by: Actor::system().reference,
            at: now,
        });
        IncidentFacts {
            incident,
            service: self.service.clone(),
            labels: self.labels.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playbook(name: &str, steps: &[&str]) -> Playbook {
        let steps: String = steps
            .iter()
            .map(|s| format!("  - comment: '{s}'\n"))
            .collect();
        playbook::parse(&format!("name: {name}\nsteps:\n{steps}")).expect("playbook")
    }

    #[test]
    fn a_new_event_starts_every_playbook() {
        let p = Progress::of(9);
        assert_eq!(p.resume(&playbook("a", &["x"])), Resume::Start);
    }

    #[test]
    fn steps_are_recorded_until_the_playbook_finishes() {
        let three = playbook("Three", &["one", "two", "three"]);
        let other = playbook("other", &["x"]);
        let mut p = Progress::of(9);
        p.record(&three, 1, false);
        assert_eq!(p.resume(&three), Resume::At(1));
        assert_eq!(p.resume(&other), Resume::Start, "by name, not by place");
        p.record(&three, 2, false);
        assert_eq!(p.resume(&three), Resume::At(2));
        p.record(&three, 3, false);
        assert_eq!(p.running, None);
        assert_eq!(p.resume(&three), Resume::Skip, "finished");
        assert_eq!(
            p.resume(&playbook("THREE", &["one", "two", "three"])),
            Resume::Skip,
            "names ignore case, as their uniqueness does"
        );
        assert_eq!(p.resume(&other), Resume::Start);
    }

    #[test]
    fn a_stopped_playbook_is_finished_even_if_steps_are_added_later() {
        let two = playbook("two", &["one", "two"]);
        let mut p = Progress::of(9);
        p.record(&two, 1, true);
        assert_eq!(p.finished, vec!["two".to_owned()]);
        assert_eq!(p.resume(&two), Resume::Skip);
        assert_eq!(
            p.resume(&playbook("two", &["one", "two", "three"])),
            Resume::Skip
        );
    }

    #[test]
    fn a_half_done_playbook_edited_since_is_not_resumed() {
        let before = playbook("three", &["one", "two", "three"]);
        let mut p = Progress::of(9);
        p.record(&before, 1, false);
        let inserted = playbook("three", &["one", "new", "two", "three"]);
        assert_eq!(p.resume(&inserted), Resume::Skip);
        assert_eq!(p.resume(&before), Resume::At(1));
    }

    #[test]
    fn progress_round_trips_through_the_store_format() {
        let mut p = Progress::of(4);
        p.record(&playbook("a", &["x"]), 1, false);
        p.record(&playbook("b", &["x", "y"]), 1, false);
        let back: Progress =
            serde_json::from_str(&serde_json::to_string(&p).expect("json")).expect("parse");
        assert_eq!(back, p);
    }
}
