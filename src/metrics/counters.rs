//! Exact per-policy counters: lock-free, allocation-free after a thread's first record,
//! and without a single locked instruction on the hot path of a thread that owns a slot.

use crate::metrics::histogram::HistogramSnapshot;
use crate::metrics::shard::{Carries, Shard, ShardTable};
use crate::metrics::thread_slot::{self, Writer};
use crate::sync::{AtomicU64, Ordering};
use crate::{Outcome, RejectReason};
use crossbeam_utils::CachePadded;

/// Number of reject reasons (`RejectReason::ALL.len()`).
pub(crate) const REJECT_REASONS: usize = RejectReason::ALL.len();
/// Number of outcomes (`Outcome::ALL.len()`).
pub(crate) const OUTCOMES: usize = Outcome::ALL.len();
/// Number of breaker state codes counted in `transitions` (`0..=4`: closed, open,
/// half_open, forced_open, disabled — see [`crate::metrics::state_name`]).
pub(crate) const BREAKER_STATES: usize = crate::breaker::BreakerState::ALL.len();

/// Counters bumped by refused calls, retries and transitions.
struct Cold {
    /// Indexed by `RejectReason::index()`.
    rejected: [AtomicU64; REJECT_REASONS],
    retries: AtomicU64,
    /// Indexed by the breaker state code entered.
    transitions: [AtomicU64; BREAKER_STATES],
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The exact counters and latency histogram of one policy or standalone primitive.
///
/// Every `on_*` method never blocks, and allocates nothing except on a thread's first
/// record on this policy, which creates that thread's shard (about 1 KiB, once per
/// thread slot and policy, see the module docs). On a thread that owns a slot (64 slots,
/// one thread each at a time) the per-call methods are plain stores into that thread's
/// own shard; other threads use atomic adds. Counts are exact and wrap only after 2^64
/// events.
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
///
/// # Layout
///
/// | block     | counters                                                              | written by             |
/// |-----------|-----------------------------------------------------------------------|------------------------|
/// | `shards`  | one per thread slot that recorded here: permitted, completed × 4, slow, latency (sum and 260 32-bit buckets) | that slot's owner |
/// | shared    | the same, for threads without a slot                                   | any thread, atomic adds |
/// | `carries` | the high part of each latency bucket                                   | a shard's writer, once per 2^32 records of a bucket |
/// | `cold`    | rejected × 6 (budget refusals among them), retries, transitions × 5   | any thread, atomic adds |
///
/// A thread records into the shard of its slot (`src/metrics/thread_slot.rs`): it is the
/// only writer there, so each counter is a plain load and store instead of a lock-prefixed
/// add (about 5 ns each on the machines we measure), and the shard's cache line never
/// moves between cores. A call costs one store at acquire and three or four at
/// completion (the outcome, the bucket, the sum, `slow` when slow). A snapshot adds the
/// shards up. Rejections, retries and transitions are rarer and go straight to the
/// shared `cold` block with atomic adds.
///
/// # Memory
///
/// Shards are created lazily (`src/metrics/shard.rs`): a thread's first record on a
/// policy allocates its slot's shard (1,152 bytes, cache-padded) and publishes it; nothing
/// else ever allocates (but the policy's first carry, once, for its 1 KiB of carry
/// counters), and later threads in the same slot continue in the same shard. An idle
/// `PolicyMetrics` is its slot table (65 pointers), its carries' two counters and
/// pointer, and `cold` block: 768 bytes on every machine, and 1.1 KiB more for each
/// thread slot that records on it.
///
/// # The snapshot invariant
///
/// A snapshot taken while other threads record always satisfies
/// `latency.count ≤ success + failure + timeout + ignored ≤ permitted` and
/// `slow ≤ success + failure + timeout + ignored`. It rests on three rules:
///
/// 1. The caller calls [`on_permitted`](PolicyMetrics::on_permitted) *before* it hands the
///    permit out, so the increment of `permitted` happens-before the permit's completion
///    (program order on one thread, or the synchronization of the hand-off to another —
///    the completion may be recorded in another thread's shard).
/// 2. [`on_complete`](PolicyMetrics::on_complete) stores, in this order and each with
///    `Release`: the outcome's count, the latency bucket (when timed; or, when the bucket
///    is full, its reset and carry), `slow` (when slow).
/// 3. [`snapshot`](PolicyMetrics::snapshot) reads in the reverse order, each step over
///    every shard before the next: `slow`, the latency buckets and carries, the outcome
///    counts (all `Acquire`), and `permitted` last. Each step reloads the shard table, so
///    a shard whose counters an earlier step saw is found again by the later ones.
///
/// If the snapshot's Acquire load of a counter returns a value stored by some completion
/// (or a later one: a later store of the same single writer is itself Release and comes
/// after it in program order; on the shared shard the later read-modify-writes continue
/// the release sequence, and a snapshot that counts a carry also reads the bucket's reset
/// or a later value of it), it synchronizes with that completion. So everything that
/// happened-before the completion is visible to the snapshot's later loads: the
/// completion's earlier counters, and the `permitted` increment of its permit, in
/// whichever shard it was made (write-read coherence). Every completion the snapshot
/// counts therefore brings its permit into the `permitted` it reads, every timed one its
/// outcome count, every slow one its outcome count. Had the snapshot read `permitted`
/// first, or the completion counters with `Relaxed`, a completion could be seen without
/// its permit (the loom model `tests/loom_metrics.rs` fails with either change).
pub struct PolicyMetrics {
    /// One shard per thread slot that recorded here, and the shared one.
    shards: ShardTable,
    /// The high part of the shards' latency buckets.
    carries: Carries,
    cold: CachePadded<Cold>,
}

impl PolicyMetrics {
    /// All counters at zero. Allocates no shard yet (see the module docs).
    pub fn new() -> Self {
        Self {
            shards: ShardTable::new(),
            carries: Carries::new(),
            cold: CachePadded::new(Cold {
                rejected: zeros(),
                retries: AtomicU64::new(0),
                transitions: zeros(),
            }),
        }
    }

