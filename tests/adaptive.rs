//! Behaviour of the adaptive limit under simulated load, with a manual clock:
//! (a) a 10× latency rise drives the limit to `min_limit` within a bounded number of
//! completions and it recovers when latency falls; (b) under a modest steady overload the
//! limit stays bounded; (c) sheddable traffic is refused before default, default before
//! critical.
#![cfg(not(loom))]

use breakwater::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AdaptiveLimiter, AimdConfig, Gradient2Config, Priority,
};
use breakwater::clock::{Clock, ManualClock};
use breakwater::{Outcome, RejectReason};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// A simulated dependency driven in rounds: each round admits up to `demand` calls
/// (critical, so only the hard limit applies), lets `latency(n)` pass for the `n` admitted,
/// and completes them all as successes. Returns the completions of the round.
struct Sim {
    limiter: AdaptiveLimiter<ManualClock>,
    clock: ManualClock,
    completions: u64,
}

impl Sim {
    fn new(config: AdaptiveConfig) -> Self {
        let clock = ManualClock::new();
        let limiter = AdaptiveLimiter::with_clock(config, clock.clone()).expect("valid config");
        Self {
            limiter,
            clock,
            completions: 0,
        }
    }

    fn round(&mut self, demand: u32, latency: impl Fn(u32) -> Duration) -> u32 {
        self.round_watching(demand, latency, |_| false).0
    }

    /// A round that also reports how many of its completions ran before `watch(limit)`
    /// first held (counting the completion that made it hold).
    fn round_watching(
        &mut self,
        demand: u32,
        latency: impl Fn(u32) -> Duration,
        watch: impl Fn(u32) -> bool,
    ) -> (u32, Option<u64>) {
        let mut hit = None;
        let mut permits = Vec::new();
        for _ in 0..demand {
            match self.limiter.try_acquire_raw(Priority::Critical) {
                Ok(p) => permits.push(p),
                Err(r) => {
                    assert_eq!(r.reason, RejectReason::LoadShed);
                    break;
                }
            }
        }
        let n = permits.len() as u32;
        self.clock.advance(latency(n));
        for p in permits {
            self.limiter.complete_raw(p, Outcome::Success, None);
            self.completions += 1;
            let limit = self.limiter.limit();
            if hit.is_none() && watch(limit) {
                hit = Some(self.completions);
            }
            let c = self.limiter.config();
            assert!(
                (c.min_limit..=c.max_limit).contains(&limit),
                "limit {limit} out of bounds at {}",
                self.clock.now()
            );
        }
        assert_eq!(self.limiter.in_flight(), 0);
        (n, hit)
    }

    /// Runs rounds until `done(limit)` holds after some completion; returns how many
    /// completions that took, or `None` if it did not happen within `budget` completions.
    fn until(
        &mut self,
        demand: u32,
        latency: impl Fn(u32) -> Duration + Copy,
        budget: u64,
        done: impl Fn(u32) -> bool + Copy,
    ) -> Option<u64> {
        let start = self.completions;
        if done(self.limiter.limit()) {
            return Some(0);
        }
        while self.completions - start < budget {
            if let (_, Some(at)) = self.round_watching(demand, latency, done) {
                return Some(at - start).filter(|&used| used <= budget);
            }
        }
        None
    }
}

fn aimd_config() -> AdaptiveConfig {
    AdaptiveConfig::default()
        .with_algorithm(AdaptiveAlgorithm::Aimd(
            AimdConfig::default().with_timeout(50 * MS),
        ))
        .with_initial_limit(50)
        .with_min_limit(2)
        .with_max_limit(200)
}

fn gradient_config() -> AdaptiveConfig {
    AdaptiveConfig::default()
        .with_algorithm(AdaptiveAlgorithm::Gradient2(
            Gradient2Config::default().with_queue_size(2),
        ))
        .with_initial_limit(50)
        .with_min_limit(10)
        .with_max_limit(200)
}

