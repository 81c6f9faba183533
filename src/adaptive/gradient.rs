//! Gradient2: a latency-gradient limit, as Netflix concurrency-limits' `Gradient2Limit`.

use super::sample::Sample;
use crate::error::ConfigError;

/// Samples averaged plainly before the long RTT switches to exponential smoothing
/// (Netflix's warm-up window).
pub(crate) const LONG_RTT_WARMUP: u32 = 10;

/// Configuration of the Gradient2 algorithm.
///
/// ```
/// use breakwater::adaptive::Gradient2Config;
/// let g = Gradient2Config::default();
/// assert_eq!((g.smoothing, g.tolerance, g.long_window, g.queue_size), (0.2, 1.5, 600, 4));
/// assert!(g.validate().is_ok());
/// ```
///
/// The algorithm compares the latest round-trip time (the *short* RTT, one sample) with a
/// long-term exponentially smoothed RTT (the *long* RTT, the baseline). On every
/// completion:
///
/// ```text
/// long  = mean of the first 10 samples, then long·(1−f) + rtt·f with f = 2/(long_window+1)
/// short = rtt
/// if long / short > 2:              long = long · 0.9        (recover fast after an overload)
/// if in_flight < estimate / 2:      stop here                ("app limited": keep the limit)
/// gradient = clamp(tolerance · long / short, 0.5, 1.0)
/// next     = estimate · gradient + queue_size
/// estimate = clamp(estimate · (1 − smoothing) + next · smoothing, min_limit, max_limit)
/// limit    = floor(estimate)
/// ```
///
/// `in_flight` is the count when the completed call was admitted (itself included).
/// Gradient2 reacts to latency only: a `Failure` or `Timeout` outcome is one more RTT
/// sample, as in Netflix's implementation (timeouts are slow, so they push the limit
/// down through their RTT).
///
/// Why the limit cannot drift upward forever: the estimate is kept inside
/// `min_limit..=max_limit`, and it changes only when `in_flight >= estimate / 2`, so under
/// a steady offered concurrency `D` it stops growing near `2·D + queue_size` even when the
/// baseline RTT has caught up with a queue-inflated latency.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Gradient2Config {
    /// How much of each new estimate replaces the old one, in `(0, 1]`; smaller moves the
    /// limit more slowly. Default: 0.2.
    pub smoothing: f64,
    /// How much the current RTT may exceed the baseline before the limit shrinks; at
    /// least 1.0 (1.5 tolerates latency up to 1.5× the baseline). Default: 1.5.
    pub tolerance: f64,
    /// The number of samples the long (baseline) RTT averages over, at least 1. Default: 600.
    pub long_window: u32,
    /// How much the estimate may grow a step while latency stays low (the queue the
    /// limit allows for). Default: 4.
    pub queue_size: u32,
}

crate::builder::with_setters!(Gradient2Config {
    smoothing: f64 => with_smoothing,
    tolerance: f64 => with_tolerance,
    long_window: u32 => with_long_window,
    queue_size: u32 => with_queue_size,
});

impl Default for Gradient2Config {
    fn default() -> Self {
        Self {
            smoothing: 0.2,
            tolerance: 1.5,
            long_window: 600,
            queue_size: 4,
        }
    }
}

/// The mutable state of Gradient2, as plain numbers (the limiter keeps it in atomics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradient2State {
    /// The estimated limit, inside `min_limit..=max_limit`; the published limit is its
    /// floor.
    pub estimate: f64,
    /// The long-term (baseline) RTT in nanoseconds; 0 before the first sample.
    pub long_rtt: f64,
    /// Samples seen so far, saturating at the warm-up length (10 samples).
    pub warmup_samples: u32,
}

impl Gradient2State {
    /// The state before any sample.
    pub fn new(initial_limit: u32) -> Self {
        Self {
            estimate: f64::from(initial_limit),
            long_rtt: 0.0,
            warmup_samples: 0,
        }
    }
}

