//! [`KeyedLimiter`]: the table of key states on a clock, with its counters and its
//! heavy-hitter sketch.

use crate::clock::{nanos_to_duration, AnyClock, Clock};
use crate::error::ConfigError;
use crate::limiter::config::Quota;
use crate::limiter::RateLimiter;
use crate::metrics::slot_table::SlotTable;
use crate::metrics::thread_slot;
use crate::sync::{AtomicU64, Ordering};
use crate::{RejectReason, Rejection};

use super::config::PerKeyConfig;
use super::hash::KeyHasher;
use super::heavy::{HeavyHitter, HeavyHitters};
use super::table::{Answer, KeySlot, Rule, Table};
use super::tally::{Counted, Tally};

/// A rate limit (and optionally a concurrency limit) for every key, in a table of fixed
/// size (see the `keyed` module and `docs/design.md`, "Per-key limits").
///
/// Thread-safe and allocation-free per call (a thread's first refusal on a limiter
/// allocates that thread's rejection tally, once); a refusal reads its key's bucket
/// without a lock, and any other call takes the bucket's lock for a few nanoseconds
/// (and its second bucket's too when the key is not in its first). Keys are bytes of any length, hashed with a seed drawn for this
/// limiter.
///
/// ```
/// use breakwater::clock::ManualClock;
/// use breakwater::keyed::{KeyedLimiter, PerKeyConfig};
/// use breakwater::RejectReason;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = KeyedLimiter::with_clock(
///     PerKeyConfig::new(2, Duration::from_secs(1)).with_max_concurrent(1),
///     clock.clone(),
/// ).unwrap();
/// let alice = limiter.try_acquire(b"alice").unwrap();
/// assert_eq!(limiter.try_acquire(b"alice").unwrap_err().reason, RejectReason::BulkheadFull);
/// drop(alice);
/// let _again = limiter.try_acquire(b"alice").unwrap();
/// assert!(limiter.try_acquire(b"bob").is_ok(), "bob has his own limits");
/// ```
pub struct KeyedLimiter<C: Clock = AnyClock> {
    table: Table,
    rule: Rule,
    quota: Quota,
    config: PerKeyConfig,
    clock: C,
    /// The reading the limiter's time counts from (so that units fit a u64).
    origin: u64,
    /// The clock's coarse lag, in units.
    lag: u64,
    evictions: AtomicU64,
    evicted_debt: AtomicU64,
    shed: AtomicU64,
    heavy: HeavyHitters,
    /// The rejections each thread counted itself (see `tally`).
    tallies: SlotTable<Tally>,
}

impl<C: Clock> std::fmt::Debug for KeyedLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("config", &self.config)
            .field("capacity", &self.table.capacity())
            .finish_non_exhaustive()
    }
}

/// A keyed limiter's state: its table and what it had to forget or refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedSnapshot {
    /// The configured `max_keys`.
    pub max_keys: u32,
    /// Slots in the table (at least `1.6 × max_keys`).
    pub capacity: u64,
    /// Keys that limit now: quota not refilled, or permits held.
    pub active_keys: u64,
    /// Per-key permits held now (with a `max_concurrent`).
    pub held: u64,
    /// Keys forgotten while they still had a debt (both their buckets were full).
    pub evictions: u64,
    /// The most calls those evictions can have let through beyond an exact limiter:
    /// the sum of the evicted keys' debts, in permits.
    pub evicted_debt: u64,
    /// Calls refused because both of their key's buckets were full of keys holding
    /// permits.
    pub shed: u64,
    /// The keys rejected most, most first (at most `top_keys`).
    pub top_rejected: Vec<HeavyHitter>,
}

