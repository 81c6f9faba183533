//! The clock chosen per quota delivers the quota exactly.
//!
//! Exactness is proved on manual clocks, where nothing depends on scheduling: stepped in
//! whole coarse ticks (regular and irregular), a saturating caller gets exactly
//! `burst + T / interval` permits whenever `RateLimiter::coarse_is_exact` says so, and
//! visibly fewer for quotas where it says no; and the coarse-first path (a manual clock
//! whose cheap reading steps in ticks) decides exactly as the precise clock alone.
//!
//! With the real clocks, only what holds however the threads are scheduled is checked:
//! a caller never gets more than the clock's own readings allow (a descheduled caller
//! gets fewer, which is allowed), admissions are at least one interval apart between
//! readings that bracket them, and waiting out a `retry_after` always suffices.
#![cfg(not(loom))]

use breakwater::clock::{AnyClock, Clock, CoarseClock, ManualClock, MonotonicClock, TscClock};
use breakwater::limiter::{RateLimiter, RateLimiterConfig, COARSE_CLOCK_MIN_TICKS};
use std::time::{Duration, Instant};

const TICK: u64 = 4_000_000; // 4 ms, as CLOCK_MONOTONIC_COARSE here

/// Drives `config` with a caller that takes every permit as soon as it exists, on a
/// clock that moves by `steps` (ns); returns (admitted, elapsed ns).
fn saturate(config: RateLimiterConfig, steps: impl Iterator<Item = u64>) -> (u64, u64) {
    let clock = ManualClock::new();
    let limiter = RateLimiter::with_clock(config, clock.clone()).unwrap();
    let mut admitted = 0;
    let drain = |admitted: &mut u64| {
        while limiter.try_acquire().is_ok() {
            *admitted += 1;
        }
    };
    drain(&mut admitted);
    for step in steps {
        clock.advance(Duration::from_nanos(step));
        drain(&mut admitted);
    }
    (admitted, clock.now() - 1)
}

fn ideal(config: &RateLimiterConfig, elapsed: u64) -> u64 {
    let period = config.period.as_nanos();
    config.burst + (u128::from(config.rate) * u128::from(elapsed) / period) as u64
}

/// Deterministic irregular ticks: each gap is 1..=2 ticks (a late tick, a tick lost).
fn irregular_ticks(n: usize) -> impl Iterator<Item = u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        TICK + x % (TICK + 1)
    })
}

fn quotas() -> Vec<RateLimiterConfig> {
    let mut v = Vec::new();
    for (rate, period_ms) in [
        (1000u64, 1000u64),
        (100, 1000),
        (3, 1),
        (7, 100),
        (50_000, 1000),
        (1, 10),
    ] {
        for burst in [1u64, 2, 4, 8, 17, 33, 100, 1000, 5000] {
            v.push(
                RateLimiterConfig::new(rate, Duration::from_millis(period_ms)).with_burst(burst),
            );
        }
    }
    v
}

#[test]
fn coarse_ticks_deliver_exactly_when_the_rule_says_so() {
    let mut coarse = 0;
    let mut under = 0;
    for config in quotas() {
        if config.validate().is_err() {
            continue;
        }
        let ticks = 2_500; // 10 s of regular 4 ms ticks
        let (got, elapsed) = saturate(config, std::iter::repeat_n(TICK, ticks));
        let want = ideal(&config, elapsed);
        assert!(got <= want, "{config:?}: {got} > {want}");
        if RateLimiter::coarse_is_exact(&config, TICK) {
            coarse += 1;
            assert_eq!(got, want, "{config:?} on regular ticks");
            let (got, elapsed) = saturate(config, irregular_ticks(1_500));
            assert_eq!(
                got,
                ideal(&config, elapsed),
                "{config:?} on irregular ticks"
            );
        } else if got < want {
            under += 1;
        }
    }
    assert!(
        coarse >= 10,
        "the rule allows the coarse clock for {coarse} quotas"
    );
    assert!(
        under >= 10,
        "coarse ticks under-deliver for {under} quotas the rule excludes"
    );
}

