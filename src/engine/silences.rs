//! The silence watcher: every few seconds, releases the alerts muted by silences that have
//! ended while those alerts still fire ([`crate::app::silences::release_ended`]), so that
//! the end of a maintenance window pages for what is still broken. Which alerts a silence
//! mutes is in the store's alert index, so a restart loses none: a silence that ended
//! while the daemon was down releases its alerts at the first pass after the start.
//! (Expiring or changing a silence through the API releases its alerts at once.)

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::{App, silences};

/// How often ended silences are looked for: a silence's end is paged for a few seconds
/// late at most. A pass with nothing to release reads one index entry per silence.
const EVERY: Duration = Duration::from_secs(2);

/// Looks every [`EVERY`] until `shutdown` turns true.
pub async fn run(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    super::repeat(
        EVERY,
        shutdown,
        "silence release",
        "silences ended: still-firing alerts released",
        || silences::release_ended(&app),
    )
    .await;
}
