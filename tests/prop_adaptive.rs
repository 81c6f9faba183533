//! Property tests: the adaptive limiter, the client throttle and chaos against plain
//! sequential reference models written from the documented rules.
#![cfg(not(loom))]

use breakwater::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AdaptiveLimiter, AimdConfig, ClientThrottle,
    Gradient2Config, Priority, RawAdaptivePermit, ThrottleConfig,
};
use breakwater::chaos::{Chaos, ChaosConfig, ChaosDecision, LatencyFault};
use breakwater::clock::ManualClock;
use breakwater::rng::Rng;
use breakwater::Outcome;
use proptest::prelude::*;
use std::time::Duration;

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig::with_cases(n)
}

#[derive(Debug, Clone)]
enum Op {
    Acquire(Priority),
    /// Complete the held permit at this index (mod the number held).
    Complete(usize, Outcome),
    /// Complete with an explicit RTT in ms.
    CompleteRtt(usize, Outcome, u64),
    Advance(u64),
}

fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop::sample::select(Outcome::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => priority().prop_map(Op::Acquire),
        3 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Complete(i, o)),
        1 => (any::<usize>(), outcome(), 0u64..200).prop_map(|(i, o, ms)| Op::CompleteRtt(i, o, ms)),
        2 => (0u64..120).prop_map(Op::Advance),
    ]
}

/// The sequential model: a plain count, a plain limit and a plain algorithm state.
struct Model {
    config: AdaptiveConfig,
    in_flight: u32,
    limit: u32,
    estimate: f64,
    long: f64,
    samples: u32,
    now: u64,
    held: Vec<(u64, u32)>,
}

impl Model {
    fn admits(&self, p: Priority) -> bool {
        let n = self.in_flight as f64;
        let l = self.limit as f64;
        match p {
            Priority::Critical => self.in_flight < self.limit,
            Priority::Default => self.in_flight < self.limit && n < self.config.default_at * l,
            Priority::Sheddable => self.in_flight < self.limit && n < self.config.sheddable_at * l,
        }
    }

    fn sample(&mut self, rtt: u64, in_flight: u32, dropped: bool) {
        let (min, max) = (self.config.min_limit, self.config.max_limit);
        match self.config.algorithm {
            AdaptiveAlgorithm::Aimd(a) => {
                let timeout = a.timeout.as_nanos() as u64;
                if dropped || rtt > timeout {
                    let backed = (self.limit as f64 * a.backoff_ratio).floor() as u32;
                    self.limit = backed.min(self.limit - 1).max(min);
                } else if 2 * in_flight >= self.limit {
                    self.limit = (self.limit + a.increase).min(max);
                }
            }
            AdaptiveAlgorithm::Gradient2(g) => {
                let rtt = rtt.max(1) as f64;
                if self.samples < 10 {
                    self.long =
                        (self.long * self.samples as f64 + rtt) / (self.samples as f64 + 1.0);
                    self.samples += 1;
                } else {
                    let f = 2.0 / (g.long_window as f64 + 1.0);
                    self.long = self.long * (1.0 - f) + rtt * f;
                }
                if self.long / rtt > 2.0 {
                    self.long *= 0.9;
                }
                if (in_flight as f64) >= self.estimate / 2.0 {
                    let gradient = (g.tolerance * self.long / rtt).clamp(0.5, 1.0);
                    let next = self.estimate * gradient + g.queue_size as f64;
                    let next = self.estimate * (1.0 - g.smoothing) + next * g.smoothing;
                    self.estimate = next.clamp(min as f64, max as f64);
                    self.limit = self.estimate as u32;
                }
            }
        }
    }
}