#[test]
fn rule_boundary_is_where_ticks_start_to_lose() {
    // 1000/s: the coarse clock is allowed from burst 17 ((17-1) × 1 ms = 4 ticks).
    let at = |burst| RateLimiterConfig::new(1000, Duration::from_secs(1)).with_burst(burst);
    assert!(RateLimiter::coarse_is_exact(&at(17), TICK));
    assert!(!RateLimiter::coarse_is_exact(&at(16), TICK));
    assert_eq!(COARSE_CLOCK_MIN_TICKS, 4);
    // Below the margin regular ticks still deliver (burst 5: (5-1) × 1 ms = 1 tick) …
    let (got, elapsed) = saturate(at(5), std::iter::repeat_n(TICK, 1000));
    assert_eq!(got, ideal(&at(5), elapsed));
    // … but a late tick loses permits for good.
    let (got, elapsed) = saturate(at(5), irregular_ticks(1000));
    assert!(got < ideal(&at(5), elapsed));
    // And below one tick even regular ticks lose.
    let (got, elapsed) = saturate(at(2), std::iter::repeat_n(TICK, 1000));
    assert!(got < ideal(&at(2), elapsed) * 3 / 4);
}

#[test]
fn precise_steps_deliver_every_quota_exactly() {
    for config in quotas() {
        if config.validate().is_err() {
            continue;
        }
        // 1 µs steps for 0.2 s: any burst ≥ 2 absorbs them when interval ≥ 1 µs; with
        // burst 1 the steps must land on the interval grid, so use the interval itself.
        let interval = (config.period.as_nanos() / u128::from(config.rate)) as u64;
        let exact_grid = config.period.as_nanos() % u128::from(config.rate) == 0;
        let (got, elapsed) = if config.burst == 1 && exact_grid {
            saturate(config, std::iter::repeat_n(interval, 2_000))
        } else if config.burst >= 2 && interval >= 1_000 {
            saturate(config, std::iter::repeat_n(1_000, 200_000))
        } else {
            continue;
        };
        assert_eq!(got, ideal(&config, elapsed), "{config:?}");
    }
}

#[test]
fn new_picks_the_clock_by_the_rule() {
    let tick = CoarseClock::resolution().as_nanos() as u64;
    for config in quotas() {
        let Ok(limiter) = RateLimiter::new(config) else {
            continue;
        };
        let coarse = RateLimiter::coarse_is_exact(&config, tick);
        assert_eq!(
            matches!(limiter.clock(), AnyClock::Coarse),
            coarse,
            "{config:?} with a {tick} ns tick"
        );
        let lag = AnyClock::Monotonic.coarse_lag();
        let tsc =
            !coarse && RateLimiter::coarse_never_decides(&config, lag) && TscClock::get().is_some();
        assert_eq!(
            matches!(limiter.clock(), AnyClock::Tsc(_)),
            tsc,
            "{config:?}: the TSC exactly when the coarse reading can decide nothing"
        );
        assert!(matches!(
            limiter.clock(),
            AnyClock::Coarse | AnyClock::Monotonic | AnyClock::Tsc(_)
        ));
    }
}

