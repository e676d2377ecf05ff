//! Login throttling per username and per client address.
//!
//! Failed attempts are counted in a sliding window; once a username or an address reaches
//! its limit, further attempts are refused (429 with Retry-After) until the oldest failure
//! leaves the window. A success clears the username's failures. Kept in memory: a restart
//! forgets it, which costs an attacker a restart they cannot trigger.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered; beyond it the stalest are dropped.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    User(String),
    Address(IpAddr),
}

/// The throttle.
#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    max_per_user: usize,
    max_per_address: usize,
    failures: Mutex<HashMap<Subject, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// A throttle allowing `max_per_user` / `max_per_address` failures per `window`.
    pub fn new(window: Duration, max_per_user: u32, max_per_address: u32) -> Self {
        Self {
            window,
            max_per_user: max_per_user as usize,
            max_per_address: max_per_address as usize,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` if `username` or `address` is throttled at `now`.
    pub fn check(&self, username: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for (subject, limit) in [
            (Subject::User(username.to_lowercase()), self.max_per_user),
            (Subject::Address(address), self.max_per_address),
        ] {
            if let Some(q) = map.get_mut(&subject) {
                prune(q, now, self.window);
                if q.len() >= limit
                    && let Some(oldest) = q.front()
                {
                    wait = wait.max(self.window.saturating_sub(now.duration_since(*oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    /// Counts a failed attempt.
    pub fn failure(&self, username: &str, address: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, q| {
                prune(q, now, window);
                !q.is_empty()
            });
        }
        for subject in [
            Subject::User(username.to_lowercase()),
            Subject::Address(address),
        ] {
            let q = map.entry(subject).or_default();
            prune(q, now, self.window);
            q.push_back(now);
        }
    }

    /// Clears the username's failures after a successful login.
    pub fn success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Subject::User(username.to_lowercase()));
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn per_user_limit_and_window() {
        let t = LoginThrottle::new(Duration::from_secs(60), 3, 100);
        let start = Instant::now();
        for i in 0..3 {
            assert!(t.check("Alice", A, start).is_ok(), "attempt {i}");
            t.failure("alice", A, start);
        }
        let wait = t
            .check("ALICE", B, start + Duration::from_secs(10))
            .expect_err("throttled");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t.check("bob", B, start).is_ok(), "others unaffected");
        assert!(
            t.check("alice", B, start + Duration::from_secs(60)).is_ok(),
            "window passed"
        );
    }

    #[test]
    fn per_address_limit() {
        let t = LoginThrottle::new(Duration::from_secs(60), 100, 2);
        let now = Instant::now();
        t.failure("u1", A, now);
        t.failure("u2", A, now);
        assert!(t.check("u3", A, now).is_err());
        assert!(t.check("u3", B, now).is_ok());
    }

    #[test]
    fn success_clears_the_user() {
        let t = LoginThrottle::new(Duration::from_secs(60), 2, 100);
        let now = Instant::now();
        t.failure("carol", A, now);
        t.success("carol");
        t.failure("carol", A, now);
        assert!(t.check("carol", A, now).is_ok());
    }
}
