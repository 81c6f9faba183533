//! Bulkhead: at most `max_concurrent` calls at once, with an optional bounded wait.
//!
//! The permits live in one atomic word (permits out, waiters); taking a permit is one
//! fetch-add and returning it one fetch-sub (a dropped permit) or one compare-exchange
//! (a raw release, which must refuse when nothing is out) when nobody waits, with no
//! lock. A caller that asked to wait parks on its own condition variable in a FIFO
//! queue behind a mutex, and a released permit is handed directly to the longest
//! waiter, so waiters are served in arrival order and `try_acquire` never barges ahead
//! of them.
//!
//! ```
//! use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
//! use breakwater::RejectReason;
//!
//! let bulkhead = Bulkhead::new(BulkheadConfig::new(1)).unwrap();
//! let permit = bulkhead.try_acquire().unwrap();
//! assert_eq!(bulkhead.try_acquire().unwrap_err().reason, RejectReason::BulkheadFull);
//! drop(permit);
//! assert!(bulkhead.try_acquire().is_ok());
//! ```

use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::error::ConfigError;
use crate::rejection::{RejectReason, Rejection};
use crate::shm::{Segment, RECLAIM_INTERVAL_NANOS};
use crate::sync::{Arc, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A bulkhead's limits.
///
/// ```
/// use breakwater::bulkhead::BulkheadConfig;
/// use std::time::Duration;
///
/// let config = BulkheadConfig::new(32).with_max_wait(Duration::from_millis(50));
/// assert!(config.validate().is_ok());
/// assert_eq!(BulkheadConfig::new(0).validate().unwrap_err().field, "max_concurrent");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BulkheadConfig {
    /// Permits that may be out at once (at least 1).
    pub max_concurrent: u32,
    /// How long [`Bulkhead::acquire`] waits for a permit [0: never waits].
    ///
    /// The one wait the injected clock does not fully govern: the waiting thread parks
    /// on a condition variable with a real-time timeout, so even on a
    /// [`ManualClock`](crate::clock::ManualClock) a waiter gives up after `max_wait` of
    /// real time (or earlier, when it wakes and the clock has reached its deadline).
    pub max_wait: Duration,
}

impl BulkheadConfig {
    /// `max_concurrent` permits, no waiting.
    pub fn new(max_concurrent: u32) -> Self {
        Self {
            max_concurrent,
            max_wait: Duration::ZERO,
        }
    }

    /// The same limits with a default wait.
    pub fn with_max_wait(self, max_wait: Duration) -> Self {
        Self { max_wait, ..self }
    }

    /// Checks every field; the error names it (`max_concurrent`, `max_wait`). Rejected:
    /// `max_concurrent` of 0 or `u32::MAX` (the counter must be able to tell "full"
    /// apart from overflow), `max_wait` of 2^64 ns (584 years) or more.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::new("max_concurrent", "must be at least 1"));
        }
        if self.max_concurrent == u32::MAX {
            return Err(ConfigError::new(
                "max_concurrent",
                format!("must be below {}", u32::MAX),
            ));
        }
        if self.max_wait.as_nanos() >= u128::from(u64::MAX) {
            return Err(ConfigError::new(
                "max_wait",
                "must be shorter than 2^64 ns (584 years)",
            ));
        }
        Ok(())
    }
}

