//! The escalation worker: pages the levels of escalation policies as they fall due.
//!
//! All its state is the store's `escalations_due` rows (`app::escalation::runs`), so it
//! can stop at any moment: a level due while the daemon was down is paged once, right
//! after the restart. It wakes on every commit (an incident just opened pages level 1 at
//! once) and otherwise when the next level falls due, checking at least every second so
//! that a clock moved by a test or by NTP is noticed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::app::escalation::runs;

/// Most incidents paged in one transaction.
const BATCH: usize = 64;
/// The longest the worker sleeps without looking.
const IDLE: Duration = Duration::from_secs(1);

/// The worker.
pub struct EscalationWorker {
    app: Arc<App>,
}

impl EscalationWorker {
    /// A worker for `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.app.store.commits();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.tick().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "escalation: could not page due levels");
                    IDLE
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Pages what is due now, each incident in its own operation (one that fails is
    /// stopped with a note and does not hold up the others). Returns how long to wait:
    /// zero after paging (look again), else until the next level falls due, at most
    /// [`IDLE`]. One read of the queue per look: the worker wakes on every commit.
    async fn tick(&self) -> Result<Duration, crate::app::AppError> {
        let now = self.app.clock.now();
        let (due, next) = {
            let r = self.app.store.read()?;
            let due = runs::due(&r, now, BATCH)?;
            let next = if due.is_empty() {
                runs::next_due(&r)?
            } else {
                None
            };
            (due, next)
        };
        if due.is_empty() {
            let wait = next.map_or(IDLE, |at| {
                (at - now).to_std().unwrap_or(Duration::ZERO).min(IDLE)
            });
            return Ok(wait);
        }
        // Submitted together, the pages share one commit; a failing one is replayed out of
        // the batch by the writer, so it fails alone.
        let mut pages = tokio::task::JoinSet::new();
        for (queued_at, id) in due {
            let app = self.app.clone();
            pages.spawn(async move {
                let paged = app
                    .store
                    .write(move |tx| runs::page_if_due(tx, now, queued_at, id))
                    .await;
                if let Err(e) = paged {
                    tracing::warn!(incident = id, error = %e, "escalation: paging failed; stopping this escalation");
                    let why = e.to_string();
                    let stopped = app
                        .store
                        .write(move |tx| runs::stop_after_error(tx, now, queued_at, id, &why))
                        .await;
                    if let Err(e) = stopped {
                        // Not even the stop could be written: drop the queue entry so that
                        // it cannot hold up the incidents behind it.
                        tracing::error!(incident = id, error = %e, "escalation: dropping an escalation that cannot be paged or stopped");
                        let dropped = app
                            .store
                            .write(move |tx| runs::drop_queue_entry(tx, queued_at, id))
                            .await;
                        if let Err(e) = dropped {
                            tracing::error!(incident = id, error = %e, "escalation: could not drop the queue entry");
                        }
                    }
                }
            });
        }
        while pages.join_next().await.is_some() {}
        // Look again at once: more may be due (a full batch), else that look finds the wait.
        Ok(Duration::ZERO)
    }
}
