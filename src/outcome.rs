//! How a call went.
//!
//! A caller reports one [`Outcome`] per permit. `Timeout` counts as a failure for every
//! rule that counts failures; `Ignored` counts for nothing (it frees the permit and is
//! recorded in metrics only), which is also what a dropped Rust permit reports.

use std::time::Duration;

crate::codes::code_enum! {
    /// The result of one call, as reported to a policy.
    ///
    /// The numeric values are part of the C ABI (`BW_OUTCOME_*`) and never change.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Outcome: u8 {
        /// The call succeeded.
        Success = 0 => "success",
        /// The call failed.
        Failure = 1 => "failure",
        /// The call did not finish within its deadline; counts as a failure.
        Timeout = 2 => "timeout",
        /// The call says nothing about the dependency's health (cancelled by the caller,
        /// a client-side validation error, a dropped permit). Frees the permit only.
        Ignored = 3 => "ignored",
    }
}

impl Outcome {
    /// Whether failure-counting rules count this outcome (`Failure` and `Timeout`).
    #[inline]
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::Timeout)
    }

    /// Whether the outcome is recorded in windows at all (everything but `Ignored`).
    #[inline]
    pub fn is_recorded(self) -> bool {
        !matches!(self, Outcome::Ignored)
    }

    /// Classifies a `Result`: `Ok` is a success, `Err` a failure.
    #[inline]
    pub fn of<T, E>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }

    /// Turns a success that took longer than `deadline` into a `Timeout`; failures that
    /// came late are timeouts too, since the caller had already given up on them.
    #[inline]
    pub fn with_deadline(self, elapsed: Duration, deadline: Option<Duration>) -> Outcome {
        match (self, deadline) {
            (Outcome::Success | Outcome::Failure, Some(limit)) if elapsed > limit => {
                Outcome::Timeout
            }
            (outcome, _) => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reject_unknown() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_code(o as i64), Some(o));
        }
        assert_eq!(Outcome::from_code(4), None);
        assert_eq!(Outcome::from_code(-1), None);
    }

    #[test]
    fn deadline_turns_late_calls_into_timeouts() {
        let limit = Some(Duration::from_millis(10));
        let late = Duration::from_millis(11);
        let on_time = Duration::from_millis(10);
        assert_eq!(
            Outcome::Success.with_deadline(late, limit),
            Outcome::Timeout
        );
        assert_eq!(
            Outcome::Failure.with_deadline(late, limit),
            Outcome::Timeout
        );
        assert_eq!(
            Outcome::Ignored.with_deadline(late, limit),
            Outcome::Ignored
        );
        assert_eq!(
            Outcome::Success.with_deadline(on_time, limit),
            Outcome::Success
        );
        assert_eq!(Outcome::Success.with_deadline(late, None), Outcome::Success);
    }
}