/// The permit word: `in_flight` in the low half, `waiters` in the high half.
///
/// | bits   | field       | meaning                                                    |
/// |--------|-------------|------------------------------------------------------------|
/// | 0..32  | `in_flight` | permits out, including ones handed to a waiter not yet awake |
/// | 32..64 | `waiters`   | callers queued for a permit and not yet handed one         |
///
/// `in_flight` also counts overshoots: a `try_acquire` adds one unconditionally (one
/// read-modify-write, never retried under contention) and, when the word was already at
/// or above the limit, gives that one back at once the way a release would. At most one
/// overshoot per thread is out at a time, so `in_flight` stays far below 2^32 (limits of
/// [`OVERSHOOT_LIMIT`] and above take a compare-exchange instead).
///
/// Invariant: `waiters > 0` implies `in_flight >= max_concurrent` (a caller queues only
/// when every permit is out or overshot, and a release with waiters hands its permit
/// over instead of returning it unless overshoots keep the count above the limit; the
/// overshoot given back last then hands over). Hence "a permit is free and nobody is
/// queued" is simply `word < max_concurrent`. `waiters` changes only under the queue
/// mutex. One moment breaks the invariant: a dropped permit is returned by a fetch-sub
/// even with callers queued, and its thread then takes the mutex to hand the permit
/// over (`settle`). Meanwhile `waiters > 0` keeps every fast path off the permit, and
/// code under the mutex only queues behind the waiters or leaves (the last waiter to
/// leave frees the permit for everyone).
///
/// Cost of the overshoots, documented: while one is out, a `try_acquire` may find the
/// bulkhead full although a permit came free an instant before (it was full when the
/// overshooting call arrived), and a permit out twice is never possible.
const IN_FLIGHT_MASK: u64 = 0xFFFF_FFFF;
/// Shift of the `waiters` field.
const WAITERS_SHIFT: u32 = 32;
/// One waiter in the permit word.
const ONE_WAITER: u64 = 1 << WAITERS_SHIFT;
/// Limits from here up acquire with a compare-exchange: below it, `max_concurrent` plus
/// one overshoot per thread cannot reach 2^32.
const OVERSHOOT_LIMIT: u64 = 1 << 31;

#[inline]
fn in_flight_of(word: u64) -> u32 {
    (word & IN_FLIGHT_MASK) as u32
}

#[inline]
fn waiters_of(word: u64) -> u32 {
    (word >> WAITERS_SHIFT) as u32
}

/// One queued caller; it owns its condition variable so a hand-off wakes exactly it.
struct Waiter {
    id: u64,
    granted: bool,
    wake: Arc<Condvar>,
}

#[derive(Default)]
struct WaitQueue {
    /// In arrival order. Entries not yet granted number exactly `waiters`.
    waiters: VecDeque<Waiter>,
    next_id: u64,
}

impl WaitQueue {
    /// Grants a permit (already counted out in the word) to the oldest caller still
    /// waiting and wakes it. Called with `waiters > 0` taken off the word under the
    /// lock, so such a caller exists.
    fn grant_oldest(&mut self) {
        if let Some(waiter) = self.waiters.iter_mut().find(|w| !w.granted) {
            waiter.granted = true;
            waiter.wake.notify_one();
        }
    }
}

/// A concurrency limit: at most `max_concurrent` permits out at once.
///
/// * [`try_acquire`](Self::try_acquire) never blocks: a free permit (and nobody queued
///   before it) or [`RejectReason::BulkheadFull`].
/// * [`try_acquire_for`](Self::try_acquire_for) waits up to a given `max_wait` for a
///   permit, [`acquire`](Self::acquire) up to the configured one. Waiters are served
///   in arrival order; a release wakes exactly one of them (it hands the permit over
///   directly); a waiter that times out leaves nothing behind.
/// * A [`BulkheadPermit`] returns its permit when dropped, exactly once. Forgetting a
///   permit (`std::mem::forget`) is safe: it leaks that one slot (the bulkhead has one
///   permit fewer from then on), nothing else.
/// * The `_raw` forms (for the pipeline and the C ABI) do the same without a guard: each
///   successful `try_acquire_raw`/`try_acquire_raw_for` must be followed by exactly one
///   [`release_raw`](Self::release_raw).
pub struct Bulkhead<C: Clock = AnyClock> {
    /// The permit word (see `IN_FLIGHT_MASK`); on its own cache line.
    state: CachePadded<AtomicU64>,
    queue: Mutex<WaitQueue>,
    clock: C,
    config: BulkheadConfig,
    /// In host scope, the segment whose slots are the permits (`state` and `queue` are
    /// then unused): see [`crate::shm`].
    host: Option<Arc<Segment>>,
}

/// The most permits a host-wide bulkhead may have: one word each in the segment.
pub const MAX_HOST_PERMITS: u32 = 65_536;

