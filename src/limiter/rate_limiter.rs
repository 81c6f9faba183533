//! The GCRA rate limiter: one atomic word, one clock read, one compare-exchange loop.

use super::config::{Quota, RateLimiterConfig};
use super::error::LimiterError;
use super::gcra::{self, Decision};
use super::refund;
use super::reservation::{RawReservation, Reservation};
use crate::clock::{duration_to_nanos, nanos_to_duration, AnyClock, Clock, CoarseClock, TscClock};
use crate::error::ConfigError;
use crate::rejection::{RejectReason, Rejection};
use crate::shm::{Place, Segment};
use crate::sync::{Arc, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::time::Duration;

/// How many coarse-clock ticks `(burst - 1) × period / rate` must span before
/// [`RateLimiter::new`] reads the cheap coarse clock (see [`RateLimiter::clock_for`]).
pub const COARSE_CLOCK_MIN_TICKS: u64 = 4;

/// A GCRA rate limiter: `rate` permits per `period`, at most `burst` at once.
///
/// The whole mutable state is one `AtomicU64`, the theoretical arrival time (TAT) in the
/// quota's exact units (nanoseconds since the limiter was made, times a small scale that
/// makes `period / rate` a whole number; see [`RateLimiterConfig::validate`]). A
/// decision is one clock read, one load and one compare-exchange: lock-free and
/// allocation-free.
///
/// Guarantees, on the limiter's clock:
/// * over any interval of length `T`, at most `burst + rate · T / period` permits are
///   admitted (reservations count at the time they fall due);
/// * with demand always waiting, exactly that many pass: no drift, however long;
/// * a clock that stalls or reads earlier than before never admits more and never
///   panics; it only delays permits;
/// * a rejection's `retry_after` is exact: the same request, alone, passes after that
///   long and not a nanosecond earlier (for a limiter from [`new`](RateLimiter::new) on
///   `CLOCK_MONOTONIC`, a refusal far from due may be answered from the coarse clock
///   and be later by up to the coarse clock's lag, see
///   [`clock_for`](RateLimiter::clock_for); waiting it out always suffices).
///
/// A call is decided at its clock reading. A thread preempted between its reading and
/// its decision, while other threads take permits, is decided as if it came that much
/// earlier: with a tolerance (`(burst - 1) × period / rate`) shorter than the pause it
/// may be refused although the quota had room by then (never admitted in excess).
/// governor's GCRA behaves the same; give a quota that must never refuse a tolerance
/// well above a scheduler pause (milliseconds).
///
/// ```
/// use breakwater::clock::ManualClock;
/// use breakwater::limiter::{RateLimiter, RateLimiterConfig};
/// use breakwater::RejectReason;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::with_clock(
///     RateLimiterConfig::new(2, Duration::from_secs(1)),
///     clock.clone(),
/// ).unwrap();
/// assert!(limiter.try_acquire().is_ok());
/// assert!(limiter.try_acquire().is_ok());
/// let no = limiter.try_acquire().unwrap_err();
/// assert_eq!(no.reason, RejectReason::RateLimited);
/// assert_eq!(no.retry_after, Some(Duration::from_millis(500)));
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.try_acquire().is_ok());
/// ```
pub struct RateLimiter<C: Clock = AnyClock> {
    /// The TAT and refund ledger: on the heap, or in a host-wide segment.
    shared: Place<LimiterState>,
    /// The segment `shared` is in, kept mapped while the limiter lives (`None`: heap).
    host: Option<Arc<Segment>>,
    quota: Quota,
    /// The clock reading at creation; time before it reads as the creation instant.
    epoch: u64,
    clock: C,
    config: RateLimiterConfig,
    /// In units, the most the clock's cheap reading may lag its precise one
    /// ([`Clock::coarse_lag`]), when this limiter answers from the cheap reading first
    /// (see [`RateLimiter::clock_for`]); 0 = never.
    coarse_lag: u64,
    /// When the clock is the TSC clock: its counter scaled straight into units since the
    /// epoch (see [`TscUnits`]), in place of `clock.now()`.
    tsc: Option<TscUnits>,
}

/// The TSC clock's counter read as quota units since a limiter's epoch, with one
/// multiply: `(ticks - base) × mult / 2^32`, where `mult` is the calibration's
/// nanoseconds per tick (× 2^32) times the quota's units per nanosecond. That skips the
/// clock's own conversion to nanoseconds, its offset and the limiter's epoch and scale
/// on every call. The readings are the clock's to within a unit (a finer rounding of the
/// same line), non-decreasing in the counter, and the limiter reads no other: every
/// decision, reservation and refund of the limiter is on this one time line.
#[derive(Clone, Copy, Debug)]
struct TscUnits {
    clock: TscClock,
    /// The counter at the epoch.
    base: u64,
    /// Units per tick, × 2^32.
    mult: u64,
}

impl TscUnits {
    /// The scale for `clock` and `quota` from the counter `base` on, or `None` when the
    /// multiplier does not fit a `u64` (a counter slower than 2^27 ns a tick: none).
    fn new(clock: TscClock, base: u64, quota: &Quota) -> Option<Self> {
        let mult = clock.calibration().mult.checked_mul(quota.scale)?;
        Some(Self { clock, base, mult })
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        tsc_units(self.clock.ticks(), self.base, self.mult)
    }
}