impl Gradient2Config {
    /// Checks every field; errors name them as in the policy file (`gradient.smoothing`,
    /// `gradient.tolerance`, `gradient.long_window`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(ConfigError::new(
                "gradient.smoothing",
                format!("must be in (0, 1], got {}", self.smoothing),
            ));
        }
        if !(self.tolerance >= 1.0 && self.tolerance.is_finite()) {
            return Err(ConfigError::new(
                "gradient.tolerance",
                format!(
                    "must be a finite number of at least 1.0, got {}",
                    self.tolerance
                ),
            ));
        }
        if self.long_window == 0 {
            return Err(ConfigError::new(
                "gradient.long_window",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The pure Gradient2 step: the state after `sample`, with the estimate inside
    /// `min..=max` (see the module docs for the formula).
    ///
    /// ```
    /// use breakwater::adaptive::{Gradient2Config, Gradient2State, Sample};
    /// let g = Gradient2Config::default();
    /// let mut state = Gradient2State::new(20);
    /// // Steady latency with the limit in use: the estimate grows by smoothing·queue_size.
    /// for _ in 0..10 {
    ///     state = g.update(state, Sample { rtt_ns: 1_000_000, in_flight: 20, dropped: false }, 1, 200);
    /// }
    /// assert!(state.estimate > 27.9 && state.estimate < 28.1);
    /// // Ten times slower: the estimate shrinks.
    /// let slow = g.update(state, Sample { rtt_ns: 10_000_000, in_flight: 28, dropped: false }, 1, 200);
    /// assert!(slow.estimate < state.estimate);
    /// ```
    #[inline]
    pub fn update(
        &self,
        state: Gradient2State,
        sample: Sample,
        min: u32,
        max: u32,
    ) -> Gradient2State {
        let rtt = sample.rtt_ns.max(1) as f64;
        let (mut long, warmup_samples) = if state.warmup_samples < LONG_RTT_WARMUP {
            let n = f64::from(state.warmup_samples);
            (
                (state.long_rtt * n + rtt) / (n + 1.0),
                state.warmup_samples + 1,
            )
        } else {
            let factor = 2.0 / (f64::from(self.long_window) + 1.0);
            (
                state.long_rtt * (1.0 - factor) + rtt * factor,
                state.warmup_samples,
            )
        };
        let short = rtt;
        if long / short > 2.0 {
            long *= 0.9;
        }
        let mut next = Gradient2State {
            estimate: state.estimate,
            long_rtt: long,
            warmup_samples,
        };
        if f64::from(sample.in_flight) < state.estimate / 2.0 {
            return next;
        }
        let gradient = (self.tolerance * long / short).clamp(0.5, 1.0);
        let target = state.estimate * gradient + f64::from(self.queue_size);
        let smoothed = state.estimate * (1.0 - self.smoothing) + target * self.smoothing;
        let (lo, hi) = (f64::from(min), f64::from(max.max(min)));
        // `smoothed` is finite: every input is finite and bounded (rtt ≥ 1).
        next.estimate = smoothed.clamp(lo, hi);
        next
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn s(rtt_ns: u64, in_flight: u32) -> Sample {
        Sample {
            rtt_ns,
            in_flight,
            dropped: false,
        }
    }

    #[test]
    fn warm_up_averages_then_smooths() {
        let g = Gradient2Config::default();
        let mut st = Gradient2State::new(20);
        st = g.update(st, s(100, 0), 1, 200);
        assert_eq!(st.long_rtt, 100.0);
        st = g.update(st, s(200, 0), 1, 200);
        assert_eq!(st.long_rtt, 150.0);
        assert_eq!(st.estimate, 20.0, "app limited: unchanged");
        for _ in 0..20 {
            st = g.update(st, s(150, 0), 1, 200);
        }
        assert_eq!(st.warmup_samples, LONG_RTT_WARMUP);
        assert!((st.long_rtt - 150.0).abs() < 1e-9);
    }

    #[test]
    fn shrinks_at_most_by_half_gradient_and_stays_in_bounds() {
        let g = Gradient2Config {
            smoothing: 1.0,
            queue_size: 0,
            ..Gradient2Config::default()
        };
        let st = Gradient2State {
            estimate: 100.0,
            long_rtt: 1_000.0,
            warmup_samples: LONG_RTT_WARMUP,
        };
        let next = g.update(st, s(1_000_000, 100), 1, 200);
        assert_eq!(next.estimate, 50.0);
        let floor = g.update(st, s(1_000_000, 100), 80, 200);
        assert_eq!(floor.estimate, 80.0);
    }

    #[test]
    fn long_rtt_recovers_quickly_after_overload() {
        let g = Gradient2Config::default();
        let st = Gradient2State {
            estimate: 10.0,
            long_rtt: 10_000.0,
            warmup_samples: LONG_RTT_WARMUP,
        };
        let next = g.update(st, s(1_000, 0), 1, 200);
        assert!(next.long_rtt < 10_000.0 * 0.9 + 1.0);
    }

    #[test]
    fn validation_names_fields() {
        let d = Gradient2Config::default();
        let bad = |c: Gradient2Config| c.validate().unwrap_err().field;
        assert_eq!(
            bad(Gradient2Config {
                smoothing: 0.0,
                ..d
            }),
            "gradient.smoothing"
        );
        assert_eq!(
            bad(Gradient2Config {
                smoothing: 1.5,
                ..d
            }),
            "gradient.smoothing"
        );
        assert_eq!(
            bad(Gradient2Config {
                tolerance: 0.9,
                ..d
            }),
            "gradient.tolerance"
        );
        assert_eq!(
            bad(Gradient2Config {
                tolerance: f64::INFINITY,
                ..d
            }),
            "gradient.tolerance"
        );
        assert_eq!(
            bad(Gradient2Config {
                long_window: 0,
                ..d
            }),
            "gradient.long_window"
        );
    }
}