impl KeyedLimiter<AnyClock> {
    /// A limiter on the system clock [`clock_for`](Self::clock_for) picks for this
    /// quota, with a random seed.
    pub fn new(config: PerKeyConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Self::clock_for(&config))
    }

    /// The system clock [`new`](Self::new) uses for `config`: the coarse clock when each
    /// key's bucket spans enough of its ticks to deliver the rate exactly (the rate
    /// limiter's rule, [`RateLimiter::coarse_suffices`]; about half the price of a TSC
    /// reading), else the cheapest
    /// precise clock ([`AnyClock::precise_local`]: the TSC where it is invariant, else
    /// `CLOCK_MONOTONIC` read coarse first). Per-key state never leaves this process,
    /// so the TSC's per-process calibration is no concern here.
    pub fn clock_for(config: &PerKeyConfig) -> AnyClock {
        if RateLimiter::coarse_suffices(&config.quota()) {
            AnyClock::Coarse
        } else {
            AnyClock::Monotonic.precise_local()
        }
    }
}

impl<C: Clock> KeyedLimiter<C> {
    /// A limiter reading `clock`, with a random seed.
    pub fn with_clock(config: PerKeyConfig, clock: C) -> Result<Self, ConfigError> {
        Self::build(config, clock, KeyHasher::random())
    }

    /// A limiter reading `clock` whose keys are placed by SipHash-1-3 keyed with
    /// `seed`: for tests and models that must replay. A seed known to clients lets
    /// them choose keys that share a bucket, so production code uses
    /// [`with_clock`](Self::with_clock).
    pub fn with_clock_and_seed(
        config: PerKeyConfig,
        clock: C,
        seed: [u64; 2],
    ) -> Result<Self, ConfigError> {
        Self::build(config, clock, KeyHasher::with_seed(seed[0], seed[1]))
    }