/// Counter ticks since `base` in units of `mult / 2^32` per tick: non-decreasing in
/// `ticks`, 0 at or below `base` (a core whose counter lags a little reads the epoch),
/// saturating at `u64::MAX`.
#[inline(always)]
fn tsc_units(ticks: u64, base: u64, mult: u64) -> u64 {
    let wide = (u128::from(ticks.saturating_sub(base)) * u128::from(mult)) >> 32;
    u64::try_from(wide).unwrap_or(u64::MAX)
}

/// A limiter's mutable state, `#[repr(C)]` and pointer-free (all zero = a full bucket at
/// the epoch), so that it can live in a host-wide segment.
#[repr(C)]
pub(crate) struct LimiterState {
    /// The theoretical arrival time in quota units since `epoch`; `0` = full bucket at
    /// creation. Padded to its own cache line: it is the only word written on the hot
    /// path, and the read-only fields must not share its line.
    tat: CachePadded<AtomicU64>,
    /// What refunds have moved, for refunds that come after them (see `cancel_raw`).
    refunds: CachePadded<RefundLedger>,
}

/// Permits given back by refunds that were not the last slot of the schedule, so moved
/// every slot after theirs earlier. Two monotone counters of permits: `announced` is
/// bumped before such a refund touches the TAT, `finished` after it is done.
///
/// A token records `finished` before the compare-exchange that takes it (`seen`). When
/// it is refunded, `announced - seen` bounds the permits that every refund applied to
/// the TAT since then can have moved its slot by: a refund that finished before the
/// token read `finished` had applied its move before the token was taken (its Release
/// bump of `finished` orders its TAT write before the token's), and any other was
/// announced after `seen` was read, or was in flight then and is counted in `announced`
/// but not in `finished`. A refunder reads `announced` after loading the TAT it will
/// replace; every refund whose TAT write that value follows announced before that write
/// (Release), so it is counted. The counters only ever over-count a move, which makes a
/// refund give back less, never more. A refund of the last slot moves nothing and
/// records nothing.
///
/// `latest_due` is the latest instant (units) at which a reservation that had to wait
/// falls due: a refund never moves the slots after its own to before it, since a caller
/// already waiting for a slot will go ahead then and not earlier.
#[derive(Default)]
#[repr(C)]
struct RefundLedger {
    announced: AtomicU64,
    finished: AtomicU64,
    latest_due: AtomicU64,
}

/// A point-in-time view of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterSnapshot {
    /// Permits that would pass now.
    pub available: u64,
    /// The configured burst.
    pub burst: u64,
    /// The configured rate (permits per `period`).
    pub rate: u64,
    /// The configured period.
    pub period: Duration,
    /// How long until one permit would pass (zero when `available > 0`).
    pub next_free_in: Duration,
}

impl RateLimiter<AnyClock> {
    /// A limiter on the system clock that [`clock_for`](Self::clock_for) picks for this
    /// quota.
    ///
    /// When that is `CLOCK_MONOTONIC`, `try_acquire` and `try_acquire_n` still look at the
    /// coarse clock first and read the precise one only when the answer could depend on
    /// it (see [`clock_for`](Self::clock_for)).
    pub fn new(config: RateLimiterConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Self::with_clock(config, Self::clock_for(&config))
    }

    /// The system clock [`new`](Self::new) uses for `config`.
    ///
    /// `CLOCK_MONOTONIC_COARSE` (about 6 ns a read) moves in kernel ticks
    /// ([`CoarseClock::resolution`], typically 4 ms). Between two ticks a busy limiter
    /// sees no time pass; when the tick comes, the bucket refills by a whole tick's worth
    /// at once. That loses nothing as long as the bucket can hold it: with demand always
    /// waiting, the TAT sits about `(burst - 1) × interval` ahead of the clock after each
    /// tick, so a step of up to that much is absorbed in full and the delivered rate is
    /// exact. A smaller bucket overflows at each tick and under-delivers (at worst
    /// `burst` permits per tick). So the rule is:
    ///
    /// **coarse clock when `(burst - 1) × period / rate ≥ 4 ticks`
    /// ([`COARSE_CLOCK_MIN_TICKS`]), `CLOCK_MONOTONIC` (about 30 ns a read) otherwise.**
    ///
    /// The margin of four ticks absorbs late ticks. Examples with 4 ms ticks:
    /// 100/s burst 100 → coarse; 1000/s burst 10 → monotonic; 1/s burst 1 → monotonic.
    /// On either clock the bound holds in that clock's time; the coarse clock lags real
    /// time by up to one tick, so in real time an extra `rate × tick / period` permits
    /// can fall into a short window right after a tick.
    ///
    /// **Coarse first, precise when it matters.** A limiter whose clock has a cheap
    /// reading that lags ([`Clock::coarse_lag`] > 0: `CLOCK_MONOTONIC`, or a manual clock
    /// [`with_coarse_tick`](crate::clock::ManualClock::with_coarse_tick)) answers
    /// `try_acquire`/`try_acquire_n` from a cheap reading `c` when every precise reading
    /// `p` it could have taken (`c ≤ p ≤ c + lag`; for the system clock `lag` = 4 ticks,
    /// checked by a test on this machine) gives the same answer: when the TAT is at least `c + lag` ahead,
    /// the precise decision's base is the TAT too, so an admission stores exactly the
    /// same TAT; and a refusal whose deficit exceeds `lag` would be a refusal at any such
    /// `p`. Only near the boundary (or with the bucket full) does it read
    /// `CLOCK_MONOTONIC`. A refusal answered from the coarse reading carries a
    /// `retry_after` that is conservative by at most `lag` (waiting that long always
    /// suffices). Reservations always read the precise clock.
    ///
    /// **The TSC when the coarse reading could never decide.** When the whole bucket
    /// (`burst × period / rate`) spans no more than that lag, no admission and no
    /// refusal of `try_acquire` can be answered from the coarse reading, so such a
    /// limiter reads the calibrated TSC clock instead ([`AnyClock::precise_local`]:
    /// `rdtsc` and a multiply, where the counter is invariant; `CLOCK_MONOTONIC`
    /// elsewhere), once per call. On the TSC clock (whichever way it was handed in) the
    /// limiter scales the counter straight into its units, one multiply from `rdtsc` to
    /// the decision (see [`Clock::tsc`]).
    pub fn clock_for(config: &RateLimiterConfig) -> AnyClock {
        Self::clock_for_scope(config, false)
    }

