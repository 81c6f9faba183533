//! Time, injected.
//!
//! Every policy reads time through a [`Clock`]: monotonic nanoseconds as a `u64`, shared
//! by every thread of the process. Instants are stored as `u64` nanoseconds so that they
//! fit one atomic word; policies reserve `0` to mean "never", which is why the system
//! clocks here never return 0 (they start counting at 1 ns at the earliest).
//!
//! | clock | [`now`](Clock::now) | [`now_coarse`](Clock::now_coarse) | resolution |
//! |---|---|---|---|
//! | [`MonotonicClock`] | `CLOCK_MONOTONIC`, ~30 ns (vDSO) | `CLOCK_MONOTONIC_COARSE`, ~6 ns | 1 ns |
//! | [`CoarseClock`] | `CLOCK_MONOTONIC_COARSE`, ~6 ns | the same | one kernel tick (~4 ms) |
//! | [`TscClock`] | `rdtsc` scaled to ns, ~the cost of `rdtsc` (where the counter is invariant) | the same | 1 ns |
//! | [`ManualClock`] | a shared atomic, ~1 ns | the same, or rounded down to a set tick | whatever the test sets |
//!
//! Both kernel clocks read the same kernel time base, so their readings are comparable:
//! a coarse reading is the time of the last tick, never ahead of a precise one taken
//! after it. How far it lags is the kernel's: under a tick when ticks arrive on time,
//! more when one is late (a busy or virtual machine; 1.5 ticks seen on this machine
//! kind under load). The code takes it as under [`COARSE_LAG_TICKS`] (4) ticks
//! ([`MonotonicClock`]'s [`coarse_lag`](Clock::coarse_lag)), a margin for late ticks,
//! not a kernel guarantee; `benches/limiter.rs` measures it (`BW_CALLGRIND=min`). A
//! reading that lags more costs the rate limiter's coarse-first answer at most the
//! excess: a refusal the precise clock would have admitted, or an admission charged
//! from up to that much earlier. The TSC clock is calibrated against
//! `CLOCK_MONOTONIC` once per process and is for time that stays in the process
//! (see `tsc`): host-wide segments and the fleet keep `CLOCK_MONOTONIC`.
//!
//! # Two readings of one clock
//!
//! A clock gives a precise reading, [`Clock::now`], and a cheap one,
//! [`Clock::now_coarse`], that may lag it by up to [`Clock::coarse_lag`]. The default
//! cheap reading *is* `now()` with no lag, so a clock written for tests or for another
//! runtime implements `now()` alone and drives every code path, including the rate
//! limiter's coarse-first admission: a [`ManualClock`] made
//! [`with_coarse_tick`](ManualClock::with_coarse_tick) lags like a kernel tick on
//! demand, so tests, property tests and loom models reach that path deterministically.
//!
//! # Which clock a type runs on
//!
//! One rule for every type:
//!
//! - Each primitive ([`CircuitBreaker`](crate::breaker::CircuitBreaker),
//!   [`RateLimiter`](crate::limiter::RateLimiter), [`Bulkhead`](crate::bulkhead::Bulkhead),
//!   [`AdaptiveLimiter`](crate::adaptive::AdaptiveLimiter),
//!   [`ClientThrottle`](crate::adaptive::ClientThrottle),
//!   [`RetryBudget`](crate::retry::RetryBudget)) is generic over its clock,
//!   `Type<C: Clock = AnyClock>`. `Type::new(config)` runs on the system clock the type
//!   needs ([`AnyClock::Coarse`] for millisecond rules: breaker, throttle, retry budget;
//!   [`AnyClock::Monotonic`] where nanoseconds matter: adaptive limit, bulkhead waits;
//!   the rate limiter and per-key limits pick by their rule, see
//!   `RateLimiter::clock_for` and `KeyedLimiter::clock_for`).
//!   `Type::with_clock(config, clock)` takes any `C: Clock`.
//! - [`Policy`](crate::policy::Policy) and [`Engine`](crate::engine::Engine) are not
//!   generic: they run on [`AnyClock`], one concrete type for the C ABI and for
//!   registries of mixed policies. `new` runs on the system clocks, `with_clock` takes an
//!   `AnyClock`, and any clock of your own becomes one with [`AnyClock::custom`]. A policy
//!   hands each stage the reading it needs: [`AnyClock::coarse`] for millisecond rules,
//!   [`AnyClock::precise`] for durations (a manual or custom clock is handed on as it is).
//!
//! [`AnyClock`] dispatches with a predictable branch instead of a virtual call for the
//! built-in clocks; only a custom clock pays a virtual call.
//!
//! ```
//! use breakwater::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let same_time = clock.clone();
//! clock.advance(Duration::from_millis(5));
//! assert_eq!(same_time.now(), 1 + 5_000_000, "manual clocks start at 1 ns");
//! ```

