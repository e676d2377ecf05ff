//! The approval deadline checker: every few seconds, expires the pending approval requests
//! whose workflow's `expires_after_minutes` has run out ([`crate::app::approvals::expire_due`]).
//! The deadline is stored on each request, so a restart loses none: a request that ran
//! out while the daemon was down expires at the first check after the start (no decision
//! could count once its deadline passed anyway).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::{App, approvals};

/// How often deadlines are looked at. Expiry is measured in minutes; a request is late by
/// a few seconds at most, and no decision counts meanwhile.
const EVERY: Duration = Duration::from_secs(2);

/// The worker.
pub struct ApprovalExpirer {
    app: Arc<App>,
}

impl ApprovalExpirer {
    /// A checker for `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    /// Checks every [`EVERY`] until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while super::pause(EVERY, &mut shutdown).await {
            match approvals::expire_due(&self.app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "approval requests expired"),
                Err(e) => {
                    tracing::warn!(error = %e, "approval expiry check failed; it runs again shortly")
                }
            }
        }
    }
}