fn limiter_config() -> impl Strategy<Value = AdaptiveConfig> {
    let aimd = (1u32..4, 0.5f64..0.99, 1u64..150).prop_map(|(increase, backoff_ratio, ms)| {
        AdaptiveAlgorithm::Aimd(
            AimdConfig::default()
                .with_increase(increase)
                .with_backoff_ratio(backoff_ratio)
                .with_timeout(Duration::from_millis(ms)),
        )
    });
    let gradient = (0.05f64..=1.0, 1.0f64..3.0, 1u32..700, 0u32..6).prop_map(|(s, t, w, q)| {
        AdaptiveAlgorithm::Gradient2(
            Gradient2Config::default()
                .with_smoothing(s)
                .with_tolerance(t)
                .with_long_window(w)
                .with_queue_size(q),
        )
    });
    (
        prop_oneof![aimd, gradient],
        1u32..6,
        0u32..10,
        0u32..20,
        0.0f64..=1.0,
        0.0f64..=1.0,
    )
        .prop_map(|(algorithm, min, span, initial, a, b)| {
            let max = min + span;
            AdaptiveConfig::default()
                .with_algorithm(algorithm)
                .with_initial_limit((min + initial).min(max))
                .with_min_limit(min)
                .with_max_limit(max)
                .with_sheddable_at(a.min(b))
                .with_default_at(a.max(b).max(0.01))
        })
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn limiter_matches_the_sequential_model(
        config in limiter_config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let limiter = AdaptiveLimiter::with_clock(config, clock.clone()).unwrap();
        let mut held: Vec<RawAdaptivePermit> = Vec::new();
        let mut model = Model {
            config,
            in_flight: 0,
            limit: config.initial_limit,
            estimate: config.initial_limit as f64,
            long: 0.0,
            samples: 0,
            now: 1,
            held: Vec::new(),
        };
        for op in ops {
            match op {
                Op::Acquire(p) => {
                    let admitted = model.admits(p);
                    let got = limiter.try_acquire_raw(p);
                    prop_assert_eq!(got.is_ok(), admitted, "{:?} at {}/{}", p, model.in_flight, model.limit);
                    if let Ok(permit) = got {
                        model.in_flight += 1;
                        prop_assert_eq!(permit.in_flight, model.in_flight);
                        model.held.push((model.now, model.in_flight));
                        held.push(permit);
                    }
                }
                Op::Complete(i, outcome) | Op::CompleteRtt(i, outcome, _) if !held.is_empty() => {
                    let i = i % held.len();
                    let permit = held.swap_remove(i);
                    let (start, in_flight) = model.held.swap_remove(i);
                    let rtt = match op {
                        Op::CompleteRtt(_, _, ms) => Some(Duration::from_millis(ms)),
                        _ => None,
                    };
                    limiter.complete_raw(permit, outcome, rtt);
                    model.in_flight -= 1;
                    if outcome != Outcome::Ignored {
                        let rtt = rtt.map_or(model.now - start, |d| d.as_nanos() as u64);
                        model.sample(rtt, in_flight, outcome.is_failure());
                    }
                }
                Op::Complete(..) | Op::CompleteRtt(..) => {}
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    model.now += ms * 1_000_000;
                }
            }
            prop_assert_eq!(limiter.in_flight(), model.in_flight);
            prop_assert_eq!(limiter.limit(), model.limit);
            prop_assert!((config.min_limit..=config.max_limit).contains(&limiter.limit()));
            let pressure = limiter.pressure();
            prop_assert!((0.0..=1.0).contains(&pressure));
        }
    }
}

