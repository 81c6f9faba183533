//! The retry budget: retries may add at most a `ratio` of the traffic, plus a floor of
//! `min_per_second`, over a sliding window (as Finagle's and tower's retry budgets).

use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::error::ConfigError;
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// The number of time buckets a budget's window is split into.
pub(crate) const BUCKETS: usize = 10;

/// The largest `budget.ratio`: retries may be at most ten times the traffic (Finagle's
/// bound); beyond that a budget no longer limits anything.
pub(crate) const MAX_RATIO: f64 = 1000.0;

/// The shortest `budget.window`.
pub(crate) const MIN_WINDOW: Duration = Duration::from_secs(1);

/// The longest `budget.window`.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(60);

/// Configuration of a [`RetryBudget`].
///
/// Defaults: `ratio` 0.2, `min_per_second` 10, `window` 10 s.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BudgetConfig {
    /// Retries allowed per request in the window (0.2 = retries add at most 20 % of the
    /// traffic). Finite, in `0 ..= 1000`. Default 0.2.
    pub ratio: f64,
    /// Retries allowed per second of window regardless of traffic, so a quiet service can
    /// still retry. Default 10.
    pub min_per_second: u32,
    /// The sliding window over which requests and retries are counted, split in
    /// 10 buckets. In `1 s ..= 60 s`. Default 10 s.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

impl BudgetConfig {
    /// The same configuration with `ratio` set.
    pub fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }

    /// The same configuration with `min_per_second` set.
    pub fn with_min_per_second(mut self, min_per_second: u32) -> Self {
        self.min_per_second = min_per_second;
        self
    }

    /// The same configuration with `window` set.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Checks every field; errors name `budget.ratio`, `budget.min_per_second` or
    /// `budget.window`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.ratio.is_finite() || !(0.0..=MAX_RATIO).contains(&self.ratio) {
            return Err(ConfigError::new(
                "budget.ratio",
                format!("must be a number in 0..=1000, got {}", self.ratio),
            ));
        }
        if self.ratio == 0.0 && self.min_per_second == 0 {
            return Err(ConfigError::new(
                "budget.min_per_second",
                "with budget.ratio = 0 it must be greater than zero, or the budget refuses \
                 every retry (set max_attempts = 1 to disable retries)",
            ));
        }
        if self.window < MIN_WINDOW || self.window > MAX_WINDOW {
            return Err(ConfigError::new(
                "budget.window",
                format!("must be between 1s and 60s, got {:?}", self.window),
            ));
        }
        Ok(())
    }
}

/// What a [`RetryBudget`] holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetSnapshot {
    /// First attempts recorded in the window.
    pub requests: u64,
    /// Retries granted in the window.
    pub retries: u64,
    /// Retries that would be granted now, one after the other, with no new requests.
    pub available: u64,
}

// A bucket word (the head, a retry-ring slot or a request-ring slot):
//
// | bits   | field | meaning                                                      |
// |--------|-------|--------------------------------------------------------------|
// | 63..32 | epoch | bucket index since construction, modulo 2^32 (wrapping order) |
// | 31..0  | count | requests or retries counted in that bucket (saturating)       |
//
// A word whose epoch lies outside the window counts as zero. The all-zero word is
// "bucket 0, nothing counted", so a fresh budget needs no initialization pass. With
// buckets of at least 100 ms, epochs wrap after 13.6 years; comparisons use wrapping
// differences, so a wrap is harmless unless a slot stays untouched for 2^31 buckets.
const EPOCH_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << EPOCH_SHIFT) - 1;

#[inline]
const fn pack(epoch: u32, count: u32) -> u64 {
    ((epoch as u64) << EPOCH_SHIFT) | count as u64
}

#[inline]
const fn epoch_of(word: u64) -> u32 {
    (word >> EPOCH_SHIFT) as u32
}

#[inline]
const fn count_of(word: u64) -> u32 {
    (word & COUNT_MASK) as u32
}

/// Whether epoch `a` is later than epoch `b`, in wrapping order.
#[inline]
const fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Pure: the request-slot word after one deposit at `now_epoch`. A slot holding an older
/// bucket restarts at 1; a slot holding this bucket (or, for a thread with a stale clock
/// reading, a newer one) counts one more.
#[inline]
const fn deposit(word: u64, now_epoch: u32) -> u64 {
    let epoch = epoch_of(word);
    if is_after(now_epoch, epoch) {
        pack(now_epoch, 1)
    } else {
        pack(epoch, count_of(word).saturating_add(1))
    }
}

