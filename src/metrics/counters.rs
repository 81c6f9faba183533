//! Exact per-policy counters: lock-free, allocation-free, one cache line on the hot path.
//!
//! # Layout
//!
//! | block     | counters                                                      | touched by          |
//! |-----------|---------------------------------------------------------------|---------------------|
//! | `hot`     | permitted, untimed success/failure/timeout/ignored, slow (48 B) | every call          |
//! | `latency` | one [`LatencyHistogram`] per outcome (sum + 414 buckets each)  | every timed call    |
//! | `cold`    | rejected × 6, retries, budget refusals, transitions × 5       | rejections, retries |
//!
//! A completion is counted in exactly one place: the histogram of its outcome when its
//! duration is known, the `untimed` counter of its outcome otherwise. The snapshot's
//! `success` is therefore `untimed[success] + latency[success].count`. This saves one
//! atomic add per timed call (three instead of four: `permitted`, the bucket, the sum),
//! which matters because each locked add costs several nanoseconds (see the bench), at
//! the price of 4 × 3.3 KiB of buckets per policy. It also keeps latency per outcome
//! ([`PolicyMetrics::latency`]).
//!
//! Each block is [`CachePadded`]. The hot counters share *one* line on purpose: every
//! call touches `permitted` and one outcome counter, so under contention the line moves
//! between cores once per call instead of once per counter; padding each counter apart
//! would only multiply the line transfers. The padding keeps the hot line away from the
//! rejection counters (written by callers that were refused, often in bursts) and from
//! whatever the policy stores next to its metrics.
//!
//! # The snapshot invariant
//!
//! A snapshot taken while other threads record always satisfies
//! `latency.count ≤ success + failure + timeout + ignored ≤ permitted` and
//! `slow ≤ success + failure + timeout + ignored`. It rests on three rules:
//!
//! 1. The caller calls [`on_permitted`](PolicyMetrics::on_permitted) *before* it hands the
//!    permit out, so the increment of `permitted` happens-before the permit's completion
//!    (program order on one thread, or the synchronization of the hand-off to another).
//! 2. [`on_complete`](PolicyMetrics::on_complete) increments the completion's one counter
//!    (its outcome's latency bucket, or its outcome's untimed counter), then `slow`, each
//!    with `Release`.
//! 3. [`snapshot`](PolicyMetrics::snapshot) reads in the reverse order: `slow`, then the
//!    latency buckets and untimed counters (all `Acquire`), and `permitted` last.
//!
//! If the snapshot's Acquire load of a completion counter sees the increment of some
//! completion (or any later increment: the later `fetch_add`s continue the release
//! sequence), it synchronizes with that completion, so the `permitted` increment of the
//! same permit, which happened-before it by rule 1, is visible to the later load of
//! `permitted` (write-read coherence). Every completion the snapshot counts therefore
//! brings its own permit into the `permitted` it reads. The same argument one step
//! earlier gives `slow ≤ completions`; `latency.count ≤ completions` holds because the
//! timed completions *are* the latency counts. Had the snapshot read `permitted` first,
//! or the completion counters with `Relaxed`, a completion could be seen without its
//! permit (the loom model `tests/loom_metrics.rs` fails with either change).

use crate::metrics::histogram::{HistogramSnapshot, LatencyHistogram};
use crate::sync::{AtomicU64, Ordering};
use crate::{Outcome, RejectReason};
use crossbeam_utils::CachePadded;

/// Number of reject reasons (`RejectReason::ALL.len()`).
pub const REJECT_REASONS: usize = RejectReason::ALL.len();
/// Number of outcomes (`Outcome::ALL.len()`).
pub const OUTCOMES: usize = Outcome::ALL.len();
/// Number of breaker state codes counted in `transitions` (`0..=4`: closed, open,
/// half_open, forced_open, disabled — see [`crate::metrics::state_name`]).
pub const BREAKER_STATES: usize = 5;

/// Counters bumped by every call.
struct Hot {
    permitted: AtomicU64,
    /// Completions without a duration, indexed by `Outcome as usize`.
    untimed: [AtomicU64; OUTCOMES],
    slow: AtomicU64,
}