/// (a) for one config: warm up at 10 ms, then 100 ms, then 10 ms again.
fn latency_spike_and_recovery(config: AdaptiveConfig, fall_budget: u64, rise_budget: u64) {
    let min = config.min_limit;
    let mut sim = Sim::new(config);
    let fast = |_| 10 * MS;
    let slow = |_| 100 * MS;
    // Warm up until the limit is well above where it will fall to.
    sim.until(400, fast, 20_000, |l| l >= 150)
        .expect("the limit grows while latency is low and the limit is used");
    let before = sim.limiter.limit();
    let fell = sim
        .until(400, slow, fall_budget, |l| l <= min)
        .unwrap_or_else(|| {
            panic!(
                "limit {} did not reach min_limit {min} within {fall_budget} completions",
                sim.limiter.limit()
            )
        });
    let rose = sim
        .until(400, fast, rise_budget, |l| l >= before / 2)
        .unwrap_or_else(|| {
            panic!(
                "limit {} did not recover to {} within {rise_budget} completions",
                sim.limiter.limit(),
                before / 2
            )
        });
    eprintln!(
        "{}: {before} -> {min} in {fell} completions, back to {} in {rose}",
        sim.limiter.snapshot().algorithm,
        sim.limiter.limit()
    );
}

#[test]
fn aimd_latency_rise_drives_limit_to_min_and_recovers() {
    // Every completion slower than `aimd.timeout` multiplies the limit by 0.9:
    // 200 · 0.9^n <= 2 for n >= 44.
    latency_spike_and_recovery(aimd_config(), 100, 2_000);
}

#[test]
fn gradient2_latency_rise_drives_limit_to_min_and_recovers() {
    // Gradient 0.5 with smoothing 0.2 multiplies the estimate by 0.9 per used completion
    // (plus 0.2·queue_size), towards 2·queue_size = 4. The baseline RTT catches up with
    // the new latency meanwhile (that is Gradient2's design: after about `long_window`
    // samples a sustained latency is the new normal), so the gradient leaves 0.5 and a
    // sudden 10× spike bottoms out near 2·queue_size / (1 − gradient) ≈ 8–9 here; with
    // min_limit 10 the floor is min_limit itself.
    latency_spike_and_recovery(gradient_config(), 300, 3_000);
}

#[test]
fn retry_after_follows_observed_latency() {
    let mut sim = Sim::new(aimd_config());
    sim.round(10, |_| 7 * MS);
    let held: Vec<_> = (0..sim.limiter.limit())
        .map(|_| sim.limiter.try_acquire_raw(Priority::Critical).unwrap())
        .collect();
    let r = sim.limiter.try_acquire(Priority::Critical).unwrap_err();
    assert_eq!(r.reason, RejectReason::LoadShed);
    assert_eq!(r.retry_after, Some(7 * MS));
    for p in held {
        sim.limiter.complete_raw(p, Outcome::Ignored, None);
    }
}

/// (b) A dependency that serves 20 calls at once in 10 ms and queues beyond that
/// (latency grows linearly), offered 30 concurrent calls (50 % over capacity).
fn steady_overload(config: AdaptiveConfig, bound: u32) {
    const CAPACITY: u32 = 20;
    const DEMAND: u32 = 30;
    let latency = |n: u32| 10 * MS * n.max(CAPACITY) / CAPACITY;
    let mut sim = Sim::new(config);
    let mut peaks = Vec::new();
    for _ in 0..8 {
        let mut peak = 0;
        let start = sim.completions;
        while sim.completions - start < 10_000 {
            sim.round(DEMAND, latency);
            peak = peak.max(sim.limiter.limit());
        }
        peaks.push(peak);
    }
    eprintln!(
        "{} peaks per 10k completions: {peaks:?}",
        sim.limiter.snapshot().algorithm
    );
    let late = peaks[4..].iter().max().copied().unwrap_or(0);
    let early = peaks[..4].iter().max().copied().unwrap_or(0);
    assert!(
        late <= bound,
        "limit drifted to {late} (bound {bound}), peaks {peaks:?}"
    );
    assert!(late <= early, "still rising: peaks {peaks:?}");
    assert!(late < sim.limiter.config().max_limit);
}

