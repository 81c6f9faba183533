//! Retry benchmarks: the delay computation per jitter, one retry decision through the
//! bare step (`RetryState::next`) and through a policy (`Policy::retry_next`, which adds
//! the `retry_on` check, the policy clock's reading and the retry counter), and the
//! retry budget's
//! deposit + withdraw with 1 and 2 threads, beside a mutex-guarded sliding-window budget
//! of the same rule (the shape of tower's `TpsBudget`, which guards its window with a
//! mutex; no peer crate with a retry budget is among our dependencies).
//!
//! `cargo bench --bench retry -- --warm-up-time 1 --measurement-time 3`

use breakwater::clock::{Clock, CoarseClock, MonotonicClock};
use breakwater::policy::{Policy, PolicyConfig, RetryOn};
use breakwater::retry::{
    BackoffConfig, BudgetConfig, Jitter, RetryBudget, RetryConfig, RetryDecision, RetryState,
};
use breakwater::rng::Rng;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use parking_lot::Mutex;
use std::time::Duration;

mod common;
use common::threaded;

fn delay(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry_delay");
    for jitter in Jitter::ALL {
        let backoff = BackoffConfig::default().with_jitter(jitter);
        group.bench_function(BenchmarkId::from_parameter(jitter.as_str()), |b| {
            let mut rng = Rng::new(1);
            let mut retry = 0u32;
            let mut previous = Duration::ZERO;
            b.iter(|| {
                retry = retry % 12 + 1;
                previous = backoff.delay(black_box(retry), previous, &mut rng);
                previous
            })
        });
    }
    group.finish();
}

/// One decision per iteration: a call of ten attempts, begun again when it gives up.
fn step(c: &mut Criterion) {
    let config = RetryConfig::default().with_max_attempts(10);
    let mut group = c.benchmark_group("retry_step");
    group.bench_function(BenchmarkId::from_parameter("retry_state_next"), |b| {
        let mut state = RetryState::new(&config, 1, MonotonicClock.now(), None);
        b.iter(|| {
            let decision = state.next::<CoarseClock>(true, MonotonicClock.now(), None, None);
            if let RetryDecision::GiveUp(_) = decision {
                state = RetryState::new(&config, 1, MonotonicClock.now(), None);
            }
            black_box(decision)
        })
    });
    let policy = Policy::new(PolicyConfig::new("p").with_retry(config)).unwrap();
    group.bench_function(BenchmarkId::from_parameter("policy_retry_next"), |b| {
        let mut state = policy.retry_begin(1, None).unwrap();
        b.iter(|| {
            let decision = policy.retry_next(&mut state, RetryOn::FAILURE, None);
            if let RetryDecision::GiveUp(_) = decision {
                state = policy.retry_begin(1, None).unwrap();
            }
            black_box(decision)
        })
    });
    group.finish();
}

/// The same budget rule behind one mutex: ten buckets of (epoch, requests, retries).
struct MutexBudget {
    clock: CoarseClock,
    origin: u64,
    bucket_nanos: u64,
    ratio: f64,
    reserve: f64,
    buckets: Mutex<[(u64, u64, u64); 10]>,
}

impl MutexBudget {
    fn new(config: BudgetConfig) -> Self {
        Self {
            clock: CoarseClock,
            origin: CoarseClock.now(),
            bucket_nanos: config.window.as_nanos() as u64 / 10,
            ratio: config.ratio,
            reserve: f64::from(config.min_per_second) * config.window.as_secs_f64(),
            buckets: Mutex::new([(0, 0, 0); 10]),
        }
    }

    fn epoch(&self) -> u64 {
        self.clock.now().saturating_sub(self.origin) / self.bucket_nanos
    }

    fn record_request(&self) {
        let now = self.epoch();
        let mut buckets = self.buckets.lock();
        let slot = &mut buckets[(now % 10) as usize];
        if slot.0 != now {
            *slot = (now, 0, 0);
        }
        slot.1 += 1;
    }

    fn try_withdraw(&self) -> bool {
        let now = self.epoch();
        let mut buckets = self.buckets.lock();
        let (mut requests, mut retries) = (0, 0);
        for &(epoch, req, ret) in buckets.iter() {
            if epoch + 10 > now {
                requests += req;
                retries += ret;
            }
        }
        if (retries as f64) + 1.0 > (self.ratio * requests as f64 + self.reserve).floor() {
            return false;
        }
        let slot = &mut buckets[(now % 10) as usize];
        if slot.0 != now {
            *slot = (now, 0, 0);
        }
        slot.2 += 1;
        true
    }
}

trait Budget: Send + Sync + 'static {
    fn deposit_and_withdraw(&self) -> bool;
}

impl Budget for RetryBudget {
    fn deposit_and_withdraw(&self) -> bool {
        self.record_request();
        self.try_withdraw()
    }
}

impl Budget for MutexBudget {
    fn deposit_and_withdraw(&self) -> bool {
        self.record_request();
        self.try_withdraw()
    }
}

/// Per-call time: the slowest thread's wall time over its `iters` calls.
fn run<B: Budget + Sync>(budget: &B, threads: usize, iters: u64) -> Duration {
    threaded(threads, iters, &|| {
        black_box(budget.deposit_and_withdraw());
    })
}

fn budget(c: &mut Criterion) {
    // Ratio 0.5: about every other withdrawal is granted, so both paths are measured.
    let config = BudgetConfig::default().with_ratio(0.5);
    for threads in [1usize, 2] {
        let mut group =
            c.benchmark_group(format!("retry_budget_deposit_withdraw/{threads}_thread"));
        let ours = RetryBudget::new(config).unwrap();
        group.bench_function(BenchmarkId::from_parameter("breakwater"), |b| {
            b.iter_custom(|iters| run(&ours, threads, iters))
        });
        let mutex = MutexBudget::new(config);
        group.bench_function(BenchmarkId::from_parameter("mutex_window"), |b| {
            b.iter_custom(|iters| run(&mutex, threads, iters))
        });
        group.finish();
    }
}

criterion_group!(benches, delay, step, budget);
criterion_main!(benches);