    /// [`clock_for`](Self::clock_for) for a limiter whose schedule is shared with other
    /// processes when `host_wide`: then only the kernel's clocks, which every process
    /// reads on one time base (never the TSC clock, calibrated per process).
    pub fn clock_for_scope(config: &RateLimiterConfig, host_wide: bool) -> AnyClock {
        if Self::coarse_suffices(config) {
            AnyClock::Coarse
        } else if !host_wide && Self::coarse_never_decides(config, AnyClock::Monotonic.coarse_lag())
        {
            AnyClock::Monotonic.precise_local()
        } else {
            AnyClock::Monotonic
        }
    }

    /// Whether a cheap reading lagging by up to `lag_ns` can decide none of
    /// `try_acquire`'s calls: the bucket (`burst × period / rate`) spans at most the
    /// lag (see [`clock_for`](Self::clock_for)).
    pub fn coarse_never_decides(config: &RateLimiterConfig, lag_ns: u64) -> bool {
        let span = u128::from(config.burst) * config.period.as_nanos();
        span <= u128::from(lag_ns) * u128::from(config.rate.max(1))
    }

    /// Whether the kernel's coarse clock ([`CoarseClock::resolution`] a tick) delivers
    /// `config` exactly: [`coarse_is_exact`](Self::coarse_is_exact) with that tick.
    pub fn coarse_suffices(config: &RateLimiterConfig) -> bool {
        Self::coarse_is_exact(config, duration_to_nanos(CoarseClock::resolution()).max(1))
    }

