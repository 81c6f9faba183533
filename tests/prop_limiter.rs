//! The GCRA limiter against a plain sequential model in exact rational arithmetic, and
//! the quota bound for the permits kept after any refunds.
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
    /// One permit that can be given back (`try_acquire_raw`).
    AcquireRaw,
    Reserve(u64, u64),
    /// Give back the `which`-th outstanding token or reservation (modulo their number).
    Cancel(usize),
}

fn op(burst: u64, period: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..=period / 2).prop_map(Op::Advance),
        1 => (0..=period).prop_map(Op::Back),
        3 => (0..=burst + 1).prop_map(Op::Acquire),
        2 => Just(Op::AcquireRaw),
        2 => (0..=burst + 1, 0..=2 * period).prop_map(|(n, w)| Op::Reserve(n, w)),
        2 => any::<usize>().prop_map(Op::Cancel),
    ]
}

/// GCRA with time in units of 1/rate ns (so one permit is exactly `period` units), and
/// refunds as `RateLimiter::cancel_raw` documents them.
struct Model {
    rate: u128,
    period: u128,
    burst: u128,
    tat: u128,
    /// Permits given back by refunds that moved other slots.
    moved_permits: u128,
    /// The latest due instant of a reservation that had to wait.
    latest_due: u128,
}

/// A slot the model handed out: where it ended, the reading it was taken at, the
/// refunds counted then, its permits.
#[derive(Debug, Clone, Copy)]
struct Token {
    end: u128,
    taken_at: u128,
    seen: u128,
    n: u128,
}

enum Answer {
    Admit { tat: u128, wait_ns: u64 },
    Deny { retry_ns: u64 },
}

impl Model {
    /// Gives `t` back at `now_ns`: its slot leaves the schedule; the slots after it move
    /// up by the part of it not yet elapsed, never to before now nor before a waiting
    /// reservation's due instant. Where the slot is now is known exactly when nothing
    /// moved it; otherwise only that it ends no earlier than `end - moved` and than
    /// `taken_at + its length`. Returns whether anything went back.
    fn refund(&mut self, t: Token, now_ns: u64) -> bool {
        let now = u128::from(now_ns) * self.rate;
        let length = t.n * self.period;
        let moved = (self.moved_permits - t.seen) * self.period;
        // Nothing taken after it is still there: every admission since added at least
        // its length, and only `moved` can have been taken off by other refunds.
        let last = self.tat + moved <= t.end;
        let (end, floor) = if last {
            (self.tat, now)
        } else {
            let end = t.end.saturating_sub(moved).max(t.taken_at + length);
            (end.min(self.tat), now.max(self.latest_due))
        };
        let back = end.saturating_sub(floor).min(length);
        if back == 0 {
            return false;
        }
        if !last {
            self.moved_permits += t.n;
        }
        self.tat -= back;
        true
    }

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
        let mut model = Model {
            rate: rate.into(), period: period.into(), burst: burst.into(), tat: 0,
            moved_permits: 0, latest_due: 0,
        };
        // Outstanding tokens and reservations, as the limiter and the model know them.
        let mut outstanding: Vec<(RawReservation, Token)> = Vec::new();
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
                Op::AcquireRaw => {
                    let got = limiter.try_acquire_raw();
                    match model.decide(now, 1, 0) {
                        Answer::Admit { tat, .. } => {
                            let raw = got.unwrap();
                            outstanding.push((raw, Token {
                                end: tat, taken_at: u128::from(now) * model.rate,
                                seen: model.moved_permits, n: 1,
                            }));
                            model.tat = tat;
                        }
                        Answer::Deny { retry_ns } => {
                            prop_assert_eq!(got.unwrap_err().retry_after,
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
                            let now_u = u128::from(now) * model.rate;
                            let due = tat.saturating_sub(model.burst * model.period);
                            if due > now_u {
                                model.latest_due = model.latest_due.max(due);
                            }
                            outstanding.push((r, Token {
                                end: tat, taken_at: now_u, seen: model.moved_permits,
                                n: u128::from(n),
                            }));
                            model.tat = tat;
                        }
                        Answer::Deny { retry_ns } => {
                            let e = got.unwrap_err();
                            prop_assert_eq!(e.rejection().unwrap().retry_after,
                                Some(Duration::from_nanos(retry_ns)), "at {}", now);
                        }
                    }
                }
                Op::Cancel(which) => {
                    if !outstanding.is_empty() {
                        let (raw, token) = outstanding.swap_remove(which % outstanding.len());
                        let expect = model.refund(token, now);
                        prop_assert_eq!(limiter.cancel_raw(raw), expect, "at {}", now);
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

    /// Refunds in any order, at any time, of tokens and of reservations that wait: the
    /// permits kept (never given back) obey the quota. Each counts at the instant its
    /// caller goes ahead (a reservation: when it falls due); over any `[a, b]` at most
    /// `burst + rate·(b - a)/period` kept permits go ahead. The quota is `rate` per
    /// `rate × k` ns, so units are whole nanoseconds and due instants exact.
    #[test]
    fn refunds_never_keep_more_than_the_bound(
        rate in 1u64..=8,
        k in 1u64..=1_000,
        burst in 1u64..=4,
        steps in proptest::collection::vec(
            (0u64..=3, 0u64..=1_200, 0u64..=4, any::<usize>()), 1..120),
    ) {
        let period = rate * k;
        let clock = ManualClock::new();
        let config = RateLimiterConfig::new(rate, Duration::from_nanos(period)).with_burst(burst);
        let limiter = RateLimiter::with_clock(config, clock.clone()).unwrap();
        // (due instant, permits) of every token and reservation, and which are still
        // outstanding (may be given back) or kept.
        let mut taken: Vec<(u64, u64, Option<RawReservation>)> = Vec::new();
        let mut given_back = vec![];
        for (kind, x, n, which) in steps {
            let now = clock.now();
            match kind {
                0 => clock.advance(Duration::from_nanos(x)),
                1 => if let Ok(raw) = limiter.try_acquire_raw() {
                    taken.push((now, 1, Some(raw)));
                },
                2 => {
                    let n = n.clamp(1, burst);
                    if let Ok(r) = limiter.reserve(n, Duration::from_nanos(x * 2)) {
                        let raw = r.into_raw();
                        taken.push((now + raw.wait_ns, n, Some(raw)));
                    }
                }
                _ => {
                    let open: Vec<usize> =
                        (0..taken.len()).filter(|&i| taken[i].2.is_some()).collect();
                    if !open.is_empty() {
                        let i = open[which % open.len()];
                        limiter.cancel_raw(taken[i].2.take().unwrap());
                        given_back.push(i);
                    }
                }
            }
        }
        let mut kept: Vec<(u64, u64)> = taken
            .iter()
            .enumerate()
            .filter(|(i, _)| !given_back.contains(i))
            .map(|(_, &(due, n, _))| (due, n))
            .collect();
        kept.sort_unstable();
        for i in 0..kept.len() {
            let mut sum = 0u128;
            for j in i..kept.len() {
                sum += u128::from(kept[j].1);
                let span = u128::from(kept[j].0 - kept[i].0);
                // sum ≤ burst + rate·span/period, times period/rate = k:
                prop_assert!(
                    sum * u128::from(k) <= u128::from(burst * k) + span,
                    "{} permits due in [{}, {}] (burst {}, one per {} ns); kept {:?}",
                    sum, kept[i].0, kept[j].0, burst, k, kept
                );
            }
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