/// How often a host-wide bulkhead waiting for a permit looks again (other processes
/// cannot wake it).
const HOST_POLL: Duration = Duration::from_millis(1);

/// A point-in-time view of a bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadSnapshot {
    /// The configured limit.
    pub max_concurrent: u32,
    /// Permits out.
    pub in_flight: u32,
    /// Permits free (`max_concurrent - in_flight`).
    pub available: u32,
    /// Callers queued for a permit.
    pub waiting: u32,
}

impl Bulkhead<AnyClock> {
    /// A bulkhead timing waits on [`AnyClock::Monotonic`]. See `clock.rs` for the rule
    /// every type follows.
    pub fn new(config: BulkheadConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, AnyClock::Monotonic)
    }
}

impl<C: Clock> Bulkhead<C> {
    /// A bulkhead timing waits on `clock`. Only waits read time; with a manual clock a
    /// waiter gives up when either the real `max_wait` passes or the clock reaches the
    /// deadline at its next wake-up.
    pub fn with_clock(config: BulkheadConfig, clock: C) -> Result<Self, ConfigError> {
        Self::placed(config, clock, None)
    }

    /// A bulkhead whose permits are `segment`'s slots when `segment` is given (laid out
    /// with `max_concurrent` slots), this process's own otherwise.
    ///
    /// In host scope a permit is one slot word holding the holder's process entry (one
    /// compare-exchange takes the permit and records its owner, so a process killed at
    /// any instruction leaves nothing unaccounted), a waiting acquire polls every
    /// millisecond instead of queueing, and a full bulkhead first gives back the slots of
    /// dead processes (at most one scan per 10 ms host-wide) before it rejects.
    pub(crate) fn placed(
        config: BulkheadConfig,
        clock: C,
        segment: Option<&Arc<Segment>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if segment.is_some() && config.max_concurrent > MAX_HOST_PERMITS {
            return Err(ConfigError::new(
                "max_concurrent",
                format!("must be at most {MAX_HOST_PERMITS} in host scope"),
            ));
        }
        Ok(Self {
            state: CachePadded::new(AtomicU64::new(0)),
            queue: Mutex::new(WaitQueue::default()),
            clock,
            config,
            host: segment.cloned(),
        })
    }

    /// Takes a slot of the host-wide segment (reclaiming dead holders' slots first when
    /// all are taken and a scan is due). Out of line: inlined, the segment's walk made
    /// [`try_take`](Self::try_take) too large to inline into a policy, and every
    /// process-scope call paid for it.
    #[inline(never)]
    fn host_try_take(&self, segment: &Segment) -> bool {
        segment.take_slot() || self.host_try_take_slow(segment)
    }

    /// Every slot looked taken: reclaim what dead processes hold, when a scan is due,
    /// and try once more.
    #[cold]
    fn host_try_take_slow(&self, segment: &Segment) -> bool {
        let now = self.clock.now();
        segment.reclaim_if_due(now, RECLAIM_INTERVAL_NANOS) > 0 && segment.take_slot()
    }

    #[cold]
    fn host_acquire(&self, segment: &Segment, max_wait: Duration) -> Result<(), Rejection> {
        let deadline = self.clock.now().saturating_add(duration_to_nanos(max_wait));
        loop {
            if self.host_try_take(segment) {
                return Ok(());
            }
            let now = self.clock.now();
            if now >= deadline {
                return Err(Self::full());
            }
            std::thread::sleep(HOST_POLL.min(Duration::from_nanos(deadline - now)));
        }
    }

    /// Out of line, as [`host_try_take`](Self::host_try_take).
    #[inline(never)]
    fn host_release(&self, segment: &Segment) -> bool {
        segment.give_slot()
    }

    #[inline]
    fn max(&self) -> u64 {
        u64::from(self.config.max_concurrent)
    }

    /// The answer of a full bulkhead (the only one a non-waiting acquire gives).
    #[cold]
    pub(crate) fn full() -> Rejection {
        Rejection::new(RejectReason::BulkheadFull, None)
    }

