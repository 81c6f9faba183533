//! The full pipeline (breaker + rate limiter + bulkhead) acquire+complete beside the
//! same three stages called one after another by hand, so the pipeline's own
//! bookkeeping (rejection unwinding, metrics, permit plumbing) stays visible. Also the
//! policy alone with 2 threads.
//!
//! Beside them: a policy with no stages (the pipeline's fixed cost), the same policy
//! through the C ABI (`bw_policy_acquire` / `bw_policy_complete`, with `--features
//! capi`), and the peer stack a Rust service would assemble by hand — a `failsafe`
//! breaker wrapping a `governor` check and a `parking_lot::Mutex` in-flight counter — on
//! 1 and 2 threads.
//!
//! Goals (issue 14): `empty_policy` ≤ 4 ns; `policy` ≤ 1.15× `sum_of_parts` and
//! ≤ 0.7× `peer_stack`; `policy_capi` ≤ 2 ns over `policy`. Under load, compare within one run, or count instructions.
//!
//! `cargo bench --bench pipeline`; with fat LTO and one codegen unit, as a
//! release build of a dependent may be: `cargo bench --profile bench-lto --bench pipeline`.
//!
//! With `BW_CALLGRIND=<case>/ours` (`empty_policy`, `policy`, `policy_capi`,
//! `sum_of_parts`, `peer_stack`), the binary runs that case `BW_CALLS` times (a million by default) and
//! exits: the driver to run under `valgrind --tool=callgrind` for instruction counts
//! (run it with two call counts and divide the difference, so the setup cancels out).
//! `BW_CALLGRIND=min` prints each case's fastest batch instead (see `min_batches`).

mod common;
use common::threaded;

use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::breaker::{BreakerConfig, CircuitBreaker};
use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use breakwater::clock::AnyClock;
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::Outcome;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::num::NonZeroU32;

/// The peer stack: failsafe's cheapest breaker (consecutive failures), governor's
/// direct limiter with the same quota as ours, and a bulkhead as a `parking_lot` mutex
/// counter, called in the same order as our stages and unwound the same way.
struct PeerStack {
    breaker: failsafe::StateMachine<
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
        (),
    >,
    limiter: governor::DefaultDirectRateLimiter,
    in_flight: parking_lot::Mutex<u32>,
    max_in_flight: u32,
}

impl PeerStack {
    fn new() -> PeerStack {
        let policy = failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(Duration::from_secs(30)),
        );
        let per_second = NonZeroU32::new(1_000_000_000).unwrap();
        // A second of tolerance, as ours (see `configs`).
        let burst = NonZeroU32::new(1_000_000_000).unwrap();
        PeerStack {
            breaker: failsafe::Config::new().failure_policy(policy).build(),
            limiter: governor::RateLimiter::direct(
                governor::Quota::per_second(per_second).allow_burst(burst),
            ),
            in_flight: parking_lot::Mutex::new(0),
            max_in_flight: 64,
        }
    }

    /// Acquire, succeed, complete; false when a stage refused.
    #[inline]
    fn call(&self) -> bool {
        if !self.breaker.is_call_permitted() {
            return false;
        }
        if self.limiter.check().is_err() {
            return false;
        }
        {
            let mut n = self.in_flight.lock();
            if *n >= self.max_in_flight {
                return false;
            }
            *n += 1;
        }
        self.breaker.on_success();
        *self.in_flight.lock() -= 1;
        true
    }
}

/// The policy as a C caller has it: its `Arc` pointer is the `bw_policy*` handle (as
/// `bw_engine_policy` hands out), and every call crosses the two `extern "C"` functions
/// with a permit on the stack.
#[cfg(feature = "capi")]
struct CPolicy {
    policy: std::sync::Arc<Policy>,
}

#[cfg(feature = "capi")]
impl CPolicy {
    fn new() -> CPolicy {
        CPolicy {
            policy: std::sync::Arc::new(policy()),
        }
    }