    /// A call was let through. Call it *before* handing the permit out (see the module
    /// docs: the snapshot invariant depends on it).
    #[inline]
    pub fn on_permitted(&self) {
        match self.shards.owned(thread_slot::peek()) {
            Some(own) => own.on_permitted(Writer::Owner),
            None => self.on_permitted_elsewhere(),
        }
    }

    // The paths for a thread's first record and for the shared shard stay out of line:
    // each caller then inlines only the owner's straight-line stores, with the writer
    // known at compile time. They claim the thread's slot if it has none yet.
    #[inline(never)]
    fn on_permitted_elsewhere(&self) {
        let (shard, writer) = self.shards.get_or_create(thread_slot::current());
        shard.on_permitted(writer);
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
        match self.shards.owned(thread_slot::peek()) {
            Some(own) => {
                own.on_complete(Writer::Owner, outcome, duration_nanos, slow, &self.carries)
            }
            None => self.on_complete_elsewhere(outcome, duration_nanos, slow),
        }
    }

    #[inline(never)]
    fn on_complete_elsewhere(&self, outcome: Outcome, duration_nanos: Option<u64>, slow: bool) {
        let (shard, writer) = self.shards.get_or_create(thread_slot::current());
        shard.on_complete(writer, outcome, duration_nanos, slow, &self.carries);
    }

