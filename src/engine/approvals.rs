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

/// Checks every [`EVERY`] until `shutdown` turns true.
pub async fn run(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    super::repeat(
        EVERY,
        shutdown,
        "approval expiry",
        "approval requests expired",
        || approvals::expire_due(&app),
    )
    .await;
}
