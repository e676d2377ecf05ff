//! Signed chat requests already seen within their freshness window.
//!
//! A signature proves who sent a request and that it is recent, not that it is new: a
//! captured request replayed within the five minutes Slack and Discord allow would run its
//! command again (a second comment, another page, another approval vote). Neither platform
//! sends the same signed request twice (Slack retries no slash command or interaction; a
//! Discord interaction has a unique id), so a signature seen before is refused like a bad
//! one. The memory is per process: a replay across a restart within the window is not
//! caught.

use std::collections::HashMap;
use std::sync::Mutex;

/// Signatures seen, with the request time they were signed for.
#[derive(Debug)]
pub struct SeenSignatures {
    /// How far a request's time may be from now (the verifier's window), in seconds.
    window_secs: i64,
    seen: Mutex<HashMap<String, i64>>,
}

impl SeenSignatures {
    /// A memory for requests the verifier accepts within `window_secs` of now.
    pub fn new(window_secs: i64) -> Self {
        Self {
            window_secs,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `signature` (of a request signed for `signed_at`, verified at `now`, both in
    /// seconds); `false` if it was recorded before. Entries the verifier would now refuse
    /// as stale are forgotten, which bounds the memory to one window of requests.
    pub fn first_time(&self, signature: &str, signed_at: i64, now: i64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let oldest = now - self.window_secs;
        seen.retain(|_, at| *at >= oldest);
        seen.insert(signature.trim().to_owned(), signed_at)
            .is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once_per_window() {
        let seen = SeenSignatures::new(300);
        assert!(seen.first_time("v0=aa", 1000, 1000));
        assert!(!seen.first_time("v0=aa", 1000, 1200));
        assert!(!seen.first_time(" v0=aa ", 1000, 1299));
        assert!(seen.first_time("v0=bb", 1000, 1200));
        // Past the window the verifier refuses it as stale anyway; the entry is gone.
        assert!(seen.first_time("v0=cc", 1400, 1400));
        assert_eq!(seen.seen.lock().map(|s| s.len()).unwrap_or_default(), 1);
    }
}