/// Spins on a real limiter for `run`, then drains it, and checks the bound that no
/// scheduling can break: at most `burst + (last reading - epoch) / interval` permits,
/// with the epoch no earlier than the reading before the limiter was made. (A caller
/// that is descheduled gets fewer: the bucket overflows while it sleeps; that is
/// allowed, so no lower bound is checked here — the manual-clock tests above prove
/// exactness.) Returns the admitted count and the reading taken before the limiter was
/// made.
fn spin_real<C: Clock, R: Clock>(
    config: RateLimiterConfig,
    make: impl FnOnce() -> RateLimiter<C>,
    clock: R,
    run: Duration,
) -> (u64, u64) {
    let before = clock.now();
    let limiter = make();
    let interval = (config.period.as_nanos() / u128::from(config.rate)) as u64;
    let start = Instant::now();
    let mut admitted = 0u64;
    while start.elapsed() < run {
        if limiter.try_acquire().is_ok() {
            admitted += 1;
        }
    }
    while limiter.try_acquire().is_ok() {
        admitted += 1;
    }
    let end = clock.now();
    let most = config.burst + (end - before) / interval;
    assert!(
        admitted <= most,
        "{config:?}: admitted {admitted}, its clock's readings allow at most {most}"
    );
    assert!(admitted >= config.burst, "a fresh bucket holds the burst");
    (admitted, before)
}

#[test]
fn real_clocks_never_admit_more_than_their_readings_allow() {
    let run = Duration::from_millis(50);
    // 100 000/s with a 50 ms bucket: coarse by the rule.
    let coarse_quota = RateLimiterConfig::new(100_000, Duration::from_secs(1)).with_burst(5_000);
    // 100 000/s with a 15 ms bucket: monotonic by the rule (under 4 ticks of 4 ms).
    let precise_quota = RateLimiterConfig::new(100_000, Duration::from_secs(1)).with_burst(1_500);
    let tick = CoarseClock::resolution().as_nanos() as u64;
    assert_eq!(
        RateLimiter::coarse_is_exact(&coarse_quota, tick),
        matches!(
            RateLimiter::new(coarse_quota).unwrap().clock(),
            AnyClock::Coarse
        )
    );
    let (admitted, coarse_before) = spin_real(
        coarse_quota,
        || RateLimiter::with_clock(coarse_quota, CoarseClock).unwrap(),
        CoarseClock,
        run,
    );
    // Against real time: both clocks read one kernel time base and a coarse reading is
    // never ahead of a precise one taken after it, so real time since the coarse reading
    // before the limiter was made bounds every admission. How far the coarse clock lagged
    // at that reading is up to the kernel's tick delivery (more than one tick on a loaded
    // virtual machine), so the bound starts at that reading rather than a tick before now.
    let real_end = MonotonicClock.now();
    let most = 5_000 + (real_end - coarse_before) / 10_000;
    assert!(
        admitted <= most,
        "coarse: admitted {admitted}, real time allows {most}"
    );
    spin_real(
        precise_quota,
        || RateLimiter::with_clock(precise_quota, MonotonicClock).unwrap(),
        MonotonicClock,
        run,
    );
    // `new` takes the TSC clock for this bucket (it fits the coarse lag) where the
    // counter is invariant, else CLOCK_MONOTONIC read coarse first: the same bound on
    // the readings of the clock it took.
    spin_real(
        precise_quota,
        || RateLimiter::new(precise_quota).unwrap(),
        RateLimiter::clock_for(&precise_quota),
        run,
    );
}

