//! Why a call was not let through.
//!
//! A rejection is an answer, not an error: the policy worked and said "not now". Every
//! primitive and the pipeline return the same [`Rejection`], so a caller handles them in
//! one place and a service can turn `retry_after` into a `Retry-After` header.

use std::fmt;
use std::time::Duration;

crate::codes::code_enum! {
    /// The stage that refused a call.
    ///
    /// The numeric values are part of the C ABI (they are the `bw_status` codes of the
    /// rejections) and never change.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum RejectReason: u8 {
        /// The circuit breaker is open (or forced open, or out of half-open probes).
        CircuitOpen = 1 => "circuit_open",
        /// The rate limiter has no token now.
        RateLimited = 2 => "rate_limited",
        /// The bulkhead is at `max_concurrent` (after any allowed wait).
        BulkheadFull = 3 => "bulkhead_full",
        /// The adaptive limit or the client-side throttle shed the call.
        LoadShed = 4 => "load_shed",
        /// A retry was refused because the retry budget is spent.
        RetryBudgetExhausted = 5 => "retry_budget_exhausted",
        /// Fault injection forced a rejection.
        Injected = 6 => "injected",
    }
}

impl RejectReason {
    /// A dense index `0..ALL.len()`, for per-reason counter arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize - 1
    }
}

/// A refused call: which stage refused it, and when trying again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The stage that refused.
    pub reason: RejectReason,
    /// When a new attempt may pass, where the stage knows (an open breaker's remaining
    /// open time, the limiter's next token). `None` when unknown.
    pub retry_after: Option<Duration>,
}

impl Rejection {
    /// A rejection with a known `retry_after`.
    #[inline]
    pub fn new(reason: RejectReason, retry_after: Option<Duration>) -> Self {
        Self {
            reason,
            retry_after,
        }
    }

    /// A rejection whose `retry_after` is `nanos` nanoseconds.
    #[inline]
    pub fn after_nanos(reason: RejectReason, nanos: u64) -> Self {
        Self::new(reason, Some(Duration::from_nanos(nanos)))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after {
            Some(after) => write!(
                f,
                "rejected: {} (retry after {})",
                self.reason,
                HumanDuration(after)
            ),
            None => write!(f, "rejected: {}", self.reason),
        }
    }
}

impl std::error::Error for Rejection {}

/// A duration for people: the largest unit that keeps it at least 1, three significant
/// digits at most (`168 ms`, `1.5 s`, `250 µs`), so `retry_after` reads as a human
/// would write it rather than as `168.000002ms`.
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos() as f64;
        let (value, unit) = if nanos < 1e3 {
            (nanos, "ns")
        } else if nanos < 1e6 {
            (nanos / 1e3, "µs")
        } else if nanos < 1e9 {
            (nanos / 1e6, "ms")
        } else {
            (nanos / 1e9, "s")
        };
        let decimals = if value >= 100.0 {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        let text = format!("{value:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            &text
        };
        write!(f, "{text} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prints_in_human_units() {
        let shown =
            |nanos: u64| Rejection::after_nanos(RejectReason::RateLimited, nanos).to_string();
        assert_eq!(
            shown(168_000_002),
            "rejected: rate_limited (retry after 168 ms)"
        );
        assert_eq!(
            shown(1_500_000_000),
            "rejected: rate_limited (retry after 1.5 s)"
        );
        assert_eq!(
            shown(250_000),
            "rejected: rate_limited (retry after 250 µs)"
        );
        assert_eq!(
            shown(12_345),
            "rejected: rate_limited (retry after 12.3 µs)"
        );
        assert_eq!(shown(7), "rejected: rate_limited (retry after 7 ns)");
        assert_eq!(
            shown(90_000_000_000),
            "rejected: rate_limited (retry after 90 s)"
        );
        assert_eq!(
            Rejection::new(RejectReason::CircuitOpen, None).to_string(),
            "rejected: circuit_open"
        );
    }

    #[test]
    fn codes_and_names_round_trip() {
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(reason.code() as i64), Some(reason));
            assert_eq!(RejectReason::from_name(reason.as_str()), Some(reason));
        }
        assert_eq!(RejectReason::from_code(0), None);
        assert_eq!(RejectReason::from_code(7), None);
    }
}