use crate::sync::{Arc, AtomicU64, Ordering};
use std::time::Duration;

mod tsc;

pub use tsc::{invariant_flags, Calibration, TscClock};

/// A source of monotonic time in nanoseconds.
///
/// Readings never go backwards for one clock value and its clones; code that reads a
/// clock must still tolerate a reading equal to or (through a misbehaving custom clock)
/// earlier than a previous one without panicking.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an arbitrary fixed origin.
    fn now(&self) -> u64;

    /// A cheaper reading of the same time base that may lag: a reading `c` of this and a
    /// reading `p` of [`now`](Clock::now) taken right after satisfy
    /// `c ≤ p ≤ c + coarse_lag()`. Code that can decide from `c` whenever every such `p`
    /// gives the same answer reads this first (the rate limiter does). The default is
    /// `now()` itself.
    #[inline]
    fn now_coarse(&self) -> u64 {
        self.now()
    }

    /// The most [`now_coarse`](Clock::now_coarse) lags [`now`](Clock::now), in
    /// nanoseconds; 0 (the default) when the two are the same reading. Read when a
    /// policy is built, not per call.
    fn coarse_lag(&self) -> u64 {
        0
    }

    /// The [`TscClock`] whose readings [`now`](Clock::now) returns, if this clock is
    /// one: a hot path may then read the counter itself ([`TscClock::ticks`]) and scale
    /// it once into its own units (the rate limiter does). `None`, the default, for
    /// every other clock. Read when a policy is built, not per call.
    fn tsc(&self) -> Option<TscClock> {
        None
    }
}

/// A shared or borrowed clock reads the clock it points to.
macro_rules! forward_clock {
    ($($pointer:ty),+) => {$(
        impl<C: Clock + ?Sized> Clock for $pointer {
            #[inline]
            fn now(&self) -> u64 {
                (**self).now()
            }

            #[inline]
            fn now_coarse(&self) -> u64 {
                (**self).now_coarse()
            }

            fn coarse_lag(&self) -> u64 {
                (**self).coarse_lag()
            }

            fn tsc(&self) -> Option<TscClock> {
                (**self).tsc()
            }
        }
    )+};
}

forward_clock!(Arc<C>, &C);

/// How many ticks a `CLOCK_MONOTONIC_COARSE` reading is taken to lag `CLOCK_MONOTONIC`
/// at most: an assumption with a margin for late ticks, not a kernel guarantee (see the
/// module docs; `benches/limiter.rs` measures the real lag).
pub const COARSE_LAG_TICKS: u64 = 4;

#[inline]
fn read_clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec on our stack, and `id` is one of the
    // monotonic clock ids every supported Linux kernel provides, so the call only writes
    // `ts`. Its result cannot fail for these ids; if it ever did, `ts` stays zero and
    // the reading below is 1, which callers tolerate as a stalled clock.
    unsafe {
        libc::clock_gettime(id, &mut ts);
    }
    // `tv_sec` of a monotonic clock is the uptime: far below 2^33 seconds, so the product
    // cannot overflow a u64 (which holds 584 years of nanoseconds).
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
        .max(1)
}

/// `CLOCK_MONOTONIC`: precise, system-wide, about 30 ns a reading; its cheap reading is
/// `CLOCK_MONOTONIC_COARSE`, taken to lag by up to [`COARSE_LAG_TICKS`] ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        read_clock(libc::CLOCK_MONOTONIC)
    }

    #[inline]
    fn now_coarse(&self) -> u64 {
        read_clock(libc::CLOCK_MONOTONIC_COARSE)
    }

    fn coarse_lag(&self) -> u64 {
        duration_to_nanos(CoarseClock::resolution())
            .max(1)
            .saturating_mul(COARSE_LAG_TICKS)
    }
}