/// Pure: the retry-ring slot word after archiving `(epoch, count)`, or `None` when the
/// slot already holds that bucket with at least this count (or a later bucket). Keeps
/// the slot monotonic, so an archiver holding an old reading cannot lower it.
#[inline]
const fn archive(word: u64, epoch: u32, count: u32) -> Option<u64> {
    let slot_epoch = epoch_of(word);
    if is_after(epoch, slot_epoch) || (epoch == slot_epoch && count > count_of(word)) {
        Some(pack(epoch, count))
    } else {
        None
    }
}

/// Pure: the bucket a withdrawal at `now_epoch` acts in: the later of now and the head's
/// bucket (a thread with a stale clock reading counts in the head's bucket).
#[inline]
const fn current_epoch(head: u64, now_epoch: u32) -> u32 {
    let head_epoch = epoch_of(head);
    if is_after(now_epoch, head_epoch) {
        now_epoch
    } else {
        head_epoch
    }
}

/// Pure: the withdrawal decision. Given the head word, the bucket `current` (from
/// [`current_epoch`]), the retries of the window's earlier buckets and the allowance,
/// returns the new head word for a grant, or `None` for a refusal.
#[inline]
const fn withdraw(head: u64, current: u32, earlier_retries: u64, allowance: u64) -> Option<u64> {
    let in_current = if epoch_of(head) == current {
        count_of(head)
    } else {
        0
    };
    let retries = earlier_retries + in_current as u64;
    if retries < allowance && in_current < u32::MAX {
        Some(pack(current, in_current + 1))
    } else {
        None
    }
}

/// The atomic state of a budget: a fixed-size, pointer-free block.
#[derive(Debug)]
#[repr(C)]
struct BudgetState {
    /// The bucket of the latest withdrawal and the retries granted in it.
    head: CachePadded<AtomicU64>,
    /// Archived retry counts of earlier buckets, slot `epoch % BUCKETS`.
    retries: [AtomicU64; BUCKETS],
    /// Request counts, slot `epoch % BUCKETS`.
    requests: CachePadded<[AtomicU64; BUCKETS]>,
}

/// A lock-free, allocation-free retry budget: retries may add at most a `ratio` of the
/// traffic, plus a floor of `min_per_second`, over a sliding window (as Finagle's and
/// tower's retry budgets).
///
/// Shared by every call of a policy (wrap it in an `Arc` or keep it in the policy); each
/// call's first attempt calls [`record_request`](Self::record_request) and each retry
/// asks [`try_withdraw`](Self::try_withdraw) (the [`RetryState`](super::RetryState) does
/// that when given the budget).
///
/// # Rule
///
/// Time since construction is cut into `BUCKETS` = 10 buckets of `window / BUCKETS` each;
/// the *window* at a moment is the current bucket and the `BUCKETS − 1` before it. Every
/// first attempt deposits ([`RetryBudget::record_request`]); every retry withdraws
/// ([`RetryBudget::try_withdraw`]). With `R` requests and `W` granted retries in the
/// window, a withdrawal is granted if and only if
///
/// ```text
/// W + 1 ≤ floor(ratio · R + min_per_second · window_seconds)
/// ```
///
/// and is then counted in the current bucket; a refusal is final (nothing is queued).
/// So at every grant, the retries in the window never exceed `ratio · requests +
/// min_per_second · seconds` of that window, and over any run, the granted retries are
/// at most `ratio · (all requests) + min_per_second · window_seconds · k`, where `k` is the
/// number of windows the run spans. Both requests and retries age out of the window
/// bucket by bucket, so the `min_per_second` floor refills at that rate on average.
///
/// `window` must lie in 1 s ..= 60 s (Finagle's bounds): long enough that the bucket
/// granularity (a tenth of it) is not noise, short enough that the budget follows
/// traffic changes. If `window` is not a multiple of 10 ns the bucket width is rounded
/// down.
///
/// # Concurrency
///
/// All state is a fixed-size block of atomic words (no pointers, no allocation after
/// construction). Deposits are a compare-exchange on one bucket word. Withdrawals are
/// serialized by one *head* word holding the current bucket's retry count: a grant is
/// the successful compare-exchange of the head, made after reading a window that cannot
/// change while the head is unchanged, so racing withdrawals never exceed the allowance.
/// When time moves past the head's bucket, the withdrawer first archives the head's count
/// into the retry ring (a monotonic max, so stale archivers cannot lower it), and only
/// then moves the head.
///
/// ```
/// use breakwater::clock::ManualClock;
/// use breakwater::retry::{BudgetConfig, RetryBudget};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let config = BudgetConfig::default()
///     .with_ratio(0.5)
///     .with_min_per_second(0)
///     .with_window(Duration::from_secs(1));
/// let budget = RetryBudget::with_clock(config, clock.clone()).unwrap();
/// for _ in 0..4 {
///     budget.record_request();
/// }
/// assert!(budget.try_withdraw());
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw(), "0.5 · 4 requests = 2 retries");
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(budget.snapshot().requests, 0, "the requests aged out");
/// ```
#[derive(Debug)]
pub struct RetryBudget<C: Clock = AnyClock> {
    config: BudgetConfig,
    clock: C,
    /// The clock reading at construction; bucket 0 starts here.
    origin: u64,
    bucket_nanos: u64,
    /// `min_per_second · window_seconds`, the traffic-independent part of the allowance.
    reserve: f64,
    state: BudgetState,
}

