//! The GCRA rate limiter: one atomic word, one clock read, one compare-exchange loop.

use super::config::{Quota, RateLimiterConfig};
use super::error::LimiterError;
use super::gcra::{self, Decision};
use super::reservation::{RawReservation, Reservation};
use crate::clock::{duration_to_nanos, AnyClock, Clock, CoarseClock};
use crate::error::ConfigError;
use crate::rejection::{RejectReason, Rejection};
use crate::sync::{AtomicU64, Ordering};
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
    /// The theoretical arrival time in quota units since `epoch`; `0` = full bucket at
    /// creation. Padded to its own cache line: it is the only word written on the hot
    /// path, and the read-only fields below must not share its line.
    tat: CachePadded<AtomicU64>,
    quota: Quota,
    /// The clock reading at creation; time before it reads as the creation instant.
    epoch: u64,
    clock: C,
    config: RateLimiterConfig,
    /// In units, the most the clock's cheap reading may lag its precise one
    /// ([`Clock::coarse_lag`]), when this limiter answers from the cheap reading first
    /// (see [`RateLimiter::clock_for`]); 0 = never.
    coarse_lag: u64,
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
    pub fn clock_for(config: &RateLimiterConfig) -> AnyClock {
        let tick = duration_to_nanos(CoarseClock::resolution()).max(1);
        if Self::coarse_is_exact(config, tick) {
            AnyClock::Coarse
        } else {
            AnyClock::Monotonic
        }
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
        let quota = Quota::from_config(&config)?;
        let epoch = clock.now();
        // A lag of a unit or more; a sub-unit lag rounds up to one, so the shortcut's
        // window always covers it.
        let coarse_lag = match clock.coarse_lag() {
            0 => 0,
            lag => quota.nanos_to_units(lag).max(1),
        };
        Ok(Self {
            tat: CachePadded::new(AtomicU64::new(0)),
            quota,
            epoch,
            clock,
            config,
            coarse_lag,
        })
    }

    /// Now, in quota units since the epoch (saturating: an earlier reading is the epoch,
    /// and past the horizon time stands still).
    #[inline]
    fn now_units(&self) -> u64 {
        self.quota
            .nanos_to_units(self.clock.now().saturating_sub(self.epoch))
    }

    /// Takes one permit, or says when one will be there.
    ///
    /// One clock read, one load and (when admitted) one compare-exchange.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejection> {
        match self.admit_now(self.quota.interval) {
            Ok(()) => Ok(()),
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
            Ok(()) => Ok(()),
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
        match self.commit(increment, max_wait) {
            Ok((tat, wait)) => Ok(Reservation::new(
                self,
                RawReservation {
                    wait_ns: self.quota.units_to_nanos_ceil(wait),
                    permits: n,
                    tat,
                },
            )),
            Err(retry) => Err(LimiterError::Rejected(self.rejection(retry))),
        }
    }

    /// Reserves `n` permits due within `max_wait` and sleeps (the calling thread) until
    /// they are due. Errors as [`reserve`](Self::reserve); the wait is real time.
    pub fn acquire(&self, n: u64, max_wait: Duration) -> Result<(), LimiterError> {
        let reservation = self.reserve(n, max_wait)?;
        let wait = reservation.wait();
        reservation.commit();
        sleep(wait);
        Ok(())
    }

    /// Gives back a reservation made by this limiter, if nothing was admitted after it
    /// (see [`Reservation`]); returns whether it did. A raw reservation that this
    /// limiter cannot have made (more permits than `burst`, a slot before its size) is
    /// refused with `false` and changes nothing.
    pub fn cancel_raw(&self, raw: RawReservation) -> bool {
        if raw.permits == 0 {
            return true;
        }
        let Ok(increment) = self.increment(raw.permits) else {
            return false;
        };
        let Some(before) = raw.tat.checked_sub(increment) else {
            return false;
        };
        // Relaxed: as in `commit`, the TAT is the only shared word and publishes nothing;
        // the compare-exchange alone decides whether the slot is still the latest one.
        self.tat
            .compare_exchange(raw.tat, before, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Permits that would pass now.
    pub fn available(&self) -> u64 {
        let now = self.now_units();
        // Relaxed: a snapshot of one word; nothing else is read through it.
        let tat = self.tat.load(Ordering::Relaxed);
        gcra::available(tat, now, self.quota.interval, self.quota.tolerance)
    }

    /// Available permits, the quota, and how long until one more permit passes.
    pub fn snapshot(&self) -> LimiterSnapshot {
        let now = self.now_units();
        // Relaxed: see `available`.
        let tat = self.tat.load(Ordering::Relaxed);
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
    #[inline]
    fn admit_now(&self, increment: u64) -> Result<(), Option<u64>> {
        if self.coarse_lag != 0 {
            if let Some(answer) = self.admit_on_coarse(increment) {
                return answer;
            }
        }
        self.commit(increment, 0).map(|_| ())
    }

    /// The coarse-first decision; `None` when the precise reading must decide.
    #[inline]
    fn admit_on_coarse(&self, increment: u64) -> Option<Result<(), Option<u64>>> {
        let coarse = self
            .quota
            .nanos_to_units(self.clock.now_coarse().saturating_sub(self.epoch));
        // Every precise reading `p` of this moment lies in [coarse, guard].
        let guard = coarse.saturating_add(self.coarse_lag);
        let due = coarse.saturating_add(self.quota.tolerance);
        // Relaxed: as in `commit`.
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            if tat < guard {
                return None; // p may pass the TAT: the base would differ
            }
            let new_tat = tat.checked_add(increment)?;
            if new_tat <= due {
                // Admitted at `coarse`, hence at every p ≥ coarse, with base = TAT: the
                // precise decision would store this same value.
                match self.tat.compare_exchange_weak(
                    tat,
                    new_tat,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(Ok(())),
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

    /// The compare-exchange loop around [`gcra::decide`]: `Ok((new_tat, wait))` once the
    /// request is stored, `Err(retry_after)` in units when refused.
    #[inline]
    fn commit(&self, increment: u64, max_wait: u64) -> Result<(u64, u64), Option<u64>> {
        let now = self.now_units();
        // Relaxed everywhere: the TAT is the limiter's only shared state and carries no
        // other data, so no happens-before edge is needed; every change is a
        // read-modify-write on this one word, whose modification order alone makes the
        // decisions consistent (each admission is computed from the latest TAT).
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            match gcra::decide(tat, now, increment, self.quota.tolerance, max_wait) {
                Decision::Admit { new_tat, wait } => {
                    match self.tat.compare_exchange_weak(
                        tat,
                        new_tat,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Ok((new_tat, wait)),
                        Err(actual) => tat = actual,
                    }
                }
                Decision::Deny { retry_after } => return Err(retry_after),
            }
        }
    }

    #[cold]
    fn rejection(&self, retry_after: Option<u64>) -> Rejection {
        Rejection::new(
            RejectReason::RateLimited,
            retry_after.map(|u| Duration::from_nanos(self.quota.units_to_nanos_ceil(u))),
        )
    }
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
            .field("tat", &self.tat.load(Ordering::Relaxed))
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
    fn reservations_stack_and_cancel_in_reverse() {
        let (l, clock) = limiter(10, Duration::from_secs(1), 1);
        l.try_acquire().unwrap();
        let a = l.reserve(1, Duration::from_secs(1)).unwrap();
        let b = l.reserve(1, Duration::from_secs(1)).unwrap();
        assert_eq!((a.wait(), b.wait()), (100 * MS, 200 * MS));
        assert!(!a.cancel(), "b is stacked on a");
        assert!(b.cancel());
        // a's slot stays used: the next one is still 200 ms out.
        assert_eq!(
            l.reserve(1, Duration::from_secs(1))
                .unwrap()
                .into_raw()
                .wait_ns,
            200_000_000
        );
        let raw = l.reserve(1, Duration::from_secs(1)).unwrap().into_raw();
        assert!(l.cancel_raw(raw));
        assert!(!l.cancel_raw(RawReservation { permits: 2, ..raw }));
        assert!(l.reserve(1, 250 * MS).is_err());
        clock.advance(Duration::from_secs(10));
        assert_eq!(l.available(), 1);
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
        l.acquire(1, Duration::ZERO).unwrap();
        l.acquire(1, 10 * MS).unwrap();
        assert!(start.elapsed() >= Duration::from_micros(900));
        assert!(l.acquire(1, Duration::ZERO).is_err() || start.elapsed() >= 2 * MS);
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