/// `CLOCK_MONOTONIC_COARSE`: the kernel's last tick, about 6 ns a reading, with the
/// resolution of one scheduler tick (typically 1–4 ms). Ample for circuit-breaker timing;
/// see [`CoarseClock::resolution`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoarseClock;

impl CoarseClock {
    /// The tick of this clock as the kernel reports it (`clock_getres`).
    pub fn resolution() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec on our stack; the call only writes it.
        let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        if rc != 0 {
            // Unknown: assume the coarsest common tick (HZ=100).
            return Duration::from_millis(10);
        }
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> u64 {
        read_clock(libc::CLOCK_MONOTONIC_COARSE)
    }
}

/// A clock that moves only when told to. Clones share one time, so a test hands a clone
/// to every policy and every thread and moves them all at once.
///
/// It starts at 1 ns, because 0 is reserved for "never" in stored instants.
///
/// Its cheap reading ([`Clock::now_coarse`]) is the same time unless the clock was made
/// [`with_coarse_tick`](ManualClock::with_coarse_tick): then it is the time rounded down
/// to a multiple of the tick, as a kernel's coarse clock, so code that reads coarse time
/// first can be driven through every case.
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
    /// The cheap reading's step in ns; 0 = the cheap reading is the time itself.
    coarse_tick: u64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock at 1 ns.
    pub fn new() -> Self {
        Self::starting_at(1)
    }

    /// A clock at `nanos` (0 is read as 1).
    pub fn starting_at(nanos: u64) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(nanos.max(1))),
            coarse_tick: 0,
        }
    }

    /// This clock (sharing its time) with a cheap reading that steps in `tick`s: it reads
    /// the time rounded down to a multiple of `tick` (at least 1 ns), and
    /// [`coarse_lag`](Clock::coarse_lag) is `tick`. A zero tick makes the cheap reading
    /// the time itself again.
    pub fn with_coarse_tick(&self, tick: Duration) -> Self {
        Self {
            nanos: self.nanos.clone(),
            coarse_tick: duration_to_nanos(tick),
        }
    }

    /// Moves time forward by `by` (saturating at `u64::MAX` ns).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed is enough: the clock is one independent word; a reader that sees the new
        // time learns nothing else through it, and every policy tolerates any interleaving
        // of clock reads with its own state updates.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Sets the time to `nanos` (0 is read as 1). Setting an earlier time models a
    /// misbehaving clock; every policy must survive it.
    pub fn set(&self, nanos: u64) {
        // Relaxed: see `advance`.
        self.nanos.store(nanos.max(1), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        // Relaxed: see `advance`.
        self.nanos.load(Ordering::Relaxed)
    }

    #[inline]
    fn now_coarse(&self) -> u64 {
        let now = self.now();
        match self.coarse_tick {
            0 => now,
            tick => (now - now % tick).max(1),
        }
    }

    fn coarse_lag(&self) -> u64 {
        self.coarse_tick
    }
}

/// A clock chosen at run time: one of the built-in clocks, or any other behind
/// [`AnyClock::custom`]. A `match` on the built-in ones costs less than a virtual call and
/// lets one concrete policy type serve production (system clocks), deterministic tests
/// and foreign callers (a manual clock), and clocks of your own.
#[derive(Clone, Default)]
pub enum AnyClock {
    /// `CLOCK_MONOTONIC` (cheap reading `CLOCK_MONOTONIC_COARSE`), see [`MonotonicClock`].
    Monotonic,
    /// `CLOCK_MONOTONIC_COARSE`.
    #[default]
    Coarse,
    /// The calibrated TSC clock, see [`TscClock`]; for time that stays in this process.
    Tsc(TscClock),
    /// A shared manual clock.
    Manual(ManualClock),
    /// A clock of your own, read through a virtual call. A std `Arc` on purpose: it only
    /// owns the clock (a loom `Arc` cannot hold a trait object), and the clock's own
    /// synchronization is its business.
    Custom(std::sync::Arc<dyn Clock>),
}