    /// Takes a permit if one is free and nobody is queued; never blocks.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_, C>, Rejection> {
        self.try_acquire_raw()
            .map(|()| BulkheadPermit { bulkhead: self })
    }

    /// Takes a permit, waiting up to `max_wait` for one (in arrival order).
    pub fn try_acquire_for(&self, max_wait: Duration) -> Result<BulkheadPermit<'_, C>, Rejection> {
        self.try_acquire_raw_for(max_wait)
            .map(|()| BulkheadPermit { bulkhead: self })
    }

    /// Takes a permit, waiting up to the configured `max_wait` for one (never, by
    /// default), as a policy's [`acquire`](crate::policy::Policy::acquire) does.
    pub fn acquire(&self) -> Result<BulkheadPermit<'_, C>, Rejection> {
        self.try_acquire_for(self.config.max_wait)
    }

    /// [`try_acquire`](Self::try_acquire) without a guard: on `Ok`, call
    /// [`release_raw`](Self::release_raw) exactly once later.
    #[inline]
    pub fn try_acquire_raw(&self) -> Result<(), Rejection> {
        if self.try_take() {
            Ok(())
        } else {
            Err(Self::full())
        }
    }

    /// [`try_acquire_raw`](Self::try_acquire_raw) answering in a flag (a refusal is
    /// always [`full`](Self::full)): `true` when a permit was taken, to be given back
    /// with [`release_raw`](Self::release_raw) exactly once. Small enough to inline into
    /// a policy's acquire, which a `Result` built in memory by an out-of-line call was not.
    #[inline(always)]
    pub(crate) fn try_take(&self) -> bool {
        if let Some(segment) = &self.host {
            return self.host_try_take(segment);
        }
        let max = self.max();
        if max >= OVERSHOOT_LIMIT {
            return self.try_acquire_exact(max);
        }
        // One read-modify-write, never retried, however many threads race: the permit
        // is taken when the word was below max (waiters == 0 and in_flight < max, see the
        // invariant). Acquire on that path: pairs with the Release of the `release_raw`
        // that freed this permit, so whatever the previous holder did under it
        // happens-before our use (a semaphore's guarantee); Relaxed would let our guarded
        // work be observed to overlap theirs.
        let before = self.state.fetch_add(1, Ordering::Acquire);
        before < max || self.give_back_overshoot()
    }

    /// Full: the add was an overshoot, given back as a release would give it back.
    /// Returns `false` (no permit taken).
    #[cold]
    #[inline(never)]
    fn give_back_overshoot(&self) -> bool {
        self.release_raw();
        false
    }

    /// The compare-exchange form of [`try_acquire_raw`](Self::try_acquire_raw), for a
    /// limit so high that overshoots could carry into the `waiters` field.
    #[cold]
    fn try_acquire_exact(&self, max: u64) -> bool {
        // Relaxed load: only a guess for the compare-exchange, which re-checks it.
        let mut word = self.state.load(Ordering::Relaxed);
        loop {
            match self.try_increment(word, max) {
                Ok(taken) => return taken,
                Err(actual) => word = actual,
            }
        }
    }

    /// One step of taking a permit exactly (the mirror of [`try_decrement`](Self::try_decrement)):
    /// `Ok(false)` if `word` has none free (`word >= max`: every permit out, or waiters
    /// queued, see the invariant), `Ok(true)` once taken, `Err(actual)` to retry with the
    /// word another thread wrote meanwhile.
    #[inline]
    fn try_increment(&self, word: u64, max: u64) -> Result<bool, u64> {
        if word >= max {
            return Ok(false);
        }
        // Acquire on success: as in `try_take`, pairs with the Release of the
        // `release_raw` that freed this permit. Failure only retries: Relaxed.
        self.state
            .compare_exchange_weak(word, word + 1, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| true)
    }

    /// [`try_acquire_for`](Self::try_acquire_for) without a guard: on `Ok`, call
    /// [`release_raw`](Self::release_raw) exactly once later.
    pub fn try_acquire_raw_for(&self, max_wait: Duration) -> Result<(), Rejection> {
        if let Some(segment) = &self.host {
            return self.host_acquire(segment, max_wait);
        }
        match self.try_acquire_raw() {
            Ok(()) => Ok(()),
            Err(_) if max_wait.is_zero() => Err(Self::full()),
            Err(_) => self.acquire_slow(max_wait),
        }
    }

    /// Returns a permit taken with a `_raw` acquire. Returns `false` and changes nothing
    /// if no permit is out (it never underflows); with permits out it cannot tell whose
    /// permit is returned, so release each raw permit exactly once.
    #[inline]
    pub fn release_raw(&self) -> bool {
        if let Some(segment) = &self.host {
            return self.host_release(segment);
        }
        // Relaxed load: a guess for the compare-exchange.
        let word = self.state.load(Ordering::Relaxed);
        // The first attempt inline; a retry or a hand-off out of line, so the common
        // release stays small enough to inline into a policy's completion.
        if self.hands_off(word) {
            return self.release_slow();
        }
        match self.try_decrement(word) {
            Ok(released) => released,
            Err(actual) => self.release_retry(actual),
        }
    }

    /// Returns a permit the caller is known to hold (a [`BulkheadPermit`] being dropped,
    /// a Rust policy permit's slot): one fetch-sub. [`release_raw`](Self::release_raw)
    /// must also refuse a release with nothing out, so it reads the word and then
    /// exchanges it, which with two threads on one bulkhead moves the word's line
    /// between their cores twice (measured: the median 2-thread acquire + release fell
    /// from 78–117 to 41 ns with the fetch-sub). Here `in_flight ≥ 1` holds by
    /// construction, so the subtraction cannot borrow from `waiters`.
    #[inline]
    pub(crate) fn release_held(&self) {
        if let Some(segment) = &self.host {
            self.host_release(segment);
            return;
        }
        // Release: pairs with the Acquire of the next `try_acquire_raw` that takes this
        // permit (see `try_take`).
        let before = self.state.fetch_sub(1, Ordering::Release);
        debug_assert_ne!(in_flight_of(before), 0, "a held permit was out");
        if waiters_of(before) != 0 {
            // The permit went back with callers queued; `waiters > 0` keeps every
            // fast path off it until `settle` hands it over.
            self.settle();
        }
    }

    /// Hands free permits to queued callers, oldest first, while both exist: after a
    /// [`release_held`](Self::release_held) that returned a permit with callers queued
    /// (the moment the invariant does not hold; only code under the queue mutex sees
    /// it, and it only queues behind them or leaves).
    #[cold]
    #[inline(never)]
    fn settle(&self) {
        let mut queue = self.queue.lock();
        let max = self.max();
        // Under the lock `waiters` cannot change; `in_flight` can (other fast paths).
        let mut word = self.state.load(Ordering::Relaxed);
        while waiters_of(word) != 0 && u64::from(in_flight_of(word)) < max {
            // The permit goes out again, to the oldest waiter, which stops counting as
            // queued. Relaxed: as the hand-off in `release_slow`.
            let granted = word + 1 - ONE_WAITER;
            match self.state.compare_exchange_weak(
                word,
                granted,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    word = granted;
                    queue.grant_oldest();
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Loom only: [`release_held`](Self::release_held), for models that return a permit
    /// on another thread than the one that took it (a `BulkheadPermit` borrows).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn release_held_for_model(&self) {
        self.release_held();
    }

    /// The rest of [`release_raw`](Self::release_raw) after its first compare-exchange
    /// lost to another thread's write of the word, now `word`.
    #[cold]
    #[inline(never)]
    fn release_retry(&self, mut word: u64) -> bool {
        loop {
            if self.hands_off(word) {
                return self.release_slow();
            }
            match self.try_decrement(word) {
                Ok(released) => return released,
                Err(actual) => word = actual,
            }
        }
    }

    /// Whether a permit returned at `word` must go to a waiter: someone is queued and
    /// the permits out, overshoots included, do not exceed the limit (every overshoot
    /// above it is given back by its own thread, the last of them hands over).
    #[inline]
    fn hands_off(&self, word: u64) -> bool {
        waiters_of(word) != 0 && u64::from(in_flight_of(word)) <= self.max()
    }

    /// One step of a release with no waiters queued in `word`: `Ok(false)` if nothing
    /// is out, `Ok(true)` once the permit is returned, `Err(actual)` to retry with the
    /// word another thread wrote meanwhile.
    #[inline]
    fn try_decrement(&self, word: u64) -> Result<bool, u64> {
        if in_flight_of(word) == 0 {
            return Ok(false);
        }
        // Release on success: pairs with the Acquire of the next `try_acquire_raw` that
        // takes this permit (see there). The compare-exchange (not a plain fetch_sub) is
        // what makes "no waiters" and the decrement one atomic step, so a waiter that
        // queues at the same time is never skipped.
        self.state
            .compare_exchange_weak(word, word - 1, Ordering::Release, Ordering::Relaxed)
            .map(|_| true)
    }

    /// Release with waiters queued: hand the permit to the longest waiter.
    #[cold]
    fn release_slow(&self) -> bool {
        let mut queue = self.queue.lock();
        // Under the lock `waiters` cannot change; `in_flight` can (other fast paths).
        let mut word = self.state.load(Ordering::Relaxed);
        loop {
            if !self.hands_off(word) {
                // Every waiter left (timed out) before we got the lock, or overshoots
                // still count above the limit (their threads hand over): plain release.
                match self.try_decrement(word) {
                    Ok(released) => return released,
                    Err(actual) => word = actual,
                }
                continue;
            }
            // Hand-off: the permit stays out (in_flight unchanged) and one waiter stops
            // counting as queued. Relaxed: the waiter learns of its grant through the
            // `granted` flag under the mutex, whose unlock/lock orders our prior work
            // before its use; nobody else acquires through this change.
            match self.state.compare_exchange_weak(
                word,
                word - ONE_WAITER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => word = actual,
            }
        }
        queue.grant_oldest();
        true
    }

    /// Queue up and wait for a hand-off, up to `max_wait`.
    #[cold]
    fn acquire_slow(&self, max_wait: Duration) -> Result<(), Rejection> {
        let mut queue = self.queue.lock();
        let max = self.max();
        let mut word = self.state.load(Ordering::Relaxed);
        loop {
            // A permit came free and nobody is queued: take it.
            match self.try_increment(word, max) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(actual) => {
                    word = actual;
                    continue;
                }
            }
            if waiters_of(word) == u32::MAX {
                return Err(Self::full());
            }
            // Queue up. Relaxed: `waiters` is guarded by the mutex we hold; the
            // compare-exchange only keeps the word consistent with racing fast paths,
            // which read `waiters` to decide whether to take the slow path.
            match self.state.compare_exchange_weak(
                word,
                word + ONE_WAITER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => word = actual,
            }
        }
        let id = queue.next_id;
        queue.next_id = queue.next_id.wrapping_add(1);
        let wake = Arc::new(Condvar::new());
        queue.waiters.push_back(Waiter {
            id,
            granted: false,
            wake: Arc::clone(&wake),
        });
        let deadline = self.clock.now().saturating_add(duration_to_nanos(max_wait));
        let mut remaining = max_wait;
        loop {
            let timed_out = wake.wait_timeout(&mut queue, remaining);
            if Self::take_grant(&mut queue, id) {
                return Ok(());
            }
            let now = self.clock.now();
            if timed_out || now >= deadline {
                Self::leave(&mut queue, id);
                // Relaxed: `waiters` is guarded by the mutex we hold. The invariant
                // keeps in_flight >= max (permits out, or overshoots whose threads give
                // them back), so no permit is stranded by our leaving; where a dropped
                // permit broke it, its `settle` follows and hands the permit to those
                // still queued, or, when we were the last, it is free to anyone.
                self.state.fetch_sub(ONE_WAITER, Ordering::Relaxed);
                return Err(Self::full());
            }
            remaining = Duration::from_nanos(deadline - now);
        }
    }

    /// Removes waiter `id` if it was granted; says whether it was.
    fn take_grant(queue: &mut MutexGuard<'_, WaitQueue>, id: u64) -> bool {
        match queue.waiters.iter().position(|w| w.id == id) {
            Some(pos) if queue.waiters[pos].granted => {
                queue.waiters.remove(pos);
                true
            }
            _ => false,
        }
    }

    /// Removes waiter `id` (not granted).
    fn leave(queue: &mut MutexGuard<'_, WaitQueue>, id: u64) {
        if let Some(pos) = queue.waiters.iter().position(|w| w.id == id) {
            queue.waiters.remove(pos);
        }
    }

    /// Loom only: wakes every waiter without granting anything, as a timer firing would,
    /// so a model can make a waiter time out (loom never times out a wait by itself).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn fire_wait_timers_for_model(&self) {
        let queue = self.queue.lock();
        for waiter in queue.waiters.iter() {
            waiter.wake.notify_one();
        }
    }

    #[inline]
    fn word(&self) -> u64 {
        // Relaxed: a snapshot for reporting; nothing is read through it.
        self.state.load(Ordering::Relaxed)
    }

    /// Permits out now (host-wide in host scope).
    pub fn in_flight(&self) -> u32 {
        match &self.host {
            Some(segment) => segment.leases().slots_held() as u32,
            // Overshoots (see `IN_FLIGHT_MASK`) are not permits out.
            None => in_flight_of(self.word()).min(self.config.max_concurrent),
        }
    }

    /// In host scope, gives back the slots of every dead process now; returns how many
    /// processes' permits were given back (0 in process scope).
    pub fn reclaim_dead_owners(&self) -> usize {
        self.host.as_ref().map_or(0, |s| s.reclaim())
    }

    /// Permits free now.
    pub fn available(&self) -> u32 {
        self.config.max_concurrent.saturating_sub(self.in_flight())
    }

    /// Callers queued for a permit now.
    pub fn waiting(&self) -> u32 {
        waiters_of(self.word())
    }

    /// Limit, permits out, free and queued callers, from one read of the permit word.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let word = self.word();
        let in_flight = self.in_flight();
        BulkheadSnapshot {
            max_concurrent: self.config.max_concurrent,
            in_flight,
            available: self.config.max_concurrent.saturating_sub(in_flight),
            waiting: waiters_of(word),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BulkheadConfig {
        &self.config
    }
}

