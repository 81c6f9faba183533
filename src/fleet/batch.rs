//! The pure batch decision: how many tokens a process leases at once.

use std::time::Duration;

/// The batch to lease: enough for `horizon` at the estimated local rate
/// (`rate_per_sec`), at least 1, at most `cap`, and at most twice the `previous` batch,
/// so a process that was idle grows its share step by step instead of taking the whole
/// burst at its first call.
pub(crate) fn batch_size(rate_per_sec: f64, horizon: Duration, cap: u64, previous: u64) -> u64 {
    let target = (rate_per_sec * horizon.as_secs_f64()).ceil();
    // `as` saturates for floats (NaN → 0, ∞ → u64::MAX); the clamp does the rest.
    let target = (target as u64).clamp(1, cap.max(1));
    target.min(previous.saturating_mul(2).max(1))
}

/// An exponentially weighted rate estimate (events per second), updated per interval.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateEstimate {
    per_sec: f64,
}

impl RateEstimate {
    /// Folds in `events` seen over `elapsed_ns` (ignored when no time passed).
    pub(crate) fn observe(&mut self, events: u64, elapsed_ns: u64) {
        if elapsed_ns == 0 {
            return;
        }
        let sample = events as f64 * 1e9 / elapsed_ns as f64;
        // Half weight to the newest interval: follows a change within a few refills.
        self.per_sec = 0.5 * self.per_sec + 0.5 * sample;
    }

    pub(crate) fn per_sec(&self) -> f64 {
        self.per_sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn batch_follows_rate_times_horizon() {
        let h = Duration::from_millis(100);
        assert_eq!(batch_size(1000.0, h, 1000, 1000), 100);
        assert_eq!(batch_size(0.0, h, 1000, 1000), 1);
        assert_eq!(batch_size(1e9, h, 64, 1000), 64);
        assert_eq!(batch_size(1000.0, h, 1000, 8), 16, "grows at most ×2");
        assert_eq!(batch_size(f64::NAN, h, 10, 10), 1);
    }

    #[test]
    fn estimate_converges() {
        let mut e = RateEstimate::default();
        for _ in 0..20 {
            e.observe(100, 100_000_000);
        }
        assert!((e.per_sec() - 1000.0).abs() < 1.0, "{}", e.per_sec());
        e.observe(5, 0);
        assert!((e.per_sec() - 1000.0).abs() < 1.0);
    }

    proptest! {
        #[test]
        fn batch_is_within_its_bounds(rate in 0.0f64..1e9, ms in 1u64..10_000, cap in 1u64..100_000, prev in 0u64..100_000) {
            let b = batch_size(rate, Duration::from_millis(ms), cap, prev);
            prop_assert!(b >= 1);
            prop_assert!(b <= cap);
            prop_assert!(b <= prev.saturating_mul(2).max(1));
        }
    }
}