    /// A retry attempt was started.
    #[inline]
    pub fn on_retry(&self) {
        // Relaxed: an independent statistic.
        self.cold.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The retry budget refused a retry: one more `RetryBudgetExhausted` rejection (the
    /// one counter of budget refusals).
    #[inline]
    pub fn on_budget_refused(&self) {
        self.on_rejected(RejectReason::RetryBudgetExhausted);
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

    /// Copies every counter, adding up the shards. Allocates the histogram copy; safe to
    /// call while other threads record (see the module docs for what is consistent). It
    /// waits (yielding) only while another thread is half-way through a latency carry,
    /// two instructions that happen once per 2^32 records of one bucket on one thread.
    pub fn snapshot(&self) -> MetricsSnapshot {
        // The read order is the proof of the invariant: slow, latency buckets, outcome
        // counts, permitted, each over every shard before the next. Acquire on each of
        // the first three: pairs with the Release stores of `on_complete`.
        let slow = self.sum_over_shards(|s| s.slow.load(Ordering::Acquire));
        let mut latency = HistogramSnapshot::default();
        latency.sum_nanos = self
            .carries
            .add_latency(self.shards.iter(), &mut latency.counts);
        latency.count = latency.counts.iter().fold(0u64, |a, &c| a.wrapping_add(c));
        let [success, failure, timeout, ignored] = std::array::from_fn(|i| {
            self.sum_over_shards(|s| s.completed[i].load(Ordering::Acquire))
        });
        // Relaxed: the Acquire loads above already made every needed increment visible;
        // coherence forbids these later loads from returning an older value.
        let permitted = self.sum_over_shards(|s| s.permitted.load(Ordering::Relaxed));
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
            transitions,
            latency,
        }
    }

    /// `read` of every shard, added up (wrapping).
    fn sum_over_shards(&self, read: impl Fn(&Shard) -> u64) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |total, shard| total.wrapping_add(read(shard)))
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
    /// Calls refused, indexed by [`RejectReason::index`]. A retry the retry budget
    /// refused is counted here, once, under [`RejectReason::RetryBudgetExhausted`].
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
        assert_eq!(
            s.rejected,
            [2, 1, 1, 1, 2, 1],
            "a budget refusal is a rejection"
        );
        assert_eq!(s.rejected_by(RejectReason::CircuitOpen), 2);
        assert_eq!(s.rejected_total(), 8);
        assert_eq!(s.retries, 2);
        assert_eq!(s.transitions, [0, 1, 0, 0, 1]);
        assert_eq!(s.latency.count, 2);
        assert_eq!(s.latency.sum_nanos, 3_000_000);
        assert_eq!(s.completed(), 4);
        assert_eq!(s.in_flight(), 1);
        for o in Outcome::ALL {
            assert_eq!(s.outcome(o), 1);
        }
    }

    #[test]
    fn every_thread_is_counted_with_or_without_a_slot() {
        // More threads than slots, all alive at once: some record into their own shard,
        // the rest into the shared one; every count arrives.
        let m = std::sync::Arc::new(PolicyMetrics::new());
        let threads = thread_slot::SLOTS + 6;
        let start = std::sync::Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (m, start) = (std::sync::Arc::clone(&m), std::sync::Arc::clone(&start));
                std::thread::spawn(move || {
                    // Every thread claims its slot (or finds none) before any exits.
                    let _ = thread_slot::current();
                    start.wait();
                    for i in 0..1_000u64 {
                        m.on_permitted();
                        m.on_complete(Outcome::Success, Some(2_000 + i), i % 10 == 0);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = m.snapshot();
        let n = threads as u64 * 1_000;
        assert_eq!(
            (s.permitted, s.success, s.slow, s.latency.count),
            (n, n, n / 10, n)
        );
        assert_eq!(
            s.latency.sum_nanos,
            threads as u64 * (2_000 * 1_000 + 999 * 1_000 / 2)
        );
        assert!(
            m.shards.shared().is_some(),
            "more threads than slots were alive: some wrote the shared shard"
        );
    }

    #[test]
    fn a_new_policy_has_no_shard_and_a_thread_creates_one() {
        let m = PolicyMetrics::new();
        assert_eq!(m.shards.iter().count(), 0);
        let _ = m.snapshot();
        assert_eq!(m.shards.iter().count(), 0, "a snapshot creates nothing");
        std::thread::scope(|s| {
            s.spawn(|| m.on_permitted());
        });
        assert_eq!(m.shards.iter().count(), 1);
        m.on_permitted();
        // This thread may have taken the exited one's slot over, and continued its shard.
        assert!((1..=2).contains(&m.shards.iter().count()));
        assert_eq!(m.snapshot().permitted, 2);
    }

    #[test]
    fn a_carry_keeps_the_snapshot_exact() {
        let m = PolicyMetrics::new();
        m.on_permitted();
        let (own, _) = m.shards.get_or_create(thread_slot::current());
        let index = crate::metrics::LatencyHistogram::bucket_index(7_000);
        own.preset_bucket(index, u32::MAX);
        m.on_complete(Outcome::Success, Some(7_000), false);
        let s = m.snapshot();
        assert_eq!(s.latency.counts[index], 1 << 32);
        assert_eq!(s.latency.count, 1 << 32);
        assert_eq!(s.latency.sum_nanos, 7_000);
    }
}
