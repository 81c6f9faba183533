//! The calibrated TSC clock: the CPU's time-stamp counter scaled to nanoseconds.
//!
//! Reading `CLOCK_MONOTONIC` through the vDSO costs a fenced `rdtsc`, a sequence-lock
//! read of the kernel's time data and a conversion; a plain `rdtsc` and one multiply
//! cost a fraction of that (the `limiter/clock_read` bench shows both here). That is
//! what `quanta` (governor's clock) does; this is the same idea in about a hundred lines
//! instead of a dependency, calibrated in 10 ms instead of up to 200 ms, with no
//! per-read branch on a clock kind.
//!
//! # When it is used
//!
//! Only where the counter is one time base for every core, ticking at a constant rate
//! through frequency changes and sleep states: on x86-64, with the `constant_tsc` and
//! `nonstop_tsc` flags in `/proc/cpuinfo` **and** `tsc` as the kernel's clocksource.
//! The last condition is the strong one: the kernel checks at boot (and watches
//! afterwards) that the counters of all CPUs agree, and switches away from `tsc` when
//! they do not. Anywhere else [`TscClock::get`] answers `None` and callers fall back to
//! `CLOCK_MONOTONIC` ([`AnyClock::precise_local`](super::AnyClock::precise_local)).
//!
//! # What it is not for
//!
//! Time that other processes must agree on. The scale is measured once per process
//! against `CLOCK_MONOTONIC` (which NTP may slew), so two processes' readings differ by
//! their calibration error and drift apart slowly. Host-wide segments (`shm`) and the
//! fleet keep `CLOCK_MONOTONIC`.
//!
//! # Readings across threads
//!
//! The conversion is a non-decreasing function of the counter ([`Calibration::nanos`],
//! proptested), so readings are as monotonic as the counter. `rdtsc` is not a
//! serializing instruction: a reading may be taken before the memory operation that
//! precedes it in program order, so a reading taken after seeing another thread's
//! write can be earlier than the reading that thread took before its write; on a
//! virtual machine the vCPUs' counters may also differ slightly. On this project's
//! 2-vCPU machine kind the worst step back measured 0.07 to 1.6 µs (`benches/limiter.rs`
//! prints it with `BW_CALLGRIND=min`; `CLOCK_MONOTONIC` measured 0). Every user of a
//! clock here tolerates a reading earlier than one seen before (the GCRA takes
//! `max(tat, now)`: an earlier reading only refuses more, by at most that step), which
//! is why no fence is paid on each read.

use std::sync::OnceLock;

use super::Clock;

/// How long the calibration measures the counter against `CLOCK_MONOTONIC`.
const CALIBRATION_NS: u64 = 10_000_000;

/// Paired readings per end of the calibration; the tightest pair is kept.
const CALIBRATION_TRIES: usize = 16;

/// The fixed-point shift of [`Calibration::mult`]: nanoseconds per tick × 2^32.
const SHIFT: u32 = 32;

/// Counter ticks to nanoseconds: `ns0 + (tsc - tsc0) × mult / 2^32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// The counter at the anchor reading.
    pub tsc0: u64,
    /// `CLOCK_MONOTONIC` at the anchor reading, in nanoseconds.
    pub ns0: u64,
    /// Nanoseconds per tick, times 2^32.
    pub mult: u64,
}

impl Calibration {
    /// The scale from two paired readings (counter, nanoseconds), `None` when they do
    /// not span a positive time on both.
    pub fn from_pairs(first: (u64, u64), second: (u64, u64)) -> Option<Calibration> {
        let ticks = second.0.checked_sub(first.0).filter(|&t| t != 0)?;
        let nanos = second.1.checked_sub(first.1).filter(|&n| n != 0)?;
        let mult = (u128::from(nanos) << SHIFT) / u128::from(ticks);
        Some(Calibration {
            tsc0: first.0,
            ns0: first.1,
            mult: u64::try_from(mult).ok().filter(|&m| m != 0)?,
        })
    }

    /// Nanoseconds at counter value `tsc`: non-decreasing in `tsc`, at least 1 (0 means
    /// "never" to policies), saturating at `u64::MAX`. A counter below the anchor (a
    /// core whose counter lags by a few ticks) reads as the anchor.
    #[inline(always)]
    pub fn nanos(&self, tsc: u64) -> u64 {
        let ticks = tsc.saturating_sub(self.tsc0);
        let scaled = (u128::from(ticks) * u128::from(self.mult)) >> SHIFT;
        // `scaled` < 2^96; past 2^64 ns (584 years) time stands still.
        let scaled = u64::try_from(scaled).unwrap_or(u64::MAX);
        self.ns0.saturating_add(scaled).max(1)
    }
}

/// The TSC clock: one `rdtsc` and one multiply a reading. Get it with
/// [`TscClock::get`]; it exists only where the counter is invariant and synchronized
/// (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TscClock {
    cal: &'static Calibration,
}

impl std::fmt::Debug for TscClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TscClock").field(self.cal).finish()
    }
}

static CALIBRATION: OnceLock<Option<Calibration>> = OnceLock::new();

