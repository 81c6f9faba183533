//! [`TokioClock`]: tokio's notion of time as a policy clock.

use crate::clock::{duration_to_nanos, AnyClock, Clock};

/// A [`Clock`] that reads [`tokio::time::Instant::now`]. Its time is the real monotonic
/// time in production, and in a test on tokio's paused clock
/// (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) it is that paused time:
/// a policy built on it (`AnyClock::custom(TokioClock::new())`) sees exactly the time
/// its timers sleep through, so breaker open periods, budgets and timeouts are
/// deterministic with no second clock to keep in step.
///
/// Build it on the runtime whose time it should read: tokio's paused time exists only
/// on the runtime's threads, so read elsewhere it is the real time.
///
/// ```
/// use breakwater::policy::{Policy, PolicyConfig};
/// use breakwater::tower::TokioClock;
///
/// let policy = Policy::with_clock(PolicyConfig::new("upstream"), TokioClock::new().into_any())
///     .expect("valid configuration");
/// assert!(policy.now() >= 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now (its first reading is 1 ns: 0 means "never" to the
    /// stages).
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }

    /// The clock as the [`AnyClock`] a [`Policy`](crate::policy::Policy) or an
    /// [`Engine`](crate::engine::Engine) is built with.
    pub fn into_any(self) -> AnyClock {
        AnyClock::custom(self)
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> u64 {
        duration_to_nanos(tokio::time::Instant::now().saturating_duration_since(self.origin))
            .saturating_add(1)
    }
}
