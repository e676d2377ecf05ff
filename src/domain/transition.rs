//! What every lifecycle (incident, problem, approval) shares: a closed set of states and a
//! table of allowed moves, with one error that names both ends.

use std::fmt;

/// A state machine over a closed set of states.
pub trait Lifecycle: Copy + Eq + fmt::Display + 'static {
    /// Every state.
    const ALL: &'static [Self];

    /// The states reachable in one move from `self`.
    fn successors(self) -> &'static [Self];

    /// Whether `self -> to` is allowed.
    fn can_move_to(self, to: Self) -> bool {
        self.successors().contains(&to)
    }

    /// `Ok(())` if `self -> to` is allowed, else an error naming both states.
    fn check_move(self, to: Self) -> Result<(), InvalidTransition> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            Err(InvalidTransition {
                from: self.to_string(),
                to: to.to_string(),
            })
        }
    }

    /// Whether no move leads out of this state.
    fn is_final(self) -> bool {
        self.successors().is_empty()
    }
}

/// A move the lifecycle does not allow (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The current state.
    pub from: String,
    /// The requested state.
    pub to: String,
}

impl fmt::Display for InvalidTransition {
    /// "cannot move from 'a' to 'b'", or "it is already 'a'" for a move to where it is (an
    /// acknowledgement clicked twice is not a lifecycle lesson).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "it is already '{}'", self.to)
        } else {
            write!(f, "cannot move from '{}' to '{}'", self.from, self.to)
        }
    }
}

impl std::error::Error for InvalidTransition {}

#[cfg(test)]
pub(crate) mod testing {
    use super::Lifecycle;

    /// Walks every (from, to) pair: the listed ones succeed, all others fail with an error
    /// that names both states.
    pub fn check_every_pair<S: Lifecycle + fmt::Debug>(allowed: &[(S, S)]) {
        for &from in S::ALL {
            for &to in S::ALL {
                let result = from.check_move(to);
                if allowed.contains(&(from, to)) {
                    assert_eq!(result, Ok(()), "{from} -> {to} should be allowed");
                } else {
                    let err = result.expect_err("should be refused");
                    assert_eq!(err.from, from.to_string());
                    assert_eq!(err.to, to.to_string());
                    let message = err.to_string();
                    assert!(message.contains(&format!("'{from}'")), "{message}");
                    assert!(message.contains(&format!("'{to}'")), "{message}");
                }
            }
        }
        // Every allowed pair is listed in the table, and vice versa.
        let count = S::ALL.iter().map(|s| s.successors().len()).sum::<usize>();
        assert_eq!(count, allowed.len(), "table and expectation differ in size");
    }

    use std::fmt;
}