impl std::fmt::Debug for AnyClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyClock::Monotonic => f.write_str("Monotonic"),
            AnyClock::Coarse => f.write_str("Coarse"),
            AnyClock::Tsc(_) => f.write_str("Tsc"),
            AnyClock::Manual(m) => f.debug_tuple("Manual").field(m).finish(),
            AnyClock::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl AnyClock {
    /// Wraps a clock of your own, so that it can drive a
    /// [`Policy`](crate::policy::Policy) or an [`Engine`](crate::engine::Engine).
    ///
    /// ```
    /// use breakwater::clock::{AnyClock, Clock};
    /// use breakwater::policy::{Policy, PolicyConfig};
    ///
    /// struct Frozen;
    /// impl Clock for Frozen {
    ///     fn now(&self) -> u64 { 42 }
    /// }
    /// let policy = Policy::with_clock(PolicyConfig::new("frozen"), AnyClock::custom(Frozen)).unwrap();
    /// assert_eq!(policy.clock().now(), 42);
    /// ```
    pub fn custom(clock: impl Clock + 'static) -> AnyClock {
        AnyClock::Custom(std::sync::Arc::new(clock))
    }

    /// Whether this is a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(self, AnyClock::Manual(_))
    }

    /// Whether this is one of the system clocks.
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            AnyClock::Monotonic | AnyClock::Coarse | AnyClock::Tsc(_)
        )
    }

    /// The cheapest nanosecond clock for a component whose time never leaves this
    /// process (no host-wide segment, no fleet): the TSC clock where the counter is
    /// invariant, else `CLOCK_MONOTONIC`, in place of a system clock; a manual or
    /// custom clock as it is.
    pub fn precise_local(&self) -> AnyClock {
        match self {
            AnyClock::Monotonic | AnyClock::Coarse | AnyClock::Tsc(_) => {
                TscClock::get().map_or(AnyClock::Monotonic, AnyClock::Tsc)
            }
            other => other.clone(),
        }
    }

    /// The clock for a component that needs nanoseconds (a latency measurement, an
    /// adaptive limit): `CLOCK_MONOTONIC` in place of a system clock; a manual or custom
    /// clock as it is.
    pub fn precise(&self) -> AnyClock {
        match self {
            AnyClock::Monotonic | AnyClock::Coarse | AnyClock::Tsc(_) => AnyClock::Monotonic,
            other => other.clone(),
        }
    }

    /// The clock for a component whose rules are in milliseconds (a breaker, a retry
    /// budget): `CLOCK_MONOTONIC_COARSE` in place of a system clock; a manual or custom
    /// clock as it is.
    pub fn coarse(&self) -> AnyClock {
        match self {
            AnyClock::Monotonic | AnyClock::Coarse | AnyClock::Tsc(_) => AnyClock::Coarse,
            other => other.clone(),
        }
    }
}

impl From<ManualClock> for AnyClock {
    fn from(clock: ManualClock) -> Self {
        AnyClock::Manual(clock)
    }
}

impl From<MonotonicClock> for AnyClock {
    fn from(_: MonotonicClock) -> Self {
        AnyClock::Monotonic
    }
}

impl From<TscClock> for AnyClock {
    fn from(clock: TscClock) -> Self {
        AnyClock::Tsc(clock)
    }
}

impl From<CoarseClock> for AnyClock {
    fn from(_: CoarseClock) -> Self {
        AnyClock::Coarse
    }
}

impl Clock for AnyClock {
    #[inline]
    fn now(&self) -> u64 {
        match self {
            AnyClock::Monotonic => MonotonicClock.now(),
            AnyClock::Coarse => CoarseClock.now(),
            AnyClock::Tsc(t) => t.now(),
            AnyClock::Manual(m) => m.now(),
            AnyClock::Custom(c) => c.now(),
        }
    }

    #[inline]
    fn now_coarse(&self) -> u64 {
        match self {
            AnyClock::Monotonic => MonotonicClock.now_coarse(),
            AnyClock::Coarse => CoarseClock.now(),
            AnyClock::Tsc(t) => t.now(),
            AnyClock::Manual(m) => m.now_coarse(),
            AnyClock::Custom(c) => c.now_coarse(),
        }
    }