impl TscClock {
    /// The clock, calibrated on first use (10 ms, once per process), or `None` where
    /// the counter cannot serve (not x86-64, counter not invariant, or not the kernel's
    /// clocksource).
    pub fn get() -> Option<TscClock> {
        CALIBRATION
            .get_or_init(|| if usable() { calibrate() } else { None })
            .as_ref()
            .map(|cal| TscClock { cal })
    }

    /// The calibration this clock converts with.
    pub fn calibration(&self) -> Calibration {
        *self.cal
    }

    /// The raw counter, unscaled: [`now`](Clock::now) is
    /// [`calibration().nanos(ticks())`](Calibration::nanos). For a hot path that keeps
    /// its own time in counter ticks, or scales them once into its own units.
    #[inline(always)]
    pub fn ticks(&self) -> u64 {
        read_counter()
    }
}

impl Clock for TscClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        self.cal.nanos(read_counter())
    }

    fn tsc(&self) -> Option<TscClock> {
        Some(*self)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_counter() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU and has no memory effects; a
    // `TscClock` is only made after `usable` found the counter invariant and the
    // kernel's clocksource (it is then not disabled for user space).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_counter() -> u64 {
    // Never reached: `usable` is false off x86-64, so no `TscClock` exists; the
    // monotonic clock keeps the reading meaningful if it ever were.
    super::MonotonicClock.now()
}

/// Whether the counter is invariant and is the kernel's clocksource.
fn usable() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let clocksource =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    clocksource.trim() == "tsc" && invariant_flags(&cpuinfo)
}

/// Whether the first `flags` line of a `/proc/cpuinfo` text names `constant_tsc` and
/// `nonstop_tsc`.
pub fn invariant_flags(cpuinfo: &str) -> bool {
    let Some(flags) = cpuinfo.lines().find(|l| l.starts_with("flags")) else {
        return false;
    };
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    has("constant_tsc") && has("nonstop_tsc")
}

/// A counter reading paired with a `CLOCK_MONOTONIC` reading: the tightest bracket of
/// a few tries, so a preemption between the reads does not skew the scale.
fn paired_reading() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..CALIBRATION_TRIES {
        let before = read_counter();
        let nanos = super::MonotonicClock.now();
        let after = read_counter();
        let width = after.wrapping_sub(before);
        if width < best.0 {
            best = (width, before + width / 2, nanos);
        }
    }
    (best.1, best.2)
}

fn calibrate() -> Option<Calibration> {
    let first = paired_reading();
    std::thread::sleep(std::time::Duration::from_nanos(CALIBRATION_NS));
    let second = paired_reading();
    // Anchored at the second pair: readings start at the time they are first needed.
    let cal = Calibration::from_pairs(first, second)?;
    Some(Calibration {
        tsc0: second.0,
        ns0: second.1,
        ..cal
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn flags_need_both_words_on_the_flags_line() {
        assert!(invariant_flags(
            "model name\t: x\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n"
        ));
        assert!(!invariant_flags("flags\t\t: fpu tsc constant_tsc\n"));
        assert!(!invariant_flags("flags\t\t: nonstop_tsc_x constant_tsc\n"));
        assert!(!invariant_flags("model name\t: constant_tsc nonstop_tsc\n"));
    }

    #[test]
    fn a_calibration_needs_time_on_both_sides() {
        assert_eq!(Calibration::from_pairs((10, 10), (10, 20)), None);
        assert_eq!(Calibration::from_pairs((10, 10), (20, 10)), None);
        assert_eq!(Calibration::from_pairs((20, 10), (10, 20)), None);
        let cal = Calibration::from_pairs((1_000, 5), (3_000, 1_005)).unwrap();
        assert_eq!(cal.mult, 1 << 31, "half a nanosecond a tick");
        assert_eq!(cal.nanos(1_000), 5);
        assert_eq!(cal.nanos(3_000), 1_005);
        assert_eq!(cal.nanos(0), 5, "below the anchor reads as the anchor");
        assert_eq!(cal.nanos(u64::MAX), u64::MAX / 2 - 495);
    }

    #[test]
    fn where_present_it_follows_clock_monotonic() {
        let Some(tsc) = TscClock::get() else {
            return; // nothing to compare on this machine: the fallback is used
        };
        let mono = super::super::MonotonicClock;
        // Each TSC reading is bracketed by two monotonic ones, so a preemption between
        // reads widens the bracket instead of skewing the comparison.
        let bracket = || {
            let before = mono.now();
            let t = tsc.now();
            (before, t, mono.now())
        };
        let (a0, t0, b0) = bracket();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (a1, t1, b1) = bracket();
        let (shortest, longest) = ((a1 - b0) as f64, (b1 - a0) as f64);
        let elapsed = (t1 - t0) as f64;
        // A scale error grows with the time measured; 10 ms of calibration against
        // paired readings keeps it far below 1 %.
        assert!(
            elapsed >= shortest * 0.99 && elapsed <= longest * 1.01,
            "tsc {elapsed} ns outside monotonic [{shortest}, {longest}] ns"
        );
    }
}