/// The coarse-first path against the precise clock alone, on manual clocks: one clock
/// whose cheap reading steps in 4 ms ticks, one without, the same time, the same
/// requests. Every answer is the same; a refusal answered from the cheap reading may
/// say to wait longer, by at most the lag, never less.
#[test]
fn coarse_first_decides_exactly_as_the_precise_clock() {
    let tick = Duration::from_nanos(TICK);
    let mut coarse_answers = 0;
    for config in quotas() {
        if config.validate().is_err() {
            continue;
        }
        let mut steps = irregular_ticks(1_500).map(|t| t % 1_300_001 + 1);
        let precise = ManualClock::new();
        let ticked = precise.with_coarse_tick(tick);
        let alone = RateLimiter::with_clock(config, precise.clone()).unwrap();
        let first = RateLimiter::with_clock(config, ticked.clone()).unwrap();
        for i in 0..3_000u64 {
            let n = 1 + i % 3;
            let (a, b) = (alone.try_acquire_n(n), first.try_acquire_n(n));
            match (&a, &b) {
                (Ok(()), Ok(())) => {}
                (Err(x), Err(y)) => {
                    let (x, y) = (x.rejection(), y.rejection());
                    if let (Some(x), Some(y)) = (x, y) {
                        let (x, y) = (x.retry_after.unwrap(), y.retry_after.unwrap());
                        assert!(
                            y >= x && y - x <= tick + Duration::from_nanos(1),
                            "{config:?} at {}: retry_after {y:?} vs {x:?}",
                            precise.now()
                        );
                        if y != x {
                            coarse_answers += 1;
                        }
                    } else {
                        assert_eq!(x, y, "{config:?} at {}", precise.now());
                    }
                }
                _ => panic!("{config:?} at {}: {a:?} vs {b:?}", precise.now()),
            }
            assert_eq!(alone.available(), first.available(), "at {}", precise.now());
            if i % 2 == 0 {
                precise.advance(Duration::from_nanos(steps.next().unwrap_or(TICK)));
            }
        }
    }
    assert!(
        coarse_answers > 0,
        "the cheap reading answered some refusals (else the path went untested)"
    );
}

/// What the coarse-first shortcut relies on from the kernel: both clocks read one time
/// base, so a coarse reading is never ahead of a precise one taken after it (the
/// precise one adds the time since the last tick to the same base). How far it lags
/// depends on how the kernel delivers ticks (a late tick on a busy or virtual machine
/// lags longer), so it is not asserted: the code takes it as under
/// `COARSE_LAG_TICKS` ticks, and `BW_CALLGRIND=min cargo bench --bench limiter` measures
/// it (`min/clock/coarse_lag`).
#[test]
fn a_coarse_reading_is_never_ahead_of_a_later_precise_one() {
    for _ in 0..200_000 {
        let c = CoarseClock.now();
        let p = MonotonicClock.now();
        assert!(c <= p, "coarse {c} ns ahead of the later precise {p} ns");
    }
    let tick = CoarseClock::resolution().as_nanos() as u64;
    assert_eq!(
        MonotonicClock.coarse_lag(),
        tick.max(1) * breakwater::clock::COARSE_LAG_TICKS
    );
}

/// A tight quota on `new` (monotonic, coarse first): admissions stay at least one
/// interval apart between readings that bracket them, and waiting out a refusal's
/// retry_after always suffices, however the refusal was answered and however the thread
/// is scheduled (a preemption only makes time pass).
#[test]
fn coarse_first_refusals_wait_long_enough() {
    let config = RateLimiterConfig::new(1, Duration::from_millis(30)).with_burst(1);
    let limiter = RateLimiter::new(config).unwrap();
    assert!(matches!(limiter.clock(), AnyClock::Monotonic));
    // (reading before the call, reading after it) of each admission.
    let mut admitted: Vec<(u64, u64)> = Vec::new();
    for _ in 0..3 {
        let before = MonotonicClock.now();
        match limiter.try_acquire() {
            Ok(()) => admitted.push((before, MonotonicClock.now())),
            Err(r) => {
                // The limiter read its clock before `after`: waiting until after + d is
                // at least d after its reading.
                let after = MonotonicClock.now();
                let due = after + r.retry_after.unwrap().as_nanos() as u64;
                while MonotonicClock.now() < due {
                    std::thread::sleep(Duration::from_micros(200));
                }
                let before = MonotonicClock.now();
                assert!(limiter.try_acquire().is_ok(), "refused after retry_after");
                admitted.push((before, MonotonicClock.now()));
            }
        }
    }
    for pair in admitted.windows(2) {
        // Each admission read the clock within its bracket, so the later one's upper
        // reading minus the earlier one's lower reading spans at least the interval.
        assert!(pair[1].1 - pair[0].0 >= 30_000_000, "{admitted:?}");
    }
    assert_eq!(admitted.len(), 3);
}
