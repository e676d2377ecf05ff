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

    /// Records the signature of a request the verifier accepted at `now` (seconds), signed
    /// for the time in its `timestamp` header; `false` if it was recorded before. The key
    /// is the signature in lowercase hex: hex decoding accepts either case, so a replay
    /// with the signature in capitals must count as the same request. Entries the verifier
    /// would now refuse as stale are forgotten, which bounds the memory to one window.
    pub fn first_time(&self, signature: Option<&str>, timestamp: Option<&str>, now: i64) -> bool {
        let signed_at = timestamp.and_then(|t| t.trim().parse().ok()).unwrap_or(now);
        let key = signature.unwrap_or_default().trim().to_ascii_lowercase();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let oldest = now - self.window_secs;
        seen.retain(|_, at| *at >= oldest);
        seen.insert(key, signed_at).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once_per_window() {
        let seen = SeenSignatures::new(300);
        let ts = Some("1000");
        assert!(seen.first_time(Some("v0=aa"), ts, 1000));
        assert!(!seen.first_time(Some("v0=aa"), ts, 1200));
        assert!(
            !seen.first_time(Some(" V0=AA "), ts, 1299),
            "hex in capitals"
        );
        assert!(seen.first_time(Some("v0=bb"), ts, 1200));
        // Past the window the verifier refuses it as stale anyway; the entry is gone.
        assert!(seen.first_time(Some("v0=cc"), Some("1400"), 1400));
        assert_eq!(seen.seen.lock().map(|s| s.len()).unwrap_or_default(), 1);
    }
}