impl RetryBudget<AnyClock> {
    /// A budget on [`AnyClock::Coarse`] (ample for buckets of 100 ms or more). See
    /// `clock.rs` for the rule every type follows.
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, AnyClock::Coarse)
    }
}

impl<C: Clock> RetryBudget<C> {
    /// A budget reading time from `clock`.
    pub fn with_clock(config: BudgetConfig, clock: C) -> Result<Self, ConfigError> {
        config.validate()?;
        let window_nanos = duration_to_nanos(config.window);
        let origin = clock.now();
        Ok(Self {
            config,
            clock,
            origin,
            bucket_nanos: window_nanos / BUCKETS as u64,
            reserve: f64::from(config.min_per_second) * config.window.as_secs_f64(),
            state: BudgetState {
                head: CachePadded::new(AtomicU64::new(pack(0, 0))),
                retries: std::array::from_fn(|_| AtomicU64::new(pack(0, 0))),
                requests: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(pack(0, 0)))),
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Records one request (a first attempt), adding `ratio` retries to the allowance for
    /// one window. Lock-free, allocation-free.
    #[inline]
    pub fn record_request(&self) {
        let now = self.epoch(self.clock.now());
        let slot = &self.state.requests[now as usize % BUCKETS];
        // Relaxed: a deposit publishes nothing but its count. Withdrawals read request
        // counts without ordering; a reading that misses a concurrent deposit only
        // under-counts requests, which can refuse a retry but never over-grant one.
        // (A deposit that precedes a thread's own grant is still seen by every later
        // withdrawal, through the Release/Acquire chain on the head.)
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            Some(deposit(w, now))
        });
    }

    /// Asks for one retry: `true` if granted (and counted), `false` if the budget is spent.
    /// A refusal is final; nothing is queued. Lock-free, allocation-free.
    #[inline]
    pub fn try_withdraw(&self) -> bool {
        let now = self.epoch(self.clock.now());
        // Acquire: synchronizes with the Release of the compare-exchange that moved the
        // head to this value (and, through the release sequence of read-modify-writes on
        // the head, with every earlier move), so the ring reads below see every bucket
        // archived before the head moved past it. Relaxed could read an older ring slot
        // and miss archived retries, over-granting.
        let mut head = self.state.head.load(Ordering::Acquire);
        loop {
            let current = current_epoch(head, now);
            if current != epoch_of(head) {
                // Time moved past the head's bucket: archive it before any thread can
                // move the head (our compare-exchange below publishes it).
                self.archive(head);
            }
            let earlier = self.earlier_retries(current);
            let allowance = self.allowance(self.requests_in_window(current));
            let Some(next) = withdraw(head, current, earlier, allowance) else {
                return false;
            };
            // Success AcqRel: Release publishes the archive above to every later Acquire
            // of the head; Acquire is not needed for the grant itself but keeps the
            // success and failure orderings symmetric. Failure Acquire: the value read
            // is the next `head` of this loop and must carry its archives, as above.
            match self.state.head.compare_exchange_weak(
                head,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => head = actual,
            }
        }
    }