    /// Whether a clock stepping in `tick_ns` ticks delivers `config` exactly (the rule of
    /// [`clock_for`](Self::clock_for) for a given tick).
    pub fn coarse_is_exact(config: &RateLimiterConfig, tick_ns: u64) -> bool {
        let span = u128::from(config.burst.saturating_sub(1)) * config.period.as_nanos();
        let rate = u128::from(config.rate.max(1));
        span >= u128::from(COARSE_CLOCK_MIN_TICKS) * u128::from(tick_ns) * rate
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter reading time from `clock` (its cheap reading first, when it has one
    /// that lags: see [`clock_for`](RateLimiter::clock_for)). The bucket starts full.
    pub fn with_clock(config: RateLimiterConfig, clock: C) -> Result<Self, ConfigError> {
        Self::placed(config, clock, None)
    }

    /// Whether this limiter's schedule is shared host-wide (`scope = "host"`).
    pub fn is_host_wide(&self) -> bool {
        self.host.is_some()
    }

    /// Bytes of the state block a limiter keeps in a host-wide segment.
    pub(crate) fn host_block() -> usize {
        std::mem::size_of::<LimiterState>()
    }

    /// A limiter whose state is at `segment`'s limiter offset, with the segment's epoch,
    /// when `segment` is given (every process then shares one schedule on the system-wide
    /// `CLOCK_MONOTONIC` time line); on the heap from now otherwise.
    pub(crate) fn placed(
        config: RateLimiterConfig,
        clock: C,
        segment: Option<&Arc<Segment>>,
    ) -> Result<Self, ConfigError> {
        let quota = Quota::from_config(&config)?;
        // Read before the epoch, so that the counter's epoch is no later than the clock's.
        let tsc_base = clock.tsc().map(|tsc| (tsc, tsc.ticks()));
        let (shared, epoch) = match segment {
            // SAFETY: the segment's layout reserves `host_block()` bytes at
            // `layout().limiter`, 128-byte aligned inside the checked mapping; the block
            // is atomics only, valid in every bit pattern. The limiter's `host` field
            // keeps the segment mapped while it lives.
            Some(s) => (unsafe { Place::mapped(s, s.layout().limiter) }, s.epoch()),
            None => (
                Place::local(LimiterState {
                    tat: CachePadded::new(AtomicU64::new(0)),
                    refunds: CachePadded::new(RefundLedger::default()),
                }),
                clock.now(),
            ),
        };
        // A lag of a unit or more; a sub-unit lag rounds up to one, so the shortcut's
        // window always covers it.
        let coarse_lag = match clock.coarse_lag() {
            0 => 0,
            lag => quota.nanos_to_units(lag).max(1),
        };
        // A host-wide schedule keeps the clock every process reads (a TSC clock is
        // calibrated per process; `clock_for_scope` never picks it there anyway).
        let tsc = match (segment, tsc_base) {
            (None, Some((tsc, base))) => TscUnits::new(tsc, base, &quota),
            _ => None,
        };
        Ok(Self {
            shared,
            host: segment.cloned(),
            quota,
            epoch,
            clock,
            config,
            coarse_lag,
            tsc,
        })
    }

    /// Now, in quota units since the epoch (saturating: an earlier reading is the epoch,
    /// and past the horizon time stands still).
    #[inline(always)]
    fn now_units(&self) -> u64 {
        if let Some(tsc) = &self.tsc {
            return tsc.now();
        }
        self.quota
            .nanos_to_units(self.clock.now().saturating_sub(self.epoch))
    }

    /// Takes one permit, or says when one will be there.
    ///
    /// One clock read, one load and (when admitted) one compare-exchange.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<(), Rejection> {
        match self.admit_now(self.quota.interval) {
            Ok(_) => Ok(()),
            Err(retry) => Err(self.rejection(retry)),
        }
    }

    /// [`try_acquire`](Self::try_acquire) returning the permit as a [`RawReservation`]
    /// due now, so that it can be given back with [`cancel_raw`](Self::cancel_raw) if
    /// the call does not happen after all (a later stage of a policy refused it). Costs
    /// one load more than `try_acquire`.
    #[inline(always)]
    pub fn try_acquire_raw(&self) -> Result<RawReservation, Rejection> {
        let seen = self.refunds_seen();
        match self.admit_now(self.quota.interval) {
            Ok(admitted) => Ok(RawReservation {
                wait_ns: 0,
                permits: 1,
                tat: admitted.tat,
                refunds_seen: seen,
                taken_at: admitted.at,
            }),
            Err(retry) => Err(self.rejection(retry)),
        }
    }

    /// Takes `n` permits at once, or none.
    ///
    /// `n == 0` passes and changes nothing. `n > burst` is
    /// [`LimiterError::ExceedsBurst`]: it could never pass.
    #[inline]
    pub fn try_acquire_n(&self, n: u64) -> Result<(), LimiterError> {
        let increment = self.increment(n)?;
        if increment == 0 {
            return Ok(());
        }
        match self.admit_now(increment) {
            Ok(_) => Ok(()),
            Err(retry) => Err(LimiterError::Rejected(self.rejection(retry))),
        }
    }

    /// Commits `n` permits that fall due within `max_wait`, and says how long to wait.
    ///
    /// If they would fall due later than `max_wait`, nothing is committed and the
    /// rejection's `retry_after` says when the same reservation would pass. `n == 0` is
    /// an empty reservation with no wait; `n > burst` is [`LimiterError::ExceedsBurst`].
    pub fn reserve(&self, n: u64, max_wait: Duration) -> Result<Reservation<'_, C>, LimiterError> {
        let increment = self.increment(n)?;
        if increment == 0 {
            return Ok(Reservation::new(self, RawReservation::default()));
        }
        let max_wait = self.quota.duration_to_units(max_wait);
        let seen = self.refunds_seen();
        match self.commit(increment, max_wait) {
            Ok(admitted) => Ok(Reservation::new(
                self,
                RawReservation {
                    wait_ns: self.quota.units_to_nanos_ceil(admitted.wait),
                    permits: n,
                    tat: admitted.tat,
                    refunds_seen: seen,
                    taken_at: admitted.at,
                },
            )),
            Err(retry) => Err(LimiterError::Rejected(self.rejection(retry))),
        }
    }

    /// Reserves `n` permits due within `max_wait` and sleeps (the calling thread) until
    /// they are due. Errors as [`reserve`](Self::reserve); the wait is real time.
    pub fn try_acquire_n_for(&self, n: u64, max_wait: Duration) -> Result<(), LimiterError> {
        let reservation = self.reserve(n, max_wait)?;
        let wait = reservation.wait();
        reservation.commit();
        sleep(wait);
        Ok(())
    }