    fn build(config: PerKeyConfig, clock: C, hasher: KeyHasher) -> Result<Self, ConfigError> {
        config.validate()?;
        let quota = Quota::from_config(&config.quota())?;
        let origin = clock.now();
        let lag = quota.nanos_to_units(clock.coarse_lag());
        Ok(Self {
            table: Table::new(config.max_keys, hasher),
            rule: Rule {
                interval: quota.interval,
                tolerance: quota.tolerance,
                max_held: config.max_concurrent.map_or(0, u64::from),
            },
            quota,
            config,
            clock,
            origin,
            lag,
            evictions: AtomicU64::new(0),
            evicted_debt: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            heavy: HeavyHitters::new(config.top_keys as usize),
            tallies: SlotTable::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PerKeyConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// A reading in units; never 0, so a TAT of 0 is always in the past.
    #[inline]
    fn units(&self, nanos: u64) -> u64 {
        self.quota
            .nanos_to_units(nanos.saturating_sub(self.origin).saturating_add(1))
    }

    /// Asks for one permit of `key`: a permit that gives back the key's concurrency
    /// slot when dropped, or the rejection (`RateLimited` with the wait, `BulkheadFull`
    /// when the key holds `max_concurrent` permits, `LoadShed` when both its buckets are
    /// full of keys holding permits).
    #[inline]
    pub fn try_acquire(&self, key: &[u8]) -> Result<KeyedPermit<'_, C>, Rejection> {
        self.try_acquire_raw(key).map(|slot| KeyedPermit {
            limiter: self,
            slot: Some(slot),
        })
    }

    /// [`try_acquire`](Self::try_acquire) returning the plain-data slot; give it back
    /// exactly once with [`release_raw`](Self::release_raw) (or
    /// [`cancel_raw`](Self::cancel_raw) when the call was not made after all).
    #[inline]
    pub fn try_acquire_raw(&self, key: &[u8]) -> Result<KeySlot, Rejection> {
        let (bucket, id) = self.table.locate(key);
        // The bucket's line is on its way while the clock is read.
        self.table.touch(bucket);
        // Coarse first: an older reading can only refuse more (GCRA takes max(tat, now)
        // and keys expire later), so an admission from it stands; a refusal the lag
        // could explain is asked again with the precise reading.
        // (The table does not count that first refusal as a rejection.)
        let (mut at, mut answer) = self.table.acquire(
            bucket,
            id,
            self.units(self.clock.now_coarse()),
            &self.rule,
            self.lag,
        );
        if let Answer::Refused {
            reason: RejectReason::RateLimited,
            retry_after: Some(after),
            ..
        } = answer
        {
            if after <= self.lag {
                (at, answer) = self.ask_precisely(bucket, id);
            }
        }
        match answer {
            Answer::Admitted {
                way,
                evicted_debt,
                left,
            } => {
                if evicted_debt != 0 {
                    self.count_eviction(evicted_debt);
                }
                if left.1 != 0 {
                    self.heavy.add_if_counted(left.0, left.1);
                }
                Ok(KeySlot {
                    bucket: at,
                    way,
                    pinned: self.rule.max_held != 0,
                    id,
                })
            }
            Answer::Refused {
                reason,
                retry_after,
                report,
                caller_counts,
            } => {
                if caller_counts {
                    self.tally_rejection(bucket, id, key);
                }
                Err(self.refuse(bucket, id, key, reason, retry_after, report))
            }
        }
    }

    /// The decision on the precise reading, after a refusal the coarse one's lag could
    /// explain (out of line: the table's decision is inlined once, for the coarse one).
    #[cold]
    #[inline(never)]
    fn ask_precisely(&self, bucket: u32, id: u64) -> (u32, Answer) {
        self.table
            .acquire(bucket, id, self.units(self.clock.now()), &self.rule, 0)
    }

    /// Counts a rejection the table decided without writing: in this thread's tally, or
    /// in the sketch when the thread has none or its tally has no room.
    #[inline]
    fn tally_rejection(&self, bucket: u32, id: u64, key: &[u8]) {
        if !self.heavy.enabled() {
            return;
        }
        let tally = match self.tallies.owned(thread_slot::peek()) {
            Some(tally) => Some(tally),
            None => self.first_tally(),
        };
        let weight = match tally.map(|tally| tally.count(id)) {
            Some(Counted::Here) => return,
            Some(Counted::Batch(weight)) => weight,
            Some(Counted::NoRoom) | None => 1,
        };
        self.heavy.record(id, bucket, key, weight);
    }

    /// The current thread's tally, created now (its first rejection counted without the
    /// lock); `None` for a thread without a slot.
    #[cold]
    #[inline(never)]
    fn first_tally(&self) -> Option<&Tally> {
        let slot = thread_slot::current();
        if slot >= thread_slot::SLOTS {
            return None;
        }
        let (tally, _owner) = self
            .tallies
            .get_or_create_with(slot, || Tally::for_keys(self.config.max_keys));
        Some(tally)
    }

    #[cold]
    fn count_shed(&self) {
        // Relaxed: a statistic.
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    #[cold]
    fn count_eviction(&self, debt_units: u64) {
        // Relaxed: statistics; they order nothing.
        self.evictions.fetch_add(1, Ordering::Relaxed);
        self.evicted_debt.fetch_add(
            debt_units.div_ceil(self.rule.interval.max(1)),
            Ordering::Relaxed,
        );
    }

    // Not cold: on a hot table most calls end here.
    #[inline]
    fn refuse(
        &self,
        bucket: u32,
        id: u64,
        key: &[u8],
        reason: RejectReason,
        retry_after: Option<u64>,
        report: u64,
    ) -> Rejection {
        if reason == RejectReason::LoadShed {
            self.count_shed();
        }
        if report != 0 {
            self.heavy.record(id, bucket, key, report);
        }
        Rejection::new(
            reason,
            retry_after.map(|u| nanos_to_duration(self.quota.units_to_nanos_ceil(u))),
        )
    }

    /// Gives back the permit of `slot` (a call completed). False, and nothing changed,
    /// when the slot's key holds no permit (forged, or every permit of the key given
    /// back already). A slot names its key, not one permit: give each back once.
    #[inline]
    pub fn release_raw(&self, slot: KeySlot) -> bool {
        self.table.release(slot)
    }

    /// Undoes the admission of `slot` (a later stage refused the call): the permit is
    /// given back and the key's schedule moves back one interval. False as
    /// [`release_raw`](Self::release_raw).
    pub fn cancel_raw(&self, slot: KeySlot) -> bool {
        self.table.cancel(slot, &self.rule)
    }

    /// The table's state and counters (scans every bucket: for monitoring, not for a
    /// hot path).
    pub fn snapshot(&self) -> KeyedSnapshot {
        let (active_keys, held) = self.table.count_live(self.units(self.clock.now()));
        KeyedSnapshot {
            max_keys: self.config.max_keys,
            capacity: self.table.capacity() as u64,
            active_keys,
            held,
            // Relaxed: statistics.
            evictions: self.evictions.load(Ordering::Relaxed),
            evicted_debt: self.evicted_debt.load(Ordering::Relaxed),
            shed: self.shed.load(Ordering::Relaxed),
            top_rejected: self.heavy.top(|bucket, id| {
                self.table.pending(bucket, id)
                    + self.tallies.iter().map(|t| t.pending(id)).sum::<u64>()
            }),
        }
    }
}

/// A permit of one key: dropping it gives back the key's concurrency slot.
#[must_use = "dropping the permit at once releases the key's slot at once"]
pub struct KeyedPermit<'a, C: Clock = AnyClock> {
    limiter: &'a KeyedLimiter<C>,
    slot: Option<KeySlot>,
}

impl<C: Clock> std::fmt::Debug for KeyedPermit<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedPermit")
            .field("slot", &self.slot)
            .finish()
    }
}