#[test]
fn aimd_does_not_drift_upward_under_modest_overload() {
    let config = aimd_config().with_max_limit(1_000);
    // AIMD grows only while 2·in_flight >= limit: at most 2·30 + increase.
    steady_overload(config, 61);
}

#[test]
fn gradient2_does_not_drift_upward_under_modest_overload() {
    let config = gradient_config().with_max_limit(1_000);
    // Growth stops once in_flight (at most 30) < estimate / 2: at most 2·30 + queue_size.
    steady_overload(config, 62);
}

/// (c) The in-flight level at which each class is first refused, for one limit.
fn first_refusal(config: AdaptiveConfig, limit: u32) -> [u32; 3] {
    let config = config
        .with_initial_limit(limit)
        .with_min_limit(limit)
        .with_max_limit(limit);
    let limiter = AdaptiveLimiter::with_clock(config, ManualClock::new()).unwrap();
    let mut refused = [u32::MAX; 3];
    let mut held = Vec::new();
    for level in 0..=limit {
        for p in Priority::ALL {
            match limiter.try_acquire_raw(p) {
                Ok(permit) => limiter.complete_raw(permit, Outcome::Ignored, None),
                Err(r) => {
                    assert_eq!(r.reason, RejectReason::LoadShed);
                    refused[p as usize] = refused[p as usize].min(level);
                }
            }
        }
        if let Ok(p) = limiter.try_acquire_raw(Priority::Critical) {
            held.push(p);
        }
    }
    assert_eq!(limiter.in_flight(), limit);
    for p in held {
        limiter.complete_raw(p, Outcome::Ignored, None);
    }
    refused
}

#[test]
fn sheddable_is_refused_before_default_and_default_before_critical() {
    for config in [aimd_config(), gradient_config()] {
        for limit in 1..=120 {
            let [critical, default, sheddable] = first_refusal(config, limit);
            assert_eq!(critical, limit, "critical is shed only at the hard limit");
            assert!(sheddable <= default && default <= critical, "limit {limit}");
            // The documented thresholds: refused once in_flight >= at·limit.
            assert_eq!(default, ((0.9 * limit as f64).ceil() as u32).min(limit));
            assert_eq!(sheddable, ((0.8 * limit as f64).ceil() as u32).min(limit));
        }
        assert_eq!(first_refusal(config, 100), [100, 90, 80]);
        assert_eq!(first_refusal(config, 10), [10, 9, 8]);
    }
}

#[test]
fn under_rising_pressure_classes_drop_out_in_order() {
    // A mixed load against an AIMD limit that latency pushes down: at every step, if a
    // default call is refused then every sheddable call is too, and the same one level up.
    let sim = Sim::new(aimd_config());
    for step in 0..200u32 {
        let latency = if step < 100 { 10 * MS } else { 100 * MS };
        let mut held = Vec::new();
        let mut admitted = [0u32; 3];
        let mut refused = [0u32; 3];
        for i in 0..300u32 {
            let p = Priority::ALL[(i % 3) as usize];
            match sim.limiter.try_acquire_raw(p) {
                Ok(permit) => {
                    admitted[p as usize] += 1;
                    held.push(permit);
                }
                Err(_) => refused[p as usize] += 1,
            }
        }
        let pressure = sim.limiter.pressure();
        assert!(
            admitted[2] <= admitted[1] && admitted[1] <= admitted[0],
            "step {step}: {admitted:?}"
        );
        assert!(admitted[0] > 0, "critical always gets in below the limit");
        assert!(
            refused[2] >= refused[1],
            "step {step}: {refused:?} at pressure {pressure}"
        );
        sim.clock.advance(latency);
        for permit in held {
            sim.limiter.complete_raw(permit, Outcome::Success, None);
        }
    }
    assert_eq!(
        sim.limiter.limit(),
        2,
        "the slow phase drove the limit to min_limit"
    );
}
