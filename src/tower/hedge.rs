//! [`Hedge`]: when a [`PolicyService`](super::PolicyService) sends a second attempt of a
//! call whose first is slow.

use std::time::Duration;

/// When to hedge: after the first attempt of a call has run for `delay` without an
/// answer, a second one is sent (if the policy's retry budget allows it, withdrawing
/// from it like a retry); the first answer wins and the other attempt is cancelled (its
/// inner future dropped, its permit completed as `Ignored`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hedge {
    /// After a fixed delay.
    After(Duration),
    /// After the policy's observed latency at quantile `q` (0 < q ≤ 1; 0.95 is the 95th
    /// percentile), re-read at most once per second; `fallback` until the policy has
    /// timed at least `min_samples` calls (it times calls when it has a `timeout`).
    Percentile {
        /// The quantile, in (0, 1].
        q: f64,
        /// The delay while there are too few samples.
        fallback: Duration,
        /// How many timed calls the quantile needs.
        min_samples: u64,
    },
}

impl Hedge {
    /// Checks the quantile: it must lie in (0, 1].
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        match self {
            Hedge::Percentile { q, .. } if !(*q > 0.0 && *q <= 1.0) => Err(
                crate::ConfigError::new("hedge.q", format!("must be in (0, 1], got {q}")),
            ),
            _ => Ok(()),
        }
    }
}
