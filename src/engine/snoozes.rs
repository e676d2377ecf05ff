//! The snooze alarm: every few seconds, sends the snoozed incidents whose time has come
//! back to `new`, which pages again from the first escalation level
//! ([`crate::app::incidents::snooze::wake_due`]). The wake-up times are a due queue in the
//! store, so a restart loses none: a snooze that ran out while the daemon was down wakes
//! at the first pass after the start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::app::incidents::snooze;

/// How often the queue is looked at: a snooze lasts minutes, and ends a few seconds late
/// at most.
const EVERY: Duration = Duration::from_secs(2);

/// Looks every [`EVERY`] until `shutdown` turns true.
pub async fn run(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    super::repeat(
        EVERY,
        shutdown,
        "snooze wake-up",
        "snoozed incidents woke and page again",
        || snooze::wake_due(&app),
    )
    .await;
}