impl<C: Clock> fmt::Debug for Bulkhead<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("config", &self.config)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// One permit of a [`Bulkhead`], returned when dropped.
///
/// Forget-safe: `std::mem::forget(permit)` leaks one slot of the bulkhead (it stays
/// counted as out), never memory or soundness.
#[must_use = "dropping the permit at once releases it"]
pub struct BulkheadPermit<'a, C: Clock = AnyClock> {
    bulkhead: &'a Bulkhead<C>,
}

impl<C: Clock> BulkheadPermit<'_, C> {
    /// Turns the permit into a raw one: it is no longer released on drop, and
    /// [`Bulkhead::release_raw`] must be called exactly once for it.
    pub fn into_raw(self) {
        std::mem::forget(self);
    }
}

impl<C: Clock> Drop for BulkheadPermit<'_, C> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.release_held();
    }
}

impl<C: Clock> fmt::Debug for BulkheadPermit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::mpsc;
    use std::thread;

    #[test]
    fn validate_names_fields() {
        assert_eq!(
            BulkheadConfig::new(0).validate().unwrap_err().field,
            "max_concurrent"
        );
        assert_eq!(
            BulkheadConfig::new(u32::MAX).validate().unwrap_err().field,
            "max_concurrent"
        );
        assert_eq!(
            BulkheadConfig::new(1)
                .with_max_wait(Duration::MAX)
                .validate()
                .unwrap_err()
                .field,
            "max_wait"
        );
        assert!(Bulkhead::new(BulkheadConfig::new(0)).is_err());
    }

    #[test]
    fn counts_and_raw_release_never_underflows() {
        let b = Bulkhead::new(BulkheadConfig::new(2)).unwrap();
        assert!(!b.release_raw());
        let p = b.try_acquire().unwrap();
        b.try_acquire_raw().unwrap();
        assert_eq!(
            b.try_acquire_raw(),
            Err(Rejection::new(RejectReason::BulkheadFull, None))
        );
        assert_eq!(
            b.snapshot(),
            BulkheadSnapshot {
                max_concurrent: 2,
                in_flight: 2,
                available: 0,
                waiting: 0
            }
        );
        assert!(b.release_raw());
        drop(p);
        assert_eq!(b.in_flight(), 0);
        assert!(!b.release_raw());
        assert_eq!(b.available(), 2);
    }

    #[test]
    fn a_limit_in_the_exact_range_counts_every_permit() {
        // Limits from OVERSHOOT_LIMIT up acquire with the compare-exchange form.
        let b = Bulkhead::new(BulkheadConfig::new(u32::MAX - 1)).unwrap();
        assert!(b.max() >= OVERSHOOT_LIMIT);
        b.try_acquire_raw().unwrap();
        let p = b.try_acquire().unwrap();
        assert_eq!(b.in_flight(), 2);
        assert!(b.release_raw());
        drop(p);
        assert_eq!(b.in_flight(), 0);
        assert!(!b.release_raw());
    }

    #[test]
    fn forgotten_permit_leaks_one_slot() {
        let b = Bulkhead::new(BulkheadConfig::new(2)).unwrap();
        std::mem::forget(b.try_acquire().unwrap());
        assert_eq!(b.available(), 1);
        b.try_acquire().unwrap().into_raw();
        assert_eq!(b.available(), 0);
        assert!(b.release_raw());
        assert_eq!(b.available(), 1);
    }

    #[test]
    fn waiter_gets_released_permit() {
        let b = Bulkhead::new(BulkheadConfig::new(1)).unwrap();
        let p = b.try_acquire().unwrap();
        thread::scope(|s| {
            let h = s.spawn(|| {
                b.try_acquire_for(Duration::from_secs(10))
                    .map(|p| p.into_raw())
            });
            while b.waiting() == 0 {
                thread::yield_now();
            }
            assert!(b.try_acquire().is_err(), "no barging past a waiter");
            drop(p);
            h.join().unwrap().unwrap();
        });
        assert_eq!(b.snapshot().in_flight, 1);
        assert_eq!(b.waiting(), 0);
        assert!(b.release_raw());
    }

    #[test]
    fn timed_out_waiter_leaves_no_trace() {
        let b =
            Bulkhead::new(BulkheadConfig::new(1).with_max_wait(Duration::from_millis(5))).unwrap();
        let p = b.try_acquire().unwrap();
        assert_eq!(b.acquire().unwrap_err().reason, RejectReason::BulkheadFull);
        assert_eq!(b.waiting(), 0);
        drop(p);
        assert_eq!(b.in_flight(), 0);
        assert!(b.try_acquire().is_ok());
    }

    #[test]
    fn manual_clock_deadline_is_checked_on_wake() {
        let clock = ManualClock::new();
        let b = Bulkhead::with_clock(BulkheadConfig::new(1), clock.clone()).unwrap();
        let _p = b.try_acquire().unwrap();
        // Real max_wait of 1 ms passes: times out even though the manual clock stands.
        assert!(b.try_acquire_for(Duration::from_millis(1)).is_err());
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn waiters_are_served_in_arrival_order() {
        let b = Bulkhead::new(BulkheadConfig::new(1)).unwrap();
        let p = b.try_acquire().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::scope(|s| {
            for i in 0..4u32 {
                let tx = tx.clone();
                let b = &b;
                s.spawn(move || {
                    let permit = b.try_acquire_for(Duration::from_secs(10)).unwrap();
                    tx.send(i).unwrap();
                    drop(permit);
                });
                // Let waiter i queue before waiter i+1 arrives.
                while b.waiting() <= i {
                    thread::yield_now();
                }
            }
            drop(p);
        });
        drop(tx);
        let order: Vec<u32> = rx.iter().collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
        assert_eq!(b.snapshot().in_flight, 0);
    }
}
