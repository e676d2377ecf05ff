//! The clean-up: deletes what is only kept for a while, so that a daemon that runs for
//! years keeps a store of bounded size. The event log goes after `retention.events_days`
//! (never before every consumer, such as the playbook runner, has handled it, nor while
//! a delivery still waiting to be sent needs it), finished
//! deliveries leave the notification log after `retention.deliveries_days`, resolved
//! alerts of ended incidents after `retention.alerts_days` (a daemon taking thousands of
//! alerts a second would otherwise grow without bound), login sessions once they and
//! every access token of theirs have expired. Incidents, problems, timelines and the
//! audit log are the record and stay.
//!
//! Each pass deletes in small transactions, so that it never holds the writer for long;
//! it keeps no state of its own, so stopping it at any moment loses nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::app::{App, AppError, events};

/// Rows deleted per transaction.
const CHUNK: usize = 1000;

/// The worker.
pub struct RetentionWorker {
    app: Arc<App>,
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events.
    pub events: u64,
    /// Deliveries.
    pub deliveries: u64,
    /// Alerts.
    pub alerts: u64,
    /// Expired login sessions.
    pub sessions: u64,
}

impl RetentionWorker {
    /// A worker for `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    /// Runs a pass every `retention.interval_secs` until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_secs(self.app.config.retention.interval_secs);
        while super::pause(every, &mut shutdown).await {
            match self.pass().await {
                Ok(p) if p != Pruned::default() => {
                    tracing::info!(
                        events = p.events,
                        deliveries = p.deliveries,
                        alerts = p.alerts,
                        sessions = p.sessions,
                        "retention: deleted old records"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "retention: the clean-up failed; it runs again later")
                }
            }
        }
    }

    /// Deletes everything that is past its time now.
    pub async fn pass(&self) -> Result<Pruned, AppError> {
        let now = self.app.clock.now();
        let r = &self.app.config.retention;
        let mut pruned = Pruned::default();
        if let Some(cutoff) = cutoff(now, r.events_days) {
            loop {
                let n = self
                    .app
                    .store
                    .write(move |tx| {
                        let needed = crate::app::notifications::outbox::oldest_waiting_event(tx)?;
                        events::prune_before(tx, cutoff, needed, CHUNK)
                    })
                    .await?;
                pruned.events += n;
                metrics::counter!("incidentd_retention_deleted_total", "kind" => "events")
                    .increment(n);
                if n < CHUNK as u64 {
                    break;
                }
            }
        }
        if let Some(cutoff) = cutoff(now, r.deliveries_days) {
            loop {
                let n = self
                    .app
                    .store
                    .write(move |tx| crate::app::notifications::outbox::prune(tx, cutoff, CHUNK))
                    .await? as u64;
                pruned.deliveries += n;
                metrics::counter!("incidentd_retention_deleted_total", "kind" => "deliveries")
                    .increment(n);
                if n < CHUNK as u64 {
                    break;
                }
            }
        }
        if let Some(cutoff) = cutoff(now, r.alerts_days) {
            let mut after = 0;
            loop {
                let step = self
                    .app
                    .store
                    .write(move |tx| {
                        crate::app::alerts::prune_resolved(tx, now, cutoff, after, CHUNK)
                    })
                    .await?;
                pruned.alerts += step.deleted;
                metrics::counter!("incidentd_retention_deleted_total", "kind" => "alerts")
                    .increment(step.deleted);
                match step.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
        // A session's access tokens outlive its refresh token by at most their own lifetime.
        let access_ttl = i64::try_from(self.app.config.auth.access_token_ttl_secs)
            .unwrap_or(i64::MAX / 2)
            .min(i64::from(i32::MAX));
        let dead_before = now - chrono::Duration::seconds(access_ttl);
        let mut after = None;
        loop {
            let (n, next) = self
                .app
                .store
                .write(move |tx| crate::app::auth::prune_sessions(tx, dead_before, after, CHUNK))
                .await?;
            pruned.sessions += n;
            metrics::counter!("incidentd_retention_deleted_total", "kind" => "sessions")
                .increment(n);
            match next {
                Some(id) => after = Some(id),
                None => break,
            }
        }
        Ok(pruned)
    }
}

/// The moment before which records of a kind kept `days` days go (`None`: kept forever).
fn cutoff(now: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    (days > 0).then(|| now - chrono::Duration::days(i64::from(days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_forever() {
        let now = Utc::now();
        assert_eq!(cutoff(now, 0), None);
        assert_eq!(cutoff(now, 30), Some(now - chrono::Duration::days(30)));
    }
}