    /// Gives back the permits of a reservation (or of [`try_acquire_raw`]) made by this
    /// limiter, as far as that is safe, and returns whether anything went back.
    ///
    /// The permits' slot leaves the GCRA schedule: every slot after it moves up by the
    /// part of it that has not yet elapsed, and no slot moves to before now, nor to before
    /// the instant a waiting reservation falls due (its caller goes ahead then, not
    /// earlier). So a slot still wholly ahead goes back in full, also when other permits
    /// were taken after it, and time already spent is not handed out again; with a burst
    /// of 1, a slot that a waiting reservation follows cannot go back until it is due. The schedule is then exactly as
    /// if the permits had never been taken when the permits taken after them were taken
    /// at this same instant or not at all (the refund right after a later stage refused
    /// the call). If they were taken earlier, or if other refunds since moved this slot
    /// by less than their permits, the refund gives back less than that, never more: the
    /// limiter still never keeps more than `burst + rate · T / period` permits in any
    /// interval `T`. (That bound needs a clock that does not run backwards between the
    /// taking and the refund, as every system clock here.)
    ///
    /// Give a reservation back at most once: the limiter cannot tell two identical raw
    /// reservations apart. A raw reservation it cannot have made (more permits than
    /// `burst`) is refused with `false`; an empty one (0 permits) gives back nothing and
    /// returns `true`.
    ///
    /// [`try_acquire_raw`]: Self::try_acquire_raw
    pub fn cancel_raw(&self, raw: RawReservation) -> bool {
        if raw.permits == 0 {
            return true;
        }
        let Ok(increment) = self.increment(raw.permits) else {
            return false;
        };
        let slot = refund::Slot {
            end: raw.tat,
            increment,
            taken_at: raw.taken_at,
        };
        let mut announced = false;
        // Acquire on every TAT load: pairs with the Release of the refunds' TAT writes
        // (through the release sequence that the admissions' read-modify-writes
        // continue), so the ledger read after it counts every refund the value follows.
        let mut tat = self.shared.tat.load(Ordering::Acquire);
        let given = loop {
            // Acquire: see `RefundLedger`.
            let mut moved = self
                .shared
                .refunds
                .announced
                .load(Ordering::Acquire)
                .wrapping_sub(raw.refunds_seen);
            if announced {
                moved = moved.wrapping_sub(raw.permits); // not our own announcement
            }
            let moved = moved.saturating_mul(self.quota.interval);
            // Acquire: pairs with the Release of the reservation's TAT write (see
            // `commit`), so a waiting slot after this one is never moved before its due.
            let due = self.shared.refunds.latest_due.load(Ordering::Acquire);
            let (back, last) = match refund::step(slot, tat, self.now_units(), due, moved) {
                refund::Step::Nothing => break false,
                refund::Step::Last(back) => (back, true),
                refund::Step::Inner(back) => (back, false),
            };
            if !last && !announced {
                // Slots after this one move up: announce the move before the TAT write
                // (Relaxed: the Release compare-exchange below publishes it), then
                // decide again with it in place.
                self.shared
                    .refunds
                    .announced
                    .fetch_add(raw.permits, Ordering::Relaxed);
                announced = true;
                tat = self.shared.tat.load(Ordering::Acquire);
                continue;
            }
            // Release: publishes the announcement with this write to every refund that
            // later loads it or a value after it. Acquire on failure: see above.
            match self.shared.tat.compare_exchange_weak(
                tat,
                tat - back,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => break true,
                Err(actual) => tat = actual,
            }
        };
        if announced {
            // Release: a token that reads this count was taken after this move.
            self.shared
                .refunds
                .finished
                .fetch_add(raw.permits, Ordering::Release);
        }
        given
    }

    /// The count of finished refunds a new slot records (read before the
    /// compare-exchange that takes it; see `RefundLedger`).
    #[inline]
    fn refunds_seen(&self) -> u64 {
        // Acquire: see `RefundLedger`.
        self.shared.refunds.finished.load(Ordering::Acquire)
    }

    /// Permits that would pass now.
    pub fn available(&self) -> u64 {
        let now = self.now_units();
        // Relaxed: a snapshot of one word; nothing else is read through it.
        let tat = self.shared.tat.load(Ordering::Relaxed);
        gcra::available(tat, now, self.quota.interval, self.quota.tolerance)
    }

