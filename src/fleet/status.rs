//! Whether a fleet limit is on the fleet quota or on its `on_unavailable` fallback, why,
//! and when to try Redis again.
//!
//! The hot path reads one atomic (`mode`); everything else is written on the cold path
//! (a failed or recovered Redis call) under one mutex.

use crate::clock::duration_to_nanos;
use crate::sync::{AtomicU64, AtomicU8, Mutex, Ordering};
use std::time::Duration;

/// Redis answered the last call.
const MODE_FLEET: u8 = 0;
/// The last call failed: the limit follows `on_unavailable` until one succeeds.
const MODE_UNAVAILABLE: u8 = 1;

/// What the cold path keeps about the connection.
#[derive(Debug)]
struct Detail {
    /// The last failure, for health; empty while on the fleet quota.
    message: String,
    /// The current pause between attempts (doubles per failure, up to the cap).
    backoff_ns: u64,
}

/// Shared by a fleet limit's callers and its background thread.
#[derive(Debug)]
pub(crate) struct FleetStatus {
    /// `MODE_FLEET` or `MODE_UNAVAILABLE`. Nothing is published with it (the message sits
    /// behind the mutex), so Relaxed loads and stores suffice.
    mode: AtomicU8,
    /// Injected-clock time before which no caller tries Redis again (0 = any time).
    /// Relaxed: a stale value only means one attempt too many or too few.
    next_attempt_ns: AtomicU64,
    /// Redis calls made (one round trip each; a `NOSCRIPT` retry counts again).
    pub(crate) round_trips: AtomicU64,
    /// Redis calls that failed (timeout, refused, error reply).
    pub(crate) failures: AtomicU64,
    /// Times the limit went back to the fleet quota after a failure.
    pub(crate) recoveries: AtomicU64,
    detail: Mutex<Detail>,
    min_backoff_ns: u64,
    max_backoff_ns: u64,
}

impl FleetStatus {
    /// Starts on the fleet quota; the first failure starts the backoff at `min`.
    pub(crate) fn new(min_backoff: Duration, max_backoff: Duration) -> Self {
        let min = duration_to_nanos(min_backoff).max(1);
        Self {
            mode: AtomicU8::new(MODE_FLEET),
            next_attempt_ns: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            detail: Mutex::new(Detail {
                message: String::new(),
                backoff_ns: 0,
            }),
            min_backoff_ns: min,
            max_backoff_ns: duration_to_nanos(max_backoff).max(min),
        }
    }

    /// Whether the limit is on its fallback.
    #[inline]
    pub(crate) fn is_unavailable(&self) -> bool {
        self.mode.load(Ordering::Relaxed) == MODE_UNAVAILABLE
    }

    /// Whether a caller may try Redis at `now` (always on the fleet quota; after the
    /// backoff otherwise).
    #[inline]
    pub(crate) fn may_attempt(&self, now: u64) -> bool {
        !self.is_unavailable() || now >= self.next_attempt_ns.load(Ordering::Relaxed)
    }

    /// Records a failed call at `now`: the limit falls back, the backoff doubles.
    #[cold]
    pub(crate) fn failed(&self, message: String, now: u64) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut d = self.detail.lock();
        d.backoff_ns = if d.backoff_ns == 0 {
            self.min_backoff_ns
        } else {
            d.backoff_ns.saturating_mul(2).min(self.max_backoff_ns)
        };
        d.message = message;
        self.next_attempt_ns
            .store(now.saturating_add(d.backoff_ns), Ordering::Relaxed);
        self.mode.store(MODE_UNAVAILABLE, Ordering::Relaxed);
    }

    /// Records a successful call: back on the fleet quota, backoff reset.
    #[inline]
    pub(crate) fn succeeded(&self) {
        if self.is_unavailable() {
            self.recovered();
        }
    }

    #[cold]
    fn recovered(&self) {
        let mut d = self.detail.lock();
        if self.mode.load(Ordering::Relaxed) == MODE_UNAVAILABLE {
            self.recoveries.fetch_add(1, Ordering::Relaxed);
        }
        d.backoff_ns = 0;
        d.message.clear();
        self.next_attempt_ns.store(0, Ordering::Relaxed);
        self.mode.store(MODE_FLEET, Ordering::Relaxed);
    }

    /// The last failure's message while unavailable, `None` on the fleet quota.
    pub(crate) fn message(&self) -> Option<String> {
        let d = self.detail.lock();
        self.is_unavailable().then(|| d.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_on_success() {
        let s = FleetStatus::new(Duration::from_millis(10), Duration::from_millis(35));
        assert!(s.may_attempt(0));
        s.failed("refused".into(), 1_000);
        assert!(s.is_unavailable());
        assert!(!s.may_attempt(1_000));
        assert!(s.may_attempt(1_000 + 10_000_000));
        s.failed("refused".into(), 0);
        assert!(!s.may_attempt(19_999_999));
        assert!(s.may_attempt(20_000_000));
        s.failed("refused".into(), 0);
        assert!(s.may_attempt(35_000_000), "capped at 35 ms");
        assert_eq!(s.message().as_deref(), Some("refused"));
        s.succeeded();
        assert!(!s.is_unavailable());
        assert_eq!(s.message(), None);
        assert_eq!(s.recoveries.load(Ordering::Relaxed), 1);
        assert_eq!(s.failures.load(Ordering::Relaxed), 3);
    }
}
