//! The playbook runner: reads the event log in order from its cursor in the store and runs
//! every playbook whose conditions an incident event meets.
//!
//! The cursor moves past an event once its playbooks have run, so a restart resumes with
//! the first event not yet handled; within that event, the stored
//! [`playbooks::Progress`] skips the playbooks (by name) and steps already done, so a
//! crash in the middle of a playbook repeats at most the step in flight (more only if the
//! progress could not be stored; a playbook edited in between is not resumed). Events caused by playbooks are
//! skipped, so that playbooks cannot set each other off in a loop. On its very first start
//! the runner begins at the newest event: playbooks act on what happens from then on, not
//! on history.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::playbooks::{self, IncidentFacts, Progress, Resume, RunOutcome};
use crate::app::{App, AppError, events};
use crate::domain::actor::ActorKind;
use crate::domain::event::DomainEvent;
use crate::domain::playbook::Playbook;

/// The runner's name in the store's cursors.
const CONSUMER: &str = crate::app::events::CONSUMERS[0];
/// Events read per look.
const BATCH: usize = 256;
/// The longest the runner sleeps without looking.
const IDLE: Duration = Duration::from_secs(2);

/// The worker.
pub struct PlaybookRunner {
    app: Arc<App>,
    playbooks: Arc<Vec<Playbook>>,
}

impl PlaybookRunner {
    /// A runner of `playbooks` for `app`.
    pub fn new(app: Arc<App>, playbooks: Vec<Playbook>) -> Self {
        Self {
            app,
            playbooks: Arc::new(playbooks),
        }
    }

    /// Called before the daemon serves, so that nothing after start-up is missed. With
    /// playbooks (`active`): sets the cursor at the newest event if the runner has none,
    /// so that playbooks act on what happens from now on. Without: the runner does not
    /// run, and its cursor is dropped, so that playbooks added later do not work through
    /// everything that happened in between.
    pub async fn prepare(app: &App, active: bool) -> Result<(), AppError> {
        let (cursor, newest) = {
            let r = app.store.read()?;
            (events::cursor_if_set(&r, CONSUMER)?, events::last_seq(&r)?)
        };
        match (active, cursor) {
            (true, None) => {
                app.store
                    .write(move |tx| events::set_cursor(tx, CONSUMER, newest))
                    .await?
            }
            (false, Some(_)) => {
                app.store
                    .write(move |tx| events::forget_cursor(tx, CONSUMER))
                    .await?
            }
            _ => {}
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.app.store.commits();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let more = match self.tick().await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "playbooks: could not read or advance the event log");
                    false
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(IDLE) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Handles the next batch of events; whether there may be more.
    async fn tick(&self) -> Result<bool, AppError> {
        let (cursor, batch) = {
            let r = self.app.store.read()?;
            let c = events::cursor(&r, CONSUMER)?;
            (c, events::read_after(&r, c, BATCH)?)
        };
        let Some(last) = batch.last().map(|e| e.seq) else {
            return Ok(false);
        };
        debug_assert!(last > cursor, "events come after the cursor");
        for event in &batch {
            // Progress is saved after every event that ran a playbook (a restart must not
            // run it again) and once per batch otherwise (most events call for nothing).
            if self.handle(event).await || event.seq == last {
                let seq = event.seq;
                self.app
                    .store
                    .write(move |tx| events::set_cursor(tx, CONSUMER, seq))
                    .await?;
            }
        }
        Ok(batch.len() == BATCH)
    }

    /// Runs the playbooks `event` calls for; whether any ran.
    async fn handle(&self, event: &DomainEvent) -> bool {
        if event.actor.kind == ActorKind::Playbook {
            return false;
        }
        let Some(incident_id) = event.incident_id.filter(|_| event.kind.is_incident()) else {
            return false;
        };
        // Resuming after a crash in this event's playbooks: the finished ones are left,
        // the half-done one goes on where it stopped (see `Progress::resume`).
        let mut progress = match self.app.store.read().map(|r| Progress::load(&r)) {
            Ok(Ok(Some(p))) if p.event_seq == event.seq => p,
            Ok(Ok(_)) => Progress::of(event.seq),
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(error = %e, "playbooks: cannot read their progress; running the event's playbooks from the start");
                Progress::of(event.seq)
            }
        };
        let mut ran = false;
        for playbook in self.playbooks.iter() {
            let first = match progress.resume(playbook) {
                Resume::Skip => {
                    ran = true;
                    continue;
                }
                Resume::At(step) => step,
                Resume::Start => 0,
            };
            // Read again for each playbook: the one before may have changed the incident.
            let facts = match self
                .app
                .store
                .read()
                .map_err(AppError::from)
                .and_then(|r| IncidentFacts::read(&r, incident_id))
            {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(incident = incident_id, error = %e, "playbooks: cannot read the incident");
                    return ran;
                }
            };
            if first == 0 && !playbook.matches(&facts.for_event(event.kind)) {
                continue;
            }
            ran = true;
            match playbooks::run(&self.app, playbook, &facts, &mut progress, first).await {
                RunOutcome::Done(steps) => {
                    tracing::info!(
                        playbook = playbook.name(),
                        incident = incident_id,
                        steps,
                        "playbook ran"
                    );
                }
                RunOutcome::Stopped { index, error } => {
                    tracing::warn!(playbook = playbook.name(), incident = incident_id, step = index + 1, error = %error, "playbook stopped");
                }
            }
        }
        ran
    }
}