    fn coarse_lag(&self) -> u64 {
        match self {
            AnyClock::Monotonic => MonotonicClock.coarse_lag(),
            AnyClock::Coarse | AnyClock::Tsc(_) => 0,
            AnyClock::Manual(m) => m.coarse_lag(),
            AnyClock::Custom(c) => c.coarse_lag(),
        }
    }

    fn tsc(&self) -> Option<TscClock> {
        match self {
            AnyClock::Tsc(t) => Some(*t),
            AnyClock::Custom(c) => c.tsc(),
            _ => None,
        }
    }
}

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `Duration::from_nanos` without its division when under a second, the usual wait of
/// a refusal (the rate limiter's and the per-key limits'): the division is a chain of
/// multiplies fed by the clock reading.
#[inline(always)]
pub(crate) fn nanos_to_duration(nanos: u64) -> Duration {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    if nanos < NANOS_PER_SEC {
        Duration::new(0, nanos as u32)
    } else {
        Duration::from_nanos(nanos)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn system_clocks_are_monotonic_and_nonzero() {
        for clock in [
            AnyClock::Monotonic,
            AnyClock::Coarse,
            AnyClock::Monotonic.precise_local(),
        ] {
            let mut last = clock.now();
            assert!(last > 0);
            for _ in 0..10_000 {
                let now = clock.now();
                assert!(now >= last, "{clock:?} went back from {last} to {now}");
                last = now;
            }
        }
    }

    #[test]
    fn coarse_and_precise_share_a_time_base() {
        let precise = MonotonicClock.now();
        let coarse = CoarseClock.now();
        let tick = duration_to_nanos(CoarseClock::resolution());
        assert!(
            coarse <= precise + tick,
            "coarse {coarse} ahead of precise {precise}"
        );
        assert!(precise - coarse.min(precise) <= 2 * tick + 1_000_000);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new();
        let b = a.clone();
        a.advance(Duration::from_secs(2));
        assert_eq!(b.now(), 2_000_000_001);
        b.set(0);
        assert_eq!(a.now(), 1, "0 is reserved for never");
        a.advance(Duration::MAX);
        assert_eq!(a.now(), u64::MAX);
    }

    #[test]
    fn any_clock_keeps_manual_and_custom_clocks_for_either_precision() {
        let m = ManualClock::starting_at(42);
        let any = AnyClock::from(m);
        assert_eq!(any.precise().now(), 42);
        assert_eq!(any.coarse().now(), 42);
        assert!(matches!(AnyClock::Coarse.precise(), AnyClock::Monotonic));
        assert!(matches!(AnyClock::Monotonic.coarse(), AnyClock::Coarse));
        struct Seven;
        impl Clock for Seven {
            fn now(&self) -> u64 {
                7
            }
        }
        let custom = AnyClock::custom(Seven);
        assert_eq!(
            (custom.coarse().now(), custom.precise().now_coarse()),
            (7, 7)
        );
        assert_eq!(custom.coarse_lag(), 0, "the default: one reading");
    }

    #[test]
    fn manual_coarse_tick_rounds_down_and_bounds_the_lag() {
        let clock = ManualClock::starting_at(10_500).with_coarse_tick(Duration::from_nanos(1_000));
        assert_eq!((clock.now(), clock.now_coarse()), (10_500, 10_000));
        assert_eq!(clock.coarse_lag(), 1_000);
        clock.set(999);
        assert_eq!(clock.now_coarse(), 1, "never 0");
        let plain = clock.with_coarse_tick(Duration::ZERO);
        assert_eq!(plain.now_coarse(), 999, "shares the time");
    }

    #[test]
    fn monotonic_cheap_reading_lags_within_its_bound() {
        let lag = MonotonicClock.coarse_lag();
        let c = MonotonicClock.now_coarse();
        let p = MonotonicClock.now();
        // A preemption between the reads only widens p - c; it cannot invent lag beyond
        // what a late tick shows, so check the side no scheduling can break.
        assert!(c <= p, "coarse {c} ahead of precise {p}");
        assert!(lag >= COARSE_LAG_TICKS);
    }
}