    /// Available permits, the quota, and how long until one more permit passes.
    pub fn snapshot(&self) -> LimiterSnapshot {
        let now = self.now_units();
        // Relaxed: see `available`.
        let tat = self.shared.tat.load(Ordering::Relaxed);
        let available = gcra::available(tat, now, self.quota.interval, self.quota.tolerance);
        let next_free_in =
            match gcra::decide(tat, now, self.quota.interval, self.quota.tolerance, 0) {
                Decision::Admit { .. } => Duration::ZERO,
                Decision::Deny {
                    retry_after: Some(u),
                } => Duration::from_nanos(self.quota.units_to_nanos_ceil(u)),
                Decision::Deny { retry_after: None } => Duration::MAX,
            };
        LimiterSnapshot {
            available,
            burst: self.config.burst,
            rate: self.config.rate,
            period: self.config.period,
            next_free_in,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimiterConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Whether the quota is represented exactly (see [`RateLimiterConfig::validate`]);
    /// when `false` the interval is rounded up by less than 1/32 ns.
    pub fn is_exact(&self) -> bool {
        self.quota.exact
    }

    /// `n × interval`, or `ExceedsBurst`.
    #[inline]
    fn increment(&self, n: u64) -> Result<u64, LimiterError> {
        if n > self.config.burst {
            return Err(LimiterError::ExceedsBurst {
                requested: n,
                burst: self.config.burst,
            });
        }
        // n ≤ burst, and burst × interval = tolerance fits (validated).
        Ok(n * self.quota.interval)
    }

    /// An admission with no wait: on the clock's cheap reading first when it lags (see
    /// [`RateLimiter::clock_for`]), else on the precise reading.
    #[inline(always)]
    fn admit_now(&self, increment: u64) -> Result<Admitted, Option<u64>> {
        if self.coarse_lag != 0 {
            if let Some(answer) = self.admit_on_coarse(increment) {
                return answer;
            }
        }
        self.commit(increment, 0)
    }

    /// The coarse-first decision; `None` when the precise reading must decide.
    #[inline(always)]
    fn admit_on_coarse(&self, increment: u64) -> Option<Result<Admitted, Option<u64>>> {
        let coarse = self
            .quota
            .nanos_to_units(self.clock.now_coarse().saturating_sub(self.epoch));
        // Every precise reading `p` of this moment lies in [coarse, guard].
        let guard = coarse.saturating_add(self.coarse_lag);
        let due = coarse.saturating_add(self.quota.tolerance);
        // Relaxed: as in `commit`.
        let mut tat = self.shared.tat.load(Ordering::Relaxed);
        loop {
            if tat < guard {
                return None; // p may pass the TAT: the base would differ
            }
            let new_tat = tat.checked_add(increment)?;
            if new_tat <= due {
                // Admitted at `coarse`, hence at every p ≥ coarse, with base = TAT: the
                // precise decision would store this same value.
                match self.shared.tat.compare_exchange_weak(
                    tat,
                    new_tat,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return Some(Ok(Admitted {
                            tat: new_tat,
                            wait: 0,
                            at: coarse,
                        }))
                    }
                    Err(actual) => {
                        tat = actual;
                        continue;
                    }
                }
            }
            let deficit = new_tat - due;
            // Refused at every p ≤ coarse + lag when the deficit exceeds the lag.
            return (deficit > self.coarse_lag).then_some(Err(Some(deficit)));
        }
    }

    /// The compare-exchange loop around [`gcra::decide`]: what was stored once the
    /// request is, `Err(retry_after)` in units when refused.
    #[inline(always)]
    fn commit(&self, increment: u64, max_wait: u64) -> Result<Admitted, Option<u64>> {
        let now = self.now_units();
        // Relaxed loads: the admission decision needs no happens-before edge; every
        // change is a read-modify-write on this one word, whose modification order alone
        // makes the decisions consistent (each admission is computed from the latest TAT).
        let mut tat = self.shared.tat.load(Ordering::Relaxed);
        loop {
            match gcra::decide(tat, now, increment, self.quota.tolerance, max_wait) {
                Decision::Admit { new_tat, wait } => {
                    if wait != 0 {
                        // A waiting slot must not be moved up to before it falls due by
                        // a refund (see `cancel_raw`): publish its due time first
                        // (Relaxed: the Release compare-exchange below publishes it).
                        self.shared
                            .refunds
                            .latest_due
                            .fetch_max(now.saturating_add(wait), Ordering::Relaxed);
                    }
                    // Release: a refund that loads this TAT (or a later one) then sees the
                    // due time above. Free on x86, where every read-modify-write is a
                    // full barrier.
                    match self.shared.tat.compare_exchange_weak(
                        tat,
                        new_tat,
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            return Ok(Admitted {
                                tat: new_tat,
                                wait,
                                at: now,
                            })
                        }
                        Err(actual) => tat = actual,
                    }
                }
                Decision::Deny { retry_after } => return Err(retry_after),
            }
        }
    }

    /// The refusal with its `retry_after`. Inline: on the refusal path of a tight quota
    /// this is most of the work left after the clock read, and the call cost more.
    #[inline(always)]
    fn rejection(&self, retry_after: Option<u64>) -> Rejection {
        Rejection::new(
            RejectReason::RateLimited,
            retry_after.map(|u| nanos_to_duration(self.quota.units_to_nanos_ceil(u))),
        )
    }
}

/// An admission: the TAT it stored, its wait and the reading it was decided at (units).
#[derive(Clone, Copy)]
struct Admitted {
    tat: u64,
    wait: u64,
    at: u64,
}