#[derive(Debug, Clone)]
enum ThrottleOp {
    Acquire,
    Accept,
    Advance(u64),
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn throttle_matches_the_sequential_model(
        k in 1.0f64..4.0,
        buckets in 1u32..8,
        bucket_ms in 1u64..50,
        cap in 0.0f64..=1.0,
        seed in any::<u64>(),
        ops in prop::collection::vec(prop_oneof![
            5 => Just(ThrottleOp::Acquire),
            2 => Just(ThrottleOp::Accept),
            1 => (0u64..100).prop_map(ThrottleOp::Advance),
        ], 1..300),
    ) {
        let config = ThrottleConfig::default().with_k(k).with_window(Duration::from_millis(bucket_ms * buckets as u64)).with_buckets(buckets).with_max_rejection_probability(cap).with_seed(seed);
        let clock = ManualClock::new();
        let throttle = ClientThrottle::with_clock(config, clock.clone()).unwrap();
        // The model: every event with its time slot; the window is the last `buckets` slots.
        let bucket_ns = bucket_ms * 1_000_000;
        let mut now = 1u64;
        let mut requests: Vec<u64> = Vec::new();
        let mut accepts: Vec<u64> = Vec::new();
        let mut rng = Rng::new(seed);
        let in_window = |slots: &[u64], now_slot: u64| {
            slots.iter().filter(|&&s| s + (buckets as u64) > now_slot).count() as u64
        };
        for op in ops {
            let slot = now / bucket_ns;
            match op {
                ThrottleOp::Acquire => {
                    let r = in_window(&requests, slot) as f64;
                    let a = in_window(&accepts, slot) as f64;
                    let p = ((r - k * a) / (r + 1.0)).clamp(0.0, cap);
                    requests.push(slot);
                    let expected = !(p > 0.0 && rng.next_f64() < p);
                    prop_assert_eq!(throttle.try_acquire().is_ok(), expected, "p = {}", p);
                }
                ThrottleOp::Accept => {
                    accepts.push(slot);
                    throttle.record_accepted();
                }
                ThrottleOp::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    now += ms * 1_000_000;
                }
            }
            let slot = now / bucket_ns;
            let snap = throttle.snapshot();
            prop_assert_eq!(snap.requests, in_window(&requests, slot));
            prop_assert_eq!(snap.accepts, in_window(&accepts, slot));
        }
    }
}

#[derive(Debug, Clone)]
enum ChaosOp {
    Decide,
    SetEnabled(bool),
    Retune(f64, f64, f64),
    Reseed(u64),
}

fn model_decide(c: &ChaosConfig, rng: &mut Rng) -> ChaosDecision {
    if !c.enabled {
        return ChaosDecision::default();
    }
    let d: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
    let hit = |draw: u64, p: f64| p == 1.0 || (draw as f64) < p * 18_446_744_073_709_551_616.0;
    if hit(d[0], c.rejection_probability) {
        return ChaosDecision {
            reject: true,
            ..ChaosDecision::default()
        };
    }
    let latency = match c.latency {
        LatencyFault::None => Duration::ZERO,
        _ if !hit(d[2], c.latency_probability) => Duration::ZERO,
        LatencyFault::Fixed(l) => l,
        LatencyFault::Uniform { min, max } => {
            let span = (max - min).as_nanos() + 1;
            min + Duration::from_nanos(((d[3] as u128 * span) >> 64) as u64)
        }
    };
    ChaosDecision {
        reject: false,
        fail: hit(d[1], c.failure_probability),
        latency,
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn chaos_matches_the_sequential_model(
        seed in any::<u64>(),
        probabilities in (0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0),
        bounds in (0u64..1_000_000, 0u64..1_000_000),
        ops in prop::collection::vec(prop_oneof![
            8 => Just(ChaosOp::Decide),
            1 => any::<bool>().prop_map(ChaosOp::SetEnabled),
            1 => (0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0).prop_map(|(a, b, c)| ChaosOp::Retune(a, b, c)),
            1 => any::<u64>().prop_map(ChaosOp::Reseed),
        ], 1..100),
    ) {
        let (lo, hi) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
        let mut config = ChaosConfig::default().with_enabled(true).with_failure_probability(probabilities.0).with_rejection_probability(probabilities.1).with_latency_probability(probabilities.2).with_latency(LatencyFault::Uniform { min: Duration::from_nanos(lo), max: Duration::from_nanos(hi) }).with_seed(seed);
        let chaos = Chaos::new(config).unwrap();
        let mut rng = Rng::new(seed);
        for op in ops {
            match op {
                ChaosOp::Decide => prop_assert_eq!(chaos.decide(), model_decide(&config, &mut rng)),
                ChaosOp::SetEnabled(on) => {
                    chaos.set_enabled(on);
                    config.enabled = on;
                }
                ChaosOp::Retune(f, r, l) => {
                    config.failure_probability = f;
                    config.rejection_probability = r;
                    config.latency_probability = l;
                    chaos.reconfigure(config).unwrap();
                }
                ChaosOp::Reseed(s) => {
                    chaos.reseed(s);
                    rng = Rng::new(s);
                    config.seed = s;
                }
            }
            prop_assert_eq!(chaos.config(), config);
        }
    }
}