impl<C: Clock> KeyedPermit<'_, C> {
    /// The call was not made: give the quota back too (see
    /// [`KeyedLimiter::cancel_raw`]).
    pub fn cancel(mut self) {
        if let Some(slot) = self.slot.take() {
            self.limiter.cancel_raw(slot);
        }
    }

    /// The plain-data slot; the caller now gives it back itself.
    pub fn into_raw(mut self) -> KeySlot {
        self.slot.take().expect("a live permit has its slot")
    }
}

impl<C: Clock> Drop for KeyedPermit<'_, C> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.limiter.release_raw(slot);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::keyed::table::REJECTION_BATCH;
    use std::time::Duration;

    const SEED_KNOWN: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

    /// `n` keys both of whose buckets are the victim's first bucket in a table with
    /// `seed`: what a client who knew the seed would send.
    fn colliding_keys(seed: [u64; 2], max_keys: u32, n: usize) -> Vec<Vec<u8>> {
        let table = Table::new(max_keys, KeyHasher::with_seed(seed[0], seed[1]));
        let (target, _) = table.locate(b"victim");
        (0u64..)
            .map(|i| format!("attacker-{i}").into_bytes())
            .filter(|k| {
                let (first, id) = table.locate(k);
                first == target && table.second(id) == target
            })
            .take(n)
            .collect()
    }

    fn limiter(seed: [u64; 2], clock: &ManualClock) -> KeyedLimiter<ManualClock> {
        // One permit a minute, bursts of 5: every key used stays active for minutes.
        let config = PerKeyConfig::new(1, Duration::from_secs(60))
            .with_burst(5)
            .with_max_keys(1_000);
        KeyedLimiter::with_clock_and_seed(config, clock.clone(), seed).unwrap()
    }

    #[test]
    fn keys_aimed_at_one_bucket_only_evict_each_other_and_never_the_victim() {
        let clock = ManualClock::new();
        let keys = colliding_keys(SEED_KNOWN, 1_000, 60);
        let l = limiter(SEED_KNOWN, &clock);
        // The victim spends its whole burst: debt 5 permits.
        for _ in 0..5 {
            drop(l.try_acquire(b"victim").unwrap());
        }
        for k in &keys {
            drop(l.try_acquire(k).expect("a fresh key passes"));
        }
        let s = l.snapshot();
        // Six slots besides the victim's: every attacker key past them evicted another.
        assert_eq!(s.evictions, keys.len() as u64 - 6, "{s:?}");
        assert_eq!(
            s.evicted_debt, s.evictions,
            "each evicted attacker owed one permit"
        );
        let refused = l.try_acquire(b"victim").unwrap_err();
        assert_eq!(refused.reason, RejectReason::RateLimited);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(60)));
    }

    /// A limiter in which 7 keys sharing one bucket (as their first and second) each
    /// spent their whole burst, and 8 such keys (the 8th not yet seen).
    fn burst_spent_by_seven_colliding_keys(
        clock: &ManualClock,
    ) -> (KeyedLimiter<ManualClock>, Vec<Vec<u8>>) {
        let keys = colliding_keys(SEED_KNOWN, 1_000, 8);
        let l = limiter(SEED_KNOWN, clock);
        for k in &keys[..7] {
            for _ in 0..5 {
                drop(l.try_acquire(k).unwrap());
            }
        }
        (l, keys)
    }

    #[test]
    fn the_eviction_bound_is_reached_by_a_key_evicted_at_full_debt() {
        let clock = ManualClock::new();
        let (l, keys) = burst_spent_by_seven_colliding_keys(&clock);
        // Every key owes its whole burst: the newcomer evicts the first of them.
        drop(l.try_acquire(&keys[7]).unwrap());
        let s = l.snapshot();
        assert_eq!((s.evictions, s.evicted_debt), (1, 5));
        // The evicted key comes back fresh: exactly its debt more than an exact limiter
        // (which would refuse it for a minute) lets through.
        let extra = (0..10).filter(|_| l.try_acquire(&keys[0]).is_ok()).count();
        assert_eq!(extra as u64, s.evicted_debt);
    }

    #[test]
    fn rejections_pending_in_a_slot_are_counted_in_the_snapshot_and_when_evicted() {
        let clock = ManualClock::new();
        let (l, keys) = burst_spent_by_seven_colliding_keys(&clock);
        // 1 handed over at once, one batch, and the rest still in the slot.
        let n = 1 + REJECTION_BATCH + 4;
        for _ in 0..n {
            assert!(l.try_acquire(&keys[0]).is_err());
        }
        let top = l.snapshot().top_rejected;
        assert_eq!((&top[0].key, top[0].rejections), (&keys[0], n));
        // The newcomer evicts keys[0] (first of the equal debts): its pending count
        // goes to its counter in the sketch.
        drop(l.try_acquire(&keys[7]).unwrap());
        let s = l.snapshot();
        assert_eq!(s.evictions, 1);
        assert_eq!(
            (&s.top_rejected[0].key, s.top_rejected[0].rejections),
            (&keys[0], n)
        );
    }

    #[test]
    fn the_same_keys_under_another_seed_spread_out() {
        let keys = colliding_keys(SEED_KNOWN, 1_000, 60);
        let clock = ManualClock::new();
        // 512 buckets: 8 of 60 random keys in one of them has a chance below 10^-9.
        let config = PerKeyConfig::new(1, Duration::from_secs(60)).with_max_keys(10_000);
        for l in [
            KeyedLimiter::with_clock_and_seed(config, clock.clone(), [1, 2]).unwrap(),
            KeyedLimiter::with_clock(config, clock.clone()).unwrap(),
        ] {
            for k in &keys {
                drop(l.try_acquire(k).unwrap());
            }
            let s = l.snapshot();
            assert_eq!((s.evictions, s.active_keys), (0, keys.len() as u64));
        }
    }

    #[test]
    fn a_refusal_the_coarse_lag_explains_is_asked_again_precisely() {
        let precise = ManualClock::new();
        let clock = precise.with_coarse_tick(Duration::from_millis(4));
        let l = KeyedLimiter::with_clock(
            PerKeyConfig::new(1_000, Duration::from_secs(1)).with_burst(1),
            clock.clone(),
        )
        .unwrap();
        precise.advance(Duration::from_millis(8));
        drop(l.try_acquire(b"k").unwrap());
        // 1 ms later the coarse reading has not moved, the precise one has.
        precise.advance(Duration::from_millis(1));
        assert!(l.try_acquire(b"k").is_ok(), "at {}", precise.now());
        let refused = l.try_acquire(b"k").unwrap_err();
        assert_eq!(refused.retry_after, Some(Duration::from_millis(1)));
    }
}