/// Counters bumped by refused calls, retries and transitions.
struct Cold {
    /// Indexed by `RejectReason::index()`.
    rejected: [AtomicU64; REJECT_REASONS],
    retries: AtomicU64,
    budget_refusals: AtomicU64,
    /// Indexed by the breaker state code entered.
    transitions: [AtomicU64; BREAKER_STATES],
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The exact counters and latency histogram of one policy or standalone primitive.
///
/// Every `on_*` method is one to three atomic adds, allocates nothing and never blocks.
/// Counters are `u64` and wrap only after 2^64 events.
///
/// ```
/// use breakwater::metrics::PolicyMetrics;
/// use breakwater::{Outcome, RejectReason};
///
/// let m = PolicyMetrics::new();
/// m.on_permitted(); // before the permit is handed out
/// m.on_complete(Outcome::Success, Some(2_500_000), false);
/// m.on_rejected(RejectReason::RateLimited);
/// let s = m.snapshot();
/// assert_eq!((s.permitted, s.success, s.rejected[RejectReason::RateLimited.index()]), (1, 1, 1));
/// assert_eq!(s.latency.count, 1);
/// ```
pub struct PolicyMetrics {
    hot: CachePadded<Hot>,
    /// Timed completions, one histogram per outcome (indexed by `Outcome as usize`).
    latency: CachePadded<[LatencyHistogram; OUTCOMES]>,
    cold: CachePadded<Cold>,
}

impl PolicyMetrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Self {
            hot: CachePadded::new(Hot {
                permitted: AtomicU64::new(0),
                untimed: zeros(),
                slow: AtomicU64::new(0),
            }),
            latency: CachePadded::new(std::array::from_fn(|_| LatencyHistogram::new())),
            cold: CachePadded::new(Cold {
                rejected: zeros(),
                retries: AtomicU64::new(0),
                budget_refusals: AtomicU64::new(0),
                transitions: zeros(),
            }),
        }
    }

    /// A call was let through. Call it *before* handing the permit out (see the module
    /// docs: the snapshot invariant depends on it).
    #[inline]
    pub fn on_permitted(&self) {
        // Relaxed: this increment publishes nothing by itself. It must happen-before the
        // permit's completion increment, which program order (same thread) or the permit
        // hand-off (another thread) already guarantees; the completion's Release then
        // carries it to a snapshot.
        self.hot.permitted.fetch_add(1, Ordering::Relaxed);
    }

    /// A call was refused with `reason`.
    #[inline]
    pub fn on_rejected(&self, reason: RejectReason) {
        // Relaxed: rejections take part in no cross-counter invariant.
        if let Some(c) = self.cold.rejected.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A permit completed with `outcome`, after `duration_nanos` when the caller measured
    /// it (recorded in the latency histogram), `slow` when it exceeded the policy's slow
    /// call threshold.
    #[inline]
    pub fn on_complete(&self, outcome: Outcome, duration_nanos: Option<u64>, slow: bool) {
        let i = outcome as usize;
        match duration_nanos {
            // The bucket add inside is Release, for the same reason as below.
            Some(nanos) => {
                if let Some(h) = self.latency.get(i) {
                    h.record_nanos(nanos);
                }
            }
            None => {
                if let Some(c) = self.hot.untimed.get(i) {
                    // Release: a snapshot that sees this increment with its Acquire load
                    // must also see this permit's `permitted` increment, which
                    // happened-before this point. Relaxed would break
                    // `completions ≤ permitted` in snapshots.
                    c.fetch_add(1, Ordering::Release);
                }
            }
        }
        if slow {
            // Release: a snapshot reads `slow` first with Acquire, so it then sees the
            // outcome increment above: keeps `slow ≤ completions`.
            self.hot.slow.fetch_add(1, Ordering::Release);
        }
    }

    /// A retry attempt was started.
    #[inline]
    pub fn on_retry(&self) {
        // Relaxed: an independent statistic.
        self.cold.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The retry budget refused a retry.
    #[inline]
    pub fn on_budget_refused(&self) {
        // Relaxed: an independent statistic.
        self.cold.budget_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// The breaker entered the state with code `to` (`0..=4`, see
    /// [`crate::metrics::state_name`]); other codes are not counted.
    #[inline]
    pub fn on_transition(&self, to: u8) {
        if let Some(c) = self.cold.transitions.get(to as usize) {
            // Relaxed: an independent statistic.
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The latency histogram of the completions with `outcome` (for a per-outcome
    /// histogram snapshot). Values recorded here directly count as completions.
    pub fn latency(&self, outcome: Outcome) -> &LatencyHistogram {
        &self.latency[outcome as usize]
    }

    /// Copies every counter. Allocates the histogram copy; safe to call while other
    /// threads record (see the module docs for what is consistent).
    pub fn snapshot(&self) -> MetricsSnapshot {
        // The read order is the proof of the invariant: slow, completions, permitted.
        // Acquire on each: pairs with the Release increments of `on_complete`.
        let slow = self.hot.slow.load(Ordering::Acquire);
        let timed: [HistogramSnapshot; OUTCOMES] =
            std::array::from_fn(|i| self.latency[i].snapshot());
        let untimed: [u64; OUTCOMES] =
            std::array::from_fn(|i| self.hot.untimed[i].load(Ordering::Acquire));
        let [success, failure, timeout, ignored] =
            std::array::from_fn(|i| untimed[i].wrapping_add(timed[i].count));
        let latency = HistogramSnapshot::merged(&timed);
        // Relaxed: the Acquire loads above already made every needed increment visible;
        // coherence forbids this later load from returning an older value.
        let permitted = self.hot.permitted.load(Ordering::Relaxed);
        // Relaxed: independent statistics.
        let rejected = std::array::from_fn(|i| self.cold.rejected[i].load(Ordering::Relaxed));
        let transitions = std::array::from_fn(|i| self.cold.transitions[i].load(Ordering::Relaxed));
        MetricsSnapshot {
            permitted,
            rejected,
            success,
            failure,
            timeout,
            ignored,
            slow,
            retries: self.cold.retries.load(Ordering::Relaxed),
            budget_refusals: self.cold.budget_refusals.load(Ordering::Relaxed),
            transitions,
            latency,
        }
    }
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PolicyMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PolicyMetrics")
            .field(&self.snapshot())
            .finish()
    }
}

/// A plain copy of a [`PolicyMetrics`].
///
/// Taken while others record, it satisfies
/// `latency.count ≤ success + failure + timeout + ignored ≤ permitted` and
/// `slow ≤ success + failure + timeout + ignored`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Calls let through.
    pub permitted: u64,
    /// Calls refused, indexed by [`RejectReason::index`].
    pub rejected: [u64; REJECT_REASONS],
    /// Completions with [`Outcome::Success`].
    pub success: u64,
    /// Completions with [`Outcome::Failure`].
    pub failure: u64,
    /// Completions with [`Outcome::Timeout`].
    pub timeout: u64,
    /// Completions with [`Outcome::Ignored`].
    pub ignored: u64,
    /// Completions slower than the slow-call threshold.
    pub slow: u64,
    /// Retry attempts started.
    pub retries: u64,
    /// Retries refused by the retry budget.
    pub budget_refusals: u64,
    /// Breaker transitions, indexed by the state code entered (`0..=4`).
    pub transitions: [u64; BREAKER_STATES],
    /// Latency of the completions that reported a duration.
    pub latency: HistogramSnapshot,
}

impl MetricsSnapshot {
    /// Completions of every outcome.
    pub fn completed(&self) -> u64 {
        self.success
            .wrapping_add(self.failure)
            .wrapping_add(self.timeout)
            .wrapping_add(self.ignored)
    }

    /// Completions with `outcome`.
    pub fn outcome(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Success => self.success,
            Outcome::Failure => self.failure,
            Outcome::Timeout => self.timeout,
            Outcome::Ignored => self.ignored,
        }
    }

    /// Rejections with `reason`.
    pub fn rejected_by(&self, reason: RejectReason) -> u64 {
        self.rejected.get(reason.index()).copied().unwrap_or(0)
    }

    /// Rejections of every reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().fold(0u64, |a, &c| a.wrapping_add(c))
    }

    /// Permits handed out and not yet completed (as of the snapshot).
    pub fn in_flight(&self) -> u64 {
        self.permitted.saturating_sub(self.completed())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_counter_lands_in_its_slot() {
        let m = PolicyMetrics::new();
        for _ in 0..5 {
            m.on_permitted();
        }
        m.on_complete(Outcome::Success, Some(1_000_000), false);
        m.on_complete(Outcome::Failure, None, true);
        m.on_complete(Outcome::Timeout, Some(2_000_000), true);
        m.on_complete(Outcome::Ignored, None, false);
        for r in RejectReason::ALL {
            m.on_rejected(r);
        }
        m.on_rejected(RejectReason::CircuitOpen);
        m.on_retry();
        m.on_retry();
        m.on_budget_refused();
        m.on_transition(1);
        m.on_transition(4);
        m.on_transition(200); // ignored, no panic
        let s = m.snapshot();
        assert_eq!(s.permitted, 5);
        assert_eq!((s.success, s.failure, s.timeout, s.ignored), (1, 1, 1, 1));
        assert_eq!(s.slow, 2);
        assert_eq!(s.rejected, [2, 1, 1, 1, 1, 1]);
        assert_eq!(s.rejected_by(RejectReason::CircuitOpen), 2);
        assert_eq!(s.rejected_total(), 7);
        assert_eq!((s.retries, s.budget_refusals), (2, 1));
        assert_eq!(s.transitions, [0, 1, 0, 0, 1]);
        assert_eq!(s.latency.count, 2);
        assert_eq!(s.latency.sum_nanos, 3_000_000);
        assert_eq!(m.latency(Outcome::Timeout).snapshot().sum_nanos, 2_000_000);
        assert_eq!(m.latency(Outcome::Failure).snapshot().count, 0);
        assert_eq!(s.completed(), 4);
        assert_eq!(s.in_flight(), 1);
        for o in Outcome::ALL {
            assert_eq!(s.outcome(o), 1);
        }
    }

    #[test]
    fn hot_counters_share_one_padded_line() {
        assert!(std::mem::size_of::<Hot>() <= 64);
        assert_eq!(
            std::mem::align_of::<PolicyMetrics>(),
            std::mem::align_of::<CachePadded<u8>>()
        );
    }
}
