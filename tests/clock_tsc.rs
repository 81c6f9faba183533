//! The calibrated TSC clock: its conversion is monotonic and exact at its anchors for
//! any calibration and maps the span between its anchors onto theirs (proptest), and
//! limiters choose it only where the coarse reading could decide nothing and the
//! schedule stays in the process. How far a reading handed between threads can go back
//! is the hardware's (the counter's reordering, and on a virtual machine the skew
//! between its vCPUs' counters): `benches/limiter.rs` measures it, and every reader
//! tolerates it (`limiter::gcra`'s `clock_going_backwards_never_helps`); so is how well
//! the real counter agrees with `CLOCK_MONOTONIC` (measured there too).
#![cfg(not(loom))]

use breakwater::clock::{AnyClock, Calibration, Clock, TscClock};
use breakwater::keyed::{KeyedLimiter, PerKeyConfig};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use proptest::prelude::*;
use std::time::Duration;

proptest! {
    #[test]
    fn conversion_is_monotonic_and_never_zero(
        t0 in any::<u64>(), n0 in any::<u64>(),
        ticks in 1u64..u64::MAX / 2, nanos in 1u64..u64::MAX / 2,
        a in any::<u64>(), b in any::<u64>(),
    ) {
        let Some(cal) = Calibration::from_pairs(
            (t0, n0),
            (t0.saturating_add(ticks), n0.saturating_add(nanos)),
        ) else {
            // Only when a side saturated to no span, or the scale is below 2^-32 ns.
            prop_assert!(t0.checked_add(ticks).is_none()
                || n0.checked_add(nanos).is_none()
                || (u128::from(nanos) << 32) < u128::from(ticks));
            return Ok(());
        };
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(cal.nanos(lo) <= cal.nanos(hi));
        prop_assert!(cal.nanos(lo) >= 1);
        prop_assert_eq!(cal.nanos(t0), n0.max(1));
    }

    /// The readings lie on `CLOCK_MONOTONIC`'s time line as far as the math goes: a
    /// count between the two calibration readings converts to a time between theirs.
    /// How well the real counter agrees with the real clock (vCPU skew, drift since the
    /// calibration) is the hardware's: `benches/limiter.rs` measures it
    /// (`min/clock/tsc_off_monotonic`).
    #[test]
    fn a_count_between_the_anchors_converts_to_a_time_between_them(
        t0 in any::<u64>(), n0 in 0u64..1 << 62,
        ticks in 1u64..1 << 40, nanos in 1u64..1 << 40, at in any::<u64>(),
    ) {
        prop_assume!(t0.checked_add(ticks).is_some());
        prop_assume!((u128::from(nanos) << 32) >= u128::from(ticks));
        let cal = Calibration::from_pairs((t0, n0), (t0 + ticks, n0 + nanos)).unwrap();
        let t = t0 + at % (ticks + 1);
        let n = cal.nanos(t);
        prop_assert!(n >= n0.max(1) && n <= (n0 + nanos).max(1), "{n0} ≤ {n} ≤ {}", n0 + nanos);
    }

    #[test]
    fn conversion_meets_the_second_pair_within_rounding(
        t0 in any::<u64>(), n0 in 0u64..1 << 62,
        ticks in 1u64..1 << 40, nanos in 1u64..1 << 40,
    ) {
        prop_assume!(t0.checked_add(ticks).is_some());
        prop_assume!((u128::from(nanos) << 32) >= u128::from(ticks));
        let cal = Calibration::from_pairs((t0, n0), (t0 + ticks, n0 + nanos)).unwrap();
        let at = cal.nanos(t0 + ticks);
        // The scale is rounded down by under 2^-32 ns a tick.
        prop_assert!(at <= (n0 + nanos).max(1));
        prop_assert!(at + 1 + (ticks >> 32) >= n0 + nanos);
    }
}

#[test]
fn limiters_take_the_tsc_only_for_buckets_inside_the_coarse_lag_and_in_process() {
    let lag = AnyClock::Monotonic.coarse_lag();
    let tiny = RateLimiterConfig::new(1_000, Duration::from_secs(1)).with_burst(1);
    let large = RateLimiterConfig::new(1, Duration::from_secs(1)).with_burst(1);
    assert!(RateLimiter::coarse_never_decides(&tiny, lag));
    assert!(!RateLimiter::coarse_never_decides(&large, lag));
    let local = RateLimiter::clock_for_scope(&tiny, false);
    match TscClock::get() {
        Some(_) => assert!(matches!(local, AnyClock::Tsc(_)), "{local:?}"),
        None => assert!(matches!(local, AnyClock::Monotonic), "{local:?}"),
    }
    assert!(matches!(
        RateLimiter::clock_for_scope(&tiny, true),
        AnyClock::Monotonic
    ));
    assert!(matches!(
        RateLimiter::clock_for(&large),
        AnyClock::Monotonic
    ));
    // The kernel clocks stay what they were for everything else.
    assert!(matches!(AnyClock::Coarse.precise(), AnyClock::Monotonic));
    assert!(!matches!(
        AnyClock::Monotonic.precise_local(),
        AnyClock::Coarse
    ));
}

#[test]
fn per_key_limits_take_the_coarse_clock_when_it_delivers_their_rate_exactly() {
    // A gateway's usual quota: each key's bucket (the default burst, the rate) spans
    // far more than four kernel ticks.
    let generous = PerKeyConfig::new(1_000, Duration::from_secs(1));
    assert!(matches!(
        KeyedLimiter::clock_for(&generous),
        AnyClock::Coarse
    ));
    assert!(matches!(
        KeyedLimiter::new(generous).unwrap().clock(),
        AnyClock::Coarse
    ));
    // A bucket of one permit a millisecond: the cheapest precise clock, as before.
    let tight = PerKeyConfig::new(1_000, Duration::from_secs(1)).with_burst(1);
    let precise = AnyClock::Monotonic.precise_local();
    assert_eq!(
        format!("{:?}", KeyedLimiter::clock_for(&tight)),
        format!("{precise:?}")
    );
    assert!(!matches!(
        KeyedLimiter::new(tight).unwrap().clock(),
        AnyClock::Coarse
    ));
}

#[test]
fn a_limiter_on_the_tsc_keeps_its_quota() {
    // No timing is asserted: the bound holds for any schedule, on the clock's own time.
    let config = RateLimiterConfig::new(1_000, Duration::from_secs(1)).with_burst(1);
    let limiter = RateLimiter::new(config).unwrap();
    let start = limiter.clock().now();
    let admitted = (0..200_000)
        .filter(|_| limiter.try_acquire().is_ok())
        .count() as u64;
    let elapsed = limiter.clock().now() - start;
    assert!(admitted >= 1);
    assert!(
        admitted <= 1 + elapsed / 1_000_000 + 1,
        "{admitted} in {elapsed} ns"
    );
}