    /// Acquire, succeed, complete through the C ABI; false when refused.
    #[inline]
    fn call(&self) -> bool {
        use breakwater::ffi::codes::{
            BW_DURATION_UNKNOWN, BW_OUTCOME_SUCCESS, BW_PRIORITY_DEFAULT,
        };
        use breakwater::ffi::policy::{
            bw_permit, bw_policy, bw_policy_acquire, bw_policy_complete,
        };
        use breakwater::ffi::status::bw_status::BW_OK;
        let handle = std::sync::Arc::as_ptr(&self.policy) as *const bw_policy;
        let mut permit = std::mem::MaybeUninit::<bw_permit>::uninit();
        // SAFETY: `handle` is live while `self` holds the Arc; the permit is written by
        // the acquire before the completion reads it, and only then.
        unsafe {
            bw_policy_acquire(
                black_box(handle),
                BW_PRIORITY_DEFAULT,
                permit.as_mut_ptr(),
                std::ptr::null_mut(),
            ) == BW_OK
                && bw_policy_complete(
                    handle,
                    permit.as_mut_ptr(),
                    black_box(BW_OUTCOME_SUCCESS),
                    BW_DURATION_UNKNOWN,
                ) == BW_OK
        }
    }
}

fn configs() -> (BreakerConfig, RateLimiterConfig, BulkheadConfig) {
    (
        BreakerConfig::default(),
        // Always allowed: a billion per second with a second's burst. Less tolerance is
        // not enough: a thread preempted between its clock reading and its decision is
        // decided at that stale reading (governor's too), and a millisecond's burst then
        // refused a few calls in every 10 million on two threads.
        RateLimiterConfig::new(1_000_000_000, Duration::from_secs(1)).with_burst(1_000_000_000),
        BulkheadConfig::new(64),
    )
}

fn policy() -> Policy {
    let (b, l, h) = configs();
    Policy::with_clock(
        PolicyConfig::new("bench")
            .with_circuit_breaker(b)
            .with_rate_limiter(l)
            .with_bulkhead(h),
        AnyClock::Coarse,
    )
    .unwrap()
}

/// One acquire + complete of `policy`, a success.
#[inline(always)]
fn acquire_complete(policy: &Policy) {
    let p = black_box(policy).acquire_raw(Priority::Default).unwrap();
    policy.complete_raw(p, Outcome::Success, None);
}

/// Everything the benches time: the three stages alone, the policy of the three (also
/// through the C ABI), a policy with no stages and the peer stack.
struct Subjects {
    breaker: CircuitBreaker,
    limiter: RateLimiter,
    bulkhead: Bulkhead,
    policy: Policy,
    #[cfg(feature = "capi")]
    c_policy: CPolicy,
    empty: Policy,
    peers: PeerStack,
}

impl Subjects {
    fn new() -> Subjects {
        let (bc, lc, hc) = configs();
        Subjects {
            breaker: CircuitBreaker::with_clock(bc, AnyClock::Coarse).unwrap(),
            limiter: RateLimiter::new(lc).unwrap(),
            bulkhead: Bulkhead::new(hc).unwrap(),
            policy: policy(),
            #[cfg(feature = "capi")]
            c_policy: CPolicy::new(),
            empty: Policy::with_clock(PolicyConfig::new("empty"), AnyClock::Coarse).unwrap(),
            peers: PeerStack::new(),
        }
    }

    /// One acquire + complete of the policy with no stages.
    #[inline(always)]
    fn empty_policy(&self) {
        acquire_complete(&self.empty);
    }

    /// One acquire + complete of the policy of the three stages.
    #[inline(always)]
    fn policy(&self) {
        acquire_complete(&self.policy);
    }

    /// The same three stages called by hand.
    #[inline(always)]
    fn sum_of_parts(&self) {
        let p = black_box(&self.breaker).try_acquire_raw().unwrap();
        black_box(&self.limiter).try_acquire().unwrap();
        black_box(&self.bulkhead).try_acquire_raw().unwrap();
        self.breaker.complete_raw(p, Outcome::Success, None);
        self.bulkhead.release_raw();
    }

    /// The peer stack's call.
    #[inline(always)]
    fn peer_stack(&self) {
        assert!(black_box(&self.peers).call());
    }

    /// The policy through the C ABI.
    #[cfg(feature = "capi")]
    #[inline(always)]
    fn policy_capi(&self) {
        assert!(black_box(&self.c_policy).call());
    }
}

