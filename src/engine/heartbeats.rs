//! The heartbeat checker: once a second, opens an incident for every heartbeat monitor
//! silent past its interval ([`crate::app::heartbeats::check_all`]). What was opened is
//! recorded on the monitor in the same transaction, so a restart neither loses a missed
//! heartbeat nor opens a second incident for it; after a start, senders get one interval
//! to ping again before their silence counts (the daemon's downtime is not theirs).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::{App, heartbeats};

/// How often monitors are looked at: a silence is noticed within a second of its
/// deadline (intervals are a minute or more).
const EVERY: Duration = Duration::from_secs(1);

/// The worker.
pub struct HeartbeatChecker {
    app: Arc<App>,
}

impl HeartbeatChecker {
    /// A checker for `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    /// Checks every second until `shutdown` turns true. Silences are counted from the
    /// checker's start at the earliest: the daemon's own downtime pages nobody.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let watching_since = self.app.clock.now();
        while super::pause(EVERY, &mut shutdown).await {
            match heartbeats::check_all(&self.app, watching_since).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(opened = n, "heartbeat monitors went silent"),
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat check failed; it runs again in a second")
                }
            }
        }
    }
}
