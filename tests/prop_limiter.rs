//! The GCRA limiter against a plain sequential model in exact rational arithmetic.
#![cfg(not(loom))]

use breakwater::clock::{Clock, ManualClock};
use breakwater::limiter::{LimiterError, RateLimiter, RateLimiterConfig, RawReservation};
use proptest::prelude::*;
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Back(u64),
    Acquire(u64),
    Reserve(u64, u64),
    CancelLast,
}

fn op(burst: u64, period: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..=period / 2).prop_map(Op::Advance),
        1 => (0..=period).prop_map(Op::Back),
        4 => (0..=burst + 1).prop_map(Op::Acquire),
        2 => (0..=burst + 1, 0..=2 * period).prop_map(|(n, w)| Op::Reserve(n, w)),
        1 => Just(Op::CancelLast),
    ]
}

/// GCRA with time in units of 1/rate ns (so one permit is exactly `period` units).
struct Model {
    rate: u128,
    period: u128,
    burst: u128,
    tat: u128,
}

enum Answer {
    Admit { tat: u128, wait_ns: u64 },
    Deny { retry_ns: u64 },
}

impl Model {
    fn decide(&self, now_ns: u64, n: u64, max_wait_ns: u64) -> Answer {
        let now = u128::from(now_ns) * self.rate;
        let base = self.tat.max(now);
        let new = base + u128::from(n) * self.period;
        let limit = now + self.burst * self.period + u128::from(max_wait_ns) * self.rate;
        if new <= limit {
            let due = now + self.burst * self.period;
            let wait = new.saturating_sub(due);
            Answer::Admit {
                tat: new,
                wait_ns: wait.div_ceil(self.rate) as u64,
            }
        } else {
            Answer::Deny {
                retry_ns: (new - limit).div_ceil(self.rate) as u64,
            }
        }
    }
}

fn quota() -> impl Strategy<Value = (u64, u64, u64)> {
    // rate ≤ 32: always exact; periods from 1 µs to 10 s; burst 1..=6.
    (1u64..=32, 1_000u64..=10_000_000_000, 1u64..=6)
        .prop_filter("at most one permit per ns", |(r, p, _)| r <= p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Same decisions, same retry_after, same waits, same cancels, same `available`.
    #[test]
    fn matches_the_sequential_model(
        ((rate, period, burst), ops) in quota().prop_flat_map(|q| {
            (Just(q), proptest::collection::vec(op(q.2, q.1), 1..60))
        }),
    ) {
        let clock = ManualClock::new();
        let config = RateLimiterConfig::new(rate, Duration::from_nanos(period)).with_burst(burst);
        let limiter = RateLimiter::with_clock(config, clock.clone()).unwrap();
        prop_assert!(limiter.is_exact());
        let mut model = Model { rate: rate.into(), period: period.into(), burst: burst.into(), tat: 0 };
        // Reservations outstanding: (raw, model tat after it, model tat before it).
        let mut stack: Vec<(RawReservation, u128, u128)> = Vec::new();
        for op in ops {
            let now = clock.now() - 1; // the limiter's epoch is the clock's start, 1 ns
            match op {
                Op::Advance(d) => clock.advance(Duration::from_nanos(d)),
                Op::Back(d) => clock.set(clock.now().saturating_sub(d)),
                Op::Acquire(n) => {
                    let got = limiter.try_acquire_n(n);
                    if n > burst {
                        prop_assert_eq!(got, Err(LimiterError::ExceedsBurst { requested: n, burst }));
                        continue;
                    }
                    if n == 0 { prop_assert_eq!(got, Ok(())); continue; }
                    match model.decide(now, n, 0) {
                        Answer::Admit { tat, .. } => {
                            prop_assert_eq!(got, Ok(()), "at {}", now);
                            model.tat = tat;
                        }
                        Answer::Deny { retry_ns } => {
                            let r = got.unwrap_err();
                            prop_assert_eq!(r.rejection().unwrap().retry_after,
                                Some(Duration::from_nanos(retry_ns)), "at {}", now);
                        }
                    }
                }
                Op::Reserve(n, w) => {
                    let got = limiter.reserve(n, Duration::from_nanos(w));
                    if n > burst {
                        prop_assert!(matches!(got, Err(LimiterError::ExceedsBurst { .. })), "n > burst");
                        continue;
                    }
                    if n == 0 { prop_assert_eq!(got.unwrap().wait(), Duration::ZERO); continue; }
                    match model.decide(now, n, w) {
                        Answer::Admit { tat, wait_ns } => {
                            let r = got.unwrap().into_raw();
                            prop_assert_eq!(r.wait_ns, wait_ns, "at {}", now);
                            stack.push((r, tat, model.tat.max(u128::from(now) * model.rate)));
                            model.tat = tat;
                        }
                        Answer::Deny { retry_ns } => {
                            let e = got.unwrap_err();
                            prop_assert_eq!(e.rejection().unwrap().retry_after,
                                Some(Duration::from_nanos(retry_ns)), "at {}", now);
                        }
                    }
                }
                Op::CancelLast => {
                    if let Some((raw, after, before)) = stack.pop() {
                        let expect = model.tat == after;
                        prop_assert_eq!(limiter.cancel_raw(raw), expect);
                        if expect { model.tat = before; }
                    }
                }
            }
            let now = clock.now() - 1;
            let now_u = u128::from(now) * model.rate;
            let ahead = model.tat.saturating_sub(now_u);
            let avail = (model.burst * model.period).saturating_sub(ahead) / model.period;
            prop_assert_eq!(u128::from(limiter.available()), avail, "at {}", now);
        }
    }

    /// Any quota, exact or rounded: over any run of admissions, at most
    /// burst + rate·T/period pass (T between the first and last admission's reading).
    #[test]
    fn never_more_than_the_bound(
        rate in 1u64..=2_000,
        period in 1_000u64..=1_000_000_000,
        burst in 1u64..=8,
        steps in proptest::collection::vec((0u64..=2_000_000, 0u64..=3, any::<bool>()), 1..200),
    ) {
        prop_assume!(rate <= period);
        let clock = ManualClock::new();
        let config = RateLimiterConfig::new(rate, Duration::from_nanos(period)).with_burst(burst);
        let limiter = RateLimiter::with_clock(config, clock.clone()).unwrap();
        let mut admitted: Vec<(u64, u64)> = Vec::new();
        for (step, n, back) in steps {
            if back { clock.set(clock.now().saturating_sub(step / 4)); } else { clock.advance(Duration::from_nanos(step)); }
            let n = n.min(burst);
            if limiter.try_acquire_n(n).is_ok() && n > 0 {
                admitted.push((clock.now(), n));
            }
        }
        for i in 0..admitted.len() {
            let mut sum = 0u128;
            for j in i..admitted.len() {
                sum += u128::from(admitted[j].1);
                let (ti, tj) = (admitted[i].0, admitted[j].0);
                if tj >= ti {
                    let lhs = sum * u128::from(period);
                    let rhs = u128::from(burst) * u128::from(period) + u128::from(rate) * u128::from(tj - ti);
                    prop_assert!(lhs <= rhs, "{} permits in [{}, {}]", sum, ti, tj);
                }
            }
        }
    }
}