/// The callgrind driver (see the module docs); false when not asked for.
fn callgrind_driver() -> bool {
    let (name, calls) = match common::driver("BW_CALLGRIND=<case>/ours") {
        Some(common::Driver::Loop { case, calls, .. }) => (case, calls),
        Some(common::Driver::Min) => {
            min_batches();
            return true;
        }
        None => return false,
    };
    let s = Subjects::new();
    match name.as_str() {
        "empty_policy" => (0..calls).for_each(|_| s.empty_policy()),
        "empty_policy_match" => {
            for _ in 0..calls {
                match black_box(&s.empty).acquire_raw(Priority::Default) {
                    Ok(p) => s.empty.complete_raw(p, Outcome::Success, None),
                    Err(r) => panic!("{}", r.reason as u8),
                }
            }
        }
        "policy" => (0..calls).for_each(|_| s.policy()),
        #[cfg(feature = "capi")]
        "policy_capi" => (0..calls).for_each(|_| s.policy_capi()),
        "sum_of_parts" => (0..calls).for_each(|_| s.sum_of_parts()),
        "peer_stack" => (0..calls).for_each(|_| s.peer_stack()),
        other => panic!("no case {other} in benches/pipeline.rs"),
    }
    true
}

/// `BW_CALLGRIND=min`: each case's cost per call as the fastest of many short batches,
/// the cases alternating, on one thread. On a loaded machine a batch that ran without
/// being preempted shows the cost, where criterion's mean shows the load.
fn min_batches() {
    let fastest = |f: &(dyn Fn() + Sync)| common::batch_ns(1, 20_000, f);
    let s = Subjects::new();
    let fixed: [(&str, &(dyn Fn() + Sync)); 4] = [
        ("empty_policy", &|| s.empty_policy()),
        ("policy", &|| s.policy()),
        ("sum_of_parts", &|| s.sum_of_parts()),
        ("peer_stack", &|| s.peer_stack()),
    ];
    #[allow(unused_mut)] // without capi nothing is added
    let mut cases = fixed.to_vec();
    #[cfg(feature = "capi")]
    let c_call = || s.policy_capi();
    #[cfg(feature = "capi")]
    cases.push(("policy_capi", &c_call));
    let mut best = vec![f64::MAX; cases.len()];
    for _ in 0..300 {
        for (i, (_, f)) in cases.iter().enumerate() {
            best[i] = best[i].min(fastest(*f));
        }
    }
    for ((name, _), &ns) in cases.iter().zip(&best) {
        println!("min/pipeline/1t/{name}: {ns:.2} ns");
    }
    println!(
        "min/pipeline/1t ratios: policy/sum_of_parts {:.2}, policy/peer_stack {:.2}",
        best[1] / best[2],
        best[1] / best[3]
    );
    #[cfg(feature = "capi")]
    println!(
        "min/pipeline/1t C ABI: policy_capi/peer_stack {:.2}, policy_capi - policy {:.2} ns",
        best[4] / best[3],
        best[4] - best[1]
    );
}

fn bench(c: &mut Criterion) {
    if callgrind_driver() {
        std::process::exit(0);
    }
    let s = Subjects::new();

    let mut g = c.benchmark_group("pipeline/1t");
    g.bench_function("breaker", |b| {
        b.iter(|| {
            let p = s.breaker.try_acquire_raw().unwrap();
            s.breaker.complete_raw(p, Outcome::Success, None);
        })
    });
    g.bench_function("limiter", |b| {
        b.iter(|| black_box(s.limiter.try_acquire()).unwrap())
    });
    g.bench_function("bulkhead", |b| {
        b.iter(|| {
            s.bulkhead.try_acquire_raw().unwrap();
            s.bulkhead.release_raw();
        })
    });
    g.bench_function("sum_of_parts", |b| b.iter(|| s.sum_of_parts()));
    g.bench_function("policy", |b| b.iter(|| s.policy()));
    g.bench_function("policy_guard", |b| {
        b.iter(|| s.policy.acquire().unwrap().success())
    });
    g.bench_function("empty_policy", |b| b.iter(|| s.empty_policy()));
    #[cfg(feature = "capi")]
    g.bench_function("policy_capi", |b| b.iter(|| s.policy_capi()));
    g.bench_function("peer_stack", |b| b.iter(|| s.peer_stack()));
    g.finish();

    let mut g = c.benchmark_group("pipeline/2t");
    g.bench_function("sum_of_parts", |b| {
        b.iter_custom(|iters| threaded(2, iters, &|| s.sum_of_parts()))
    });
    g.bench_function("policy", |b| {
        b.iter_custom(|iters| threaded(2, iters, &|| s.policy()))
    });
    g.bench_function("peer_stack", |b| {
        b.iter_custom(|iters| threaded(2, iters, &|| s.peer_stack()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