    /// The requests and retries in the window now, and how many retries would be granted.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let now = self.epoch(self.clock.now());
        // Acquire: as in `try_withdraw`, so the ring reads see the archived buckets.
        let head = self.state.head.load(Ordering::Acquire);
        let current = current_epoch(head, now);
        let in_current = if epoch_of(head) == current {
            u64::from(count_of(head))
        } else {
            // Time moved past the head's bucket: archive it (as a withdrawal would) so
            // the ring holds it, then read it from there.
            self.archive(head);
            0
        };
        let retries = self.earlier_retries(current) + in_current;
        let requests = self.requests_in_window(current);
        BudgetSnapshot {
            requests,
            retries,
            available: self.allowance(requests).saturating_sub(retries),
        }
    }

    /// The bucket index of clock reading `now` (a reading before construction is bucket 0).
    #[inline]
    fn epoch(&self, now: u64) -> u32 {
        // Truncation to 32 bits is the documented wrap of epochs.
        (now.saturating_sub(self.origin) / self.bucket_nanos) as u32
    }

    /// `floor(ratio · requests + reserve)`, saturating.
    #[inline]
    fn allowance(&self, requests: u64) -> u64 {
        let allowance = self.config.ratio * requests as f64 + self.reserve;
        // Float-to-int `as` floors positive values and saturates at u64::MAX.
        allowance as u64
    }

    /// Archives the head's bucket into the retry ring (monotonic max).
    #[cold]
    fn archive(&self, head: u64) {
        let (epoch, count) = (epoch_of(head), count_of(head));
        let slot = &self.state.retries[epoch as usize % BUCKETS];
        // Relaxed: the archive is published by the Release compare-exchange of the head
        // that follows it in this thread; nothing is read through it here.
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            archive(w, epoch, count)
        });
    }

    /// Retries archived for the window's buckets before `current` (the head holds those
    /// of `current` itself).
    #[inline]
    fn earlier_retries(&self, current: u32) -> u64 {
        self.state
            .retries
            .iter()
            .map(|slot| {
                // Relaxed: ordered after the Acquire load of the head by program order;
                // see `try_withdraw`.
                let w = slot.load(Ordering::Relaxed);
                let age = current.wrapping_sub(epoch_of(w));
                if (1..BUCKETS as u32).contains(&age) {
                    u64::from(count_of(w))
                } else {
                    0
                }
            })
            .sum()
    }

    /// Requests counted in the window ending with bucket `current`.
    #[inline]
    fn requests_in_window(&self, current: u32) -> u64 {
        self.state
            .requests
            .iter()
            .map(|slot| {
                // Relaxed: see `record_request`.
                let w = slot.load(Ordering::Relaxed);
                if current.wrapping_sub(epoch_of(w)) < BUCKETS as u32 {
                    u64::from(count_of(w))
                } else {
                    0
                }
            })
            .sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn budget(
        ratio: f64,
        min_per_second: u32,
        window_secs: u64,
    ) -> (RetryBudget<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let config = BudgetConfig {
            ratio,
            min_per_second,
            window: Duration::from_secs(window_secs),
        };
        (
            RetryBudget::with_clock(config, clock.clone()).unwrap(),
            clock,
        )
    }

    #[test]
    fn defaults_are_valid() {
        let c = BudgetConfig::default();
        assert_eq!(
            (c.ratio, c.min_per_second, c.window),
            (0.2, 10, Duration::from_secs(10))
        );
        c.validate().unwrap();
        RetryBudget::new(c).unwrap();
    }

    #[test]
    fn validate_names_fields() {
        let d = BudgetConfig::default();
        let field = |c: BudgetConfig| c.validate().unwrap_err().field;
        assert_eq!(field(d.with_ratio(-0.1)), "budget.ratio");
        assert_eq!(field(d.with_ratio(1000.5)), "budget.ratio");
        assert_eq!(field(d.with_ratio(f64::NAN)), "budget.ratio");
        assert_eq!(
            field(d.with_ratio(0.0).with_min_per_second(0)),
            "budget.min_per_second"
        );
        assert_eq!(field(d.with_window(Duration::ZERO)), "budget.window");
        assert_eq!(
            field(d.with_window(Duration::from_millis(999))),
            "budget.window"
        );
        assert_eq!(
            field(d.with_window(Duration::from_secs(61))),
            "budget.window"
        );
        d.with_ratio(1000.0).validate().unwrap();
        d.with_ratio(0.0).validate().unwrap();
        d.with_min_per_second(0).validate().unwrap();
        assert!(RetryBudget::new(d.with_ratio(2000.0)).is_err());
    }

    #[test]
    fn word_packing() {
        let w = pack(7, 9);
        assert_eq!((epoch_of(w), count_of(w)), (7, 9));
        assert_eq!(count_of(pack(1, u32::MAX)), u32::MAX);
        assert!(is_after(1, 0) && is_after(0, u32::MAX) && !is_after(5, 5));
    }

    #[test]
    fn pure_deposit_and_archive() {
        assert_eq!(deposit(pack(3, 5), 3), pack(3, 6));
        assert_eq!(deposit(pack(3, 5), 13), pack(13, 1));
        assert_eq!(
            deposit(pack(13, 5), 3),
            pack(13, 6),
            "stale thread counts in newer bucket"
        );
        assert_eq!(deposit(pack(3, u32::MAX), 3), pack(3, u32::MAX));
        assert_eq!(archive(pack(2, 4), 12, 1), Some(pack(12, 1)));
        assert_eq!(archive(pack(12, 4), 12, 3), None, "never lowered");
        assert_eq!(archive(pack(12, 4), 12, 5), Some(pack(12, 5)));
        assert_eq!(archive(pack(22, 4), 12, 5), None);
    }

    #[test]
    fn pure_withdraw() {
        assert_eq!(withdraw(pack(4, 2), 4, 3, 6), Some(pack(4, 3)));
        assert_eq!(withdraw(pack(4, 2), 4, 3, 5), None);
        assert_eq!(
            withdraw(pack(4, 2), 5, 3, 5),
            Some(pack(5, 1)),
            "new bucket"
        );
        assert_eq!(withdraw(pack(4, u32::MAX), 4, 0, u64::MAX), None);
        assert_eq!(current_epoch(pack(4, 0), 2), 4);
        assert_eq!(current_epoch(pack(4, 0), 9), 9);
    }

    #[test]
    fn min_per_second_floor_without_traffic() {
        let (b, clock) = budget(0.2, 1, 2);
        assert_eq!(
            b.snapshot(),
            BudgetSnapshot {
                requests: 0,
                retries: 0,
                available: 2
            }
        );
        assert!(b.try_withdraw() && b.try_withdraw());
        assert!(!b.try_withdraw(), "at {}", clock.now());
        // Half a window later the retries are still in the window.
        clock.advance(Duration::from_secs(1));
        assert!(!b.try_withdraw());
        // A full window later they aged out.
        clock.advance(Duration::from_secs(1));
        assert!(b.try_withdraw(), "at {}", clock.now());
        assert_eq!(b.snapshot().retries, 1);
    }

    #[test]
    fn ratio_of_requests() {
        let (b, clock) = budget(0.2, 0, 10);
        for _ in 0..10 {
            b.record_request();
        }
        assert_eq!(
            b.snapshot(),
            BudgetSnapshot {
                requests: 10,
                retries: 0,
                available: 2
            }
        );
        assert!(b.try_withdraw());
        clock.advance(Duration::from_secs(5));
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
        assert_eq!(
            b.snapshot(),
            BudgetSnapshot {
                requests: 10,
                retries: 2,
                available: 0
            }
        );
        // The requests of bucket 0 age out, the retry of bucket 0 with them, the one of
        // bucket 5 stays.
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            b.snapshot(),
            BudgetSnapshot {
                requests: 0,
                retries: 1,
                available: 0
            }
        );
        for _ in 0..10 {
            b.record_request();
        }
        assert_eq!(b.snapshot().available, 1);
    }

    #[test]
    fn snapshot_counts_an_unarchived_head() {
        let (b, clock) = budget(1.0, 0, 1);
        for _ in 0..5 {
            b.record_request();
        }
        assert!(b.try_withdraw() && b.try_withdraw());
        clock.advance(Duration::from_millis(300));
        // No withdrawal since: the head still holds bucket 0.
        assert_eq!(
            b.snapshot(),
            BudgetSnapshot {
                requests: 5,
                retries: 2,
                available: 3
            }
        );
        assert!(b.try_withdraw());
        assert_eq!(
            b.snapshot(),
            BudgetSnapshot {
                requests: 5,
                retries: 3,
                available: 2
            }
        );
    }

    #[test]
    fn clock_going_back_is_tolerated() {
        let clock = ManualClock::starting_at(1_000_000_000_000);
        let b = RetryBudget::with_clock(BudgetConfig::default(), clock.clone()).unwrap();
        clock.set(1);
        b.record_request();
        assert!(b.try_withdraw());
        clock.set(u64::MAX);
        b.record_request();
        assert!(b.try_withdraw());
        let _ = b.snapshot();
    }
}
