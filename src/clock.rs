//! Time, injected.
//!
//! Every policy reads time through a [`Clock`]: monotonic nanoseconds as a `u64`, shared
//! by every thread of the process. Instants are stored as `u64` nanoseconds so that they
//! fit one atomic word; policies reserve `0` to mean "never", which is why the system
//! clocks here never return 0 (they start counting at 1 ns at the earliest).
//!
//! | clock | source | cost here | resolution |
//! |---|---|---|---|
//! | [`MonotonicClock`] | `CLOCK_MONOTONIC` | ~30 ns (vDSO) | 1 ns |
//! | [`CoarseClock`] | `CLOCK_MONOTONIC_COARSE` | ~6 ns (vDSO) | one kernel tick (~4 ms) |
//! | [`ManualClock`] | a shared atomic | ~1 ns | whatever the test sets |
//!
//! Both system clocks read the same kernel time base, so their readings are comparable
//! (the coarse one lags by at most one tick). [`AnyClock`] picks one of them at run time
//! with a predictable branch instead of a virtual call; the engine and the C ABI use it.
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

/// A source of monotonic time in nanoseconds.
///
/// Readings never go backwards for one clock value and its clones; code that reads a
/// clock must still tolerate a reading equal to or (through a misbehaving custom clock)
/// earlier than a previous one without panicking.
pub trait Clock: Send + Sync {
    /// Nanoseconds since an arbitrary fixed origin.
    fn now(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }
}

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

/// `CLOCK_MONOTONIC`: precise, system-wide, about 30 ns a reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        read_clock(libc::CLOCK_MONOTONIC)
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
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
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
}

/// One of the built-in clocks, chosen at run time. A `match` on a two-word enum costs
/// less than a virtual call and lets one concrete policy type serve both production
/// (system clocks) and deterministic tests or foreign callers (a manual clock).
#[derive(Debug, Clone, Default)]
pub enum AnyClock {
    /// `CLOCK_MONOTONIC`.
    Monotonic,
    /// `CLOCK_MONOTONIC_COARSE`.
    #[default]
    Coarse,
    /// A shared manual clock.
    Manual(ManualClock),
}

impl AnyClock {
    /// Whether this is a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(self, AnyClock::Manual(_))
    }

    /// Keeps a manual clock as it is, and replaces a system clock by `precise` or coarse
    /// time. Lets a component that needs nanosecond precision (a fast rate limiter, a
    /// latency measurement) upgrade without losing a test's manual clock.
    pub fn with_precision(&self, precise: bool) -> AnyClock {
        match self {
            AnyClock::Manual(m) => AnyClock::Manual(m.clone()),
            _ if precise => AnyClock::Monotonic,
            _ => AnyClock::Coarse,
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
            AnyClock::Manual(m) => m.now(),
        }
    }
}

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn system_clocks_are_monotonic_and_nonzero() {
        for clock in [AnyClock::Monotonic, AnyClock::Coarse] {
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
    fn any_clock_keeps_manual_when_upgraded() {
        let m = ManualClock::starting_at(42);
        let any = AnyClock::from(m);
        assert_eq!(any.with_precision(true).now(), 42);
        assert!(matches!(
            AnyClock::Coarse.with_precision(true),
            AnyClock::Monotonic
        ));
        assert!(matches!(
            AnyClock::Monotonic.with_precision(false),
            AnyClock::Coarse
        ));
    }
}
