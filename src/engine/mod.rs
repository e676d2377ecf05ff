//! Background workers. Each is a module with one loop, keeps all its state in the store,
//! and may be stopped at any moment: after a restart it picks up where the store says.

pub mod approvals;
pub mod escalation;
pub mod heartbeats;
pub mod outbox;
pub mod playbooks;
pub mod retention;
pub mod silences;
pub mod snoozes;

/// Waits `period`, or less if shutdown begins: `true` if the worker should go on. The
/// sleep-then-work loop of the periodic workers, with a prompt stop.
pub(crate) async fn pause(
    period: std::time::Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => {}
        // The sender gone means nobody can stop the worker any more: stop now.
        changed = shutdown.changed() => if changed.is_err() { return false; },
    }
    !*shutdown.borrow()
}

/// The loop of a periodic worker whose pass counts what it did: runs `pass` every
/// `period` until shutdown, logs `did` with the count when a pass did something, and a
/// failed pass of `job` as a warning (the next one tries again).
pub(crate) async fn repeat<F, Fut>(
    period: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    job: &'static str,
    did: &'static str,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, crate::app::AppError>>,
{
    while pause(period, &mut shutdown).await {
        match pass().await {
            Ok(0) => {}
            Ok(count) => tracing::info!(job, count, "{did}"),
            Err(e) => tracing::warn!(job, error = %e, "{job} failed; it runs again shortly"),
        }
    }
}