#[cfg(not(loom))]
fn sleep(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

#[cfg(loom)]
fn sleep(_: Duration) {
    crate::sync::thread::yield_now();
}

impl<C: Clock + fmt::Debug> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .field("tat", &self.shared.tat.load(Ordering::Relaxed))
            .field("epoch", &self.epoch)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(rate: u64, period: Duration, burst: u64) -> (RateLimiter<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let l = RateLimiter::with_clock(
            RateLimiterConfig::new(rate, period).with_burst(burst),
            clock.clone(),
        )
        .unwrap();
        (l, clock)
    }

    #[test]
    fn burst_then_exact_retry_after() {
        let (l, clock) = limiter(10, Duration::from_secs(1), 3);
        for _ in 0..3 {
            l.try_acquire().unwrap();
        }
        let r = l.try_acquire().unwrap_err();
        assert_eq!(r.retry_after, Some(100 * MS), "at {}", clock.now());
        clock.advance(100 * MS - Duration::from_nanos(1));
        assert_eq!(
            l.try_acquire().unwrap_err().retry_after,
            Some(Duration::from_nanos(1))
        );
        clock.advance(Duration::from_nanos(1));
        l.try_acquire().unwrap();
    }

    #[test]
    fn fractional_interval_has_no_drift() {
        // 3 per second: 333_333_333.3 ns each; a burst of 2 absorbs the 1 µs steps.
        let (l, clock) = limiter(3, Duration::from_secs(1), 2);
        let mut admitted = 0;
        for _ in 0..3_000_000 {
            if l.try_acquire().is_ok() {
                admitted += 1;
            }
            clock.advance(Duration::from_micros(1));
        }
        // Last attempt at 2.999999 s: 2 + floor(3 × 2.999999) = 10.
        assert_eq!(admitted, 10, "at {}", clock.now());
        // The 11th permit is due at exactly 3 s, where the clock now is.
        l.try_acquire().unwrap();
        let r = l.try_acquire().unwrap_err().retry_after.unwrap();
        assert_eq!(
            r,
            Duration::from_nanos(333_333_334),
            "ceil of 333_333_333.3"
        );
    }

    #[test]
    fn weighted_and_exceeds_burst() {
        let (l, _clock) = limiter(10, Duration::from_secs(1), 5);
        assert_eq!(l.try_acquire_n(0), Ok(()));
        assert_eq!(
            l.try_acquire_n(6),
            Err(LimiterError::ExceedsBurst {
                requested: 6,
                burst: 5
            })
        );
        l.try_acquire_n(4).unwrap();
        assert_eq!(l.available(), 1);
        let e = l.try_acquire_n(3).unwrap_err();
        assert_eq!(e.rejection().unwrap().retry_after, Some(200 * MS));
        assert!(l.reserve(6, Duration::MAX).is_err());
    }

    #[test]
    fn reservations_cancel_in_any_order() {
        let (l, _clock) = limiter(10, Duration::from_secs(1), 1);
        l.try_acquire().unwrap();
        let a = l.reserve(1, Duration::from_secs(1)).unwrap();
        let b = l.reserve(1, Duration::from_secs(1)).unwrap();
        assert_eq!((a.wait(), b.wait()), (100 * MS, 200 * MS));
        // b's caller goes ahead at 200 ms whatever happens: with a burst of 1, its slot
        // cannot move up, so a's cannot go back while b waits.
        assert!(!a.cancel(), "b waits right behind a");
        assert!(b.cancel(), "the last one");
        assert_eq!(
            l.reserve(1, Duration::from_secs(1)).unwrap().wait(),
            200 * MS
        );
        // With room in the bucket, a waiting slot can move up and an earlier one goes
        // back although it came after.
        let (l, clock) = limiter(10, Duration::from_secs(1), 3);
        l.try_acquire_n(3).unwrap();
        let a = l.reserve(1, Duration::from_secs(1)).unwrap();
        let b = l.reserve(1, Duration::from_secs(1)).unwrap();
        assert_eq!((a.wait(), b.wait()), (100 * MS, 200 * MS));
        assert!(
            a.cancel(),
            "b moves up to [300, 400) ms, still after its due 200 ms"
        );
        let c = l.reserve(1, Duration::from_secs(1)).unwrap();
        assert_eq!(c.wait(), 200 * MS, "at {}", clock.now());
        assert!(c.cancel());
        assert!(b.cancel());
        assert_eq!(
            l.reserve(1, Duration::from_secs(1)).unwrap().wait(),
            100 * MS
        );
        assert!(
            !l.cancel_raw(RawReservation {
                permits: 4,
                ..RawReservation::default()
            }),
            "more than the burst: not one of ours"
        );
        clock.advance(Duration::from_secs(10));
        assert_eq!(l.available(), 3);
    }

    #[test]
    fn reservations_cancel_in_reverse() {
        let (l, _clock) = limiter(10, Duration::from_secs(1), 2);
        let taken: Vec<_> = (0..4)
            .map(|_| l.reserve(1, Duration::from_secs(1)).unwrap().into_raw())
            .collect();
        for raw in taken.into_iter().rev() {
            assert!(l.cancel_raw(raw));
        }
        assert_eq!(l.available(), 2, "all four back");
    }

    #[test]
    fn a_refund_gives_back_only_what_has_not_elapsed() {
        let (l, clock) = limiter(10, Duration::from_secs(1), 2);
        let a = l.try_acquire_raw().unwrap(); // slot [0, 100 ms)
        l.try_acquire().unwrap(); // [100, 200 ms)
        clock.advance(40 * MS);
        assert!(l.cancel_raw(a));
        // 40 of a's 100 ms were spent: the later slot moves up by 60 ms to [40, 140),
        // not to [0, 100) (that would hand the spent 40 ms out again).
        l.try_acquire().unwrap();
        assert_eq!(l.try_acquire().unwrap_err().retry_after, Some(100 * MS));
        // A slot wholly in the past gives back nothing.
        let (l, clock) = limiter(10, Duration::from_secs(1), 2);
        let a = l.try_acquire_raw().unwrap();
        clock.advance(100 * MS);
        assert!(!l.cancel_raw(a));
    }

    #[test]
    fn a_refund_right_away_is_as_if_never_taken_also_with_later_tokens() {
        let (l, clock) = limiter(10, Duration::from_secs(1), 5);
        let (twin, twin_clock) = limiter(10, Duration::from_secs(1), 5);
        clock.advance(30 * MS);
        twin_clock.advance(30 * MS);
        l.try_acquire_n(2).unwrap();
        twin.try_acquire_n(2).unwrap();
        let a = l.try_acquire_raw().unwrap();
        l.try_acquire().unwrap();
        twin.try_acquire().unwrap();
        assert!(l.cancel_raw(a));
        assert_eq!(l.snapshot(), twin.snapshot());
        assert_eq!(l.try_acquire_n(2), twin.try_acquire_n(2));
        assert_eq!(l.try_acquire(), twin.try_acquire());
    }

    #[test]
    fn reserve_rejection_says_when_it_would_fit() {
        let (l, _clock) = limiter(10, Duration::from_secs(1), 1);
        l.try_acquire().unwrap();
        let e = l.reserve(1, 30 * MS).unwrap_err();
        assert_eq!(e.rejection().unwrap().retry_after, Some(70 * MS));
        let empty = l.reserve(0, Duration::ZERO).unwrap();
        assert_eq!(empty.wait(), Duration::ZERO);
        assert!(empty.cancel());
    }

    #[test]
    fn acquire_sleeps_for_its_reservation() {
        let l =
            RateLimiter::new(RateLimiterConfig::new(1000, Duration::from_secs(1)).with_burst(1))
                .unwrap();
        let start = std::time::Instant::now();
        l.try_acquire_n_for(1, Duration::ZERO).unwrap();
        l.try_acquire_n_for(1, 10 * MS).unwrap();
        assert!(start.elapsed() >= Duration::from_micros(900));
        assert!(l.try_acquire_n_for(1, Duration::ZERO).is_err() || start.elapsed() >= 2 * MS);
    }

    #[test]
    fn clock_going_backwards_never_admits_more() {
        let (l, clock) = limiter(10, Duration::from_secs(1), 2);
        clock.set(1_000_000_000);
        l.try_acquire_n(2).unwrap();
        clock.set(1);
        assert!(l.try_acquire().is_err());
        assert_eq!(l.available(), 0);
        clock.advance(Duration::from_millis(200));
        assert!(
            l.try_acquire().is_err(),
            "back to 1 s + 200 ms - 1 s: still empty"
        );
        clock.set(1_200_000_001);
        l.try_acquire_n(2).unwrap();
        // At the end of time (584 years) the limiter refuses without a retry hint.
        clock.set(u64::MAX);
        assert_eq!(l.try_acquire().unwrap_err().retry_after, None);
    }

    #[test]
    fn snapshot_reports_quota_and_next_free() {
        let (l, _clock) = limiter(4, Duration::from_secs(1), 2);
        l.try_acquire_n(2).unwrap();
        let s = l.snapshot();
        assert_eq!(
            s,
            LimiterSnapshot {
                available: 0,
                burst: 2,
                rate: 4,
                period: Duration::from_secs(1),
                next_free_in: 250 * MS,
            }
        );
    }

    proptest::proptest! {
        /// The limiter's TSC time line: non-decreasing in the counter, and the clock's
        /// own reading in units to within one nanosecond's worth (a finer rounding).
        #[test]
        fn tsc_units_follow_the_clock(
            tsc0 in proptest::prelude::any::<u64>(),
            ns0 in 1u64..1 << 62,
            mult in 1u64..1 << 40,
            scale in 1u64..=32,
            a in 0u64..1 << 50,
            b in 0u64..1 << 50,
        ) {
            let cal = crate::clock::Calibration { tsc0, ns0, mult };
            let (lo, hi) = (tsc0.saturating_add(a.min(b)), tsc0.saturating_add(a.max(b)));
            let m = mult * scale;
            proptest::prop_assert!(tsc_units(lo, tsc0, m) <= tsc_units(hi, tsc0, m));
            let generic = (cal.nanos(hi) - cal.nanos(tsc0)) * scale;
            let ours = tsc_units(hi, tsc0, m);
            proptest::prop_assert!(ours >= generic && ours < generic + scale, "{ours} vs {generic}");
            proptest::prop_assert_eq!(tsc_units(tsc0.saturating_sub(a), tsc0, m), 0);
        }

        #[test]
        fn nanos_to_duration_is_from_nanos(nanos in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(nanos_to_duration(nanos), Duration::from_nanos(nanos));
            let small = nanos % 2_000_000_000;
            proptest::prop_assert_eq!(nanos_to_duration(small), Duration::from_nanos(small));
        }
    }

    #[test]
    fn tsc_units_saturate() {
        assert_eq!(tsc_units(u64::MAX, 0, u64::MAX), u64::MAX);
        assert_eq!(tsc_units(1 << 32, 0, 1 << 32), 1 << 32);
        for n in [0, 1, 999_999_999, 1_000_000_000, u64::MAX] {
            assert_eq!(nanos_to_duration(n), Duration::from_nanos(n));
        }
    }

    #[test]
    fn on_the_tsc_clock_the_limiter_reads_the_counter_itself() {
        let Some(tsc) = TscClock::get() else {
            return; // no invariant counter here: nothing takes this path
        };
        let config = RateLimiterConfig::new(1000, Duration::from_secs(1)).with_burst(2);
        let l = RateLimiter::with_clock(config, AnyClock::Tsc(tsc)).unwrap();
        assert!(l.tsc.is_some());
        l.try_acquire_n(2).unwrap();
        let retry = l.try_acquire().unwrap_err().retry_after.unwrap();
        assert!(retry <= MS && retry > Duration::ZERO, "{retry:?}");
        std::thread::sleep(5 * MS);
        l.try_acquire_n(2).unwrap();
        assert!(RateLimiter::with_clock(config, ManualClock::new())
            .unwrap()
            .tsc
            .is_none());
    }

    #[test]
    fn clock_rule() {
        let tick = 4_000_000;
        let ok = |rate, burst| {
            RateLimiter::coarse_is_exact(
                &RateLimiterConfig::new(rate, Duration::from_secs(1)).with_burst(burst),
                tick,
            )
        };
        assert!(ok(100, 100));
        assert!(!ok(1000, 10));
        assert!(!ok(1, 1));
        assert!(ok(1000, 17));
        assert!(!ok(1000, 16));
    }
}
