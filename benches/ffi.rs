//! The cost of crossing the C ABI: policy acquire + complete through the `extern "C"`
//! functions (`bw_policy_acquire` / `bw_policy_complete`) beside the Rust calls
//! (`Policy::acquire_raw` / `complete_raw`) on the same policy (breaker + bulkhead),
//! one thread. Also the standalone breaker and bulkhead through the ABI.
//!
//! With `BW_CALLGRIND=<case>/ours` (`rust`, `rust_boundary`, `c_abi`), the binary runs
//! that case `BW_CALLS` times (a million by default) and exits: the driver to run under
//! `valgrind --tool=callgrind` for instruction counts. `BW_CALLGRIND=min` prints each
//! case's fastest batch of many instead (robust to a loaded machine).

mod common;

use breakwater::adaptive::Priority;
use breakwater::engine::Engine;
use breakwater::ffi::breaker::*;
use breakwater::ffi::bulkhead::*;
use breakwater::ffi::codes::*;
use breakwater::ffi::policy::*;
use breakwater::ffi::status::bw_status::BW_OK;
use breakwater::policy::{Policy, RawPolicyPermit};
use breakwater::Outcome;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};
use std::sync::Arc;

const TOML: &str = "[policies.p.circuit_breaker]\nminimum_calls = 100\n\
[policies.p.bulkhead]\nmax_concurrent = 64\n";

/// The same Rust calls behind a function-call boundary, as a C caller always has one:
/// separates what the ABI itself adds from what inlining into the loop saves.
#[inline(never)]
fn acquire(policy: &Policy) -> RawPolicyPermit {
    policy.acquire_raw(Priority::Default).unwrap()
}

#[inline(never)]
fn complete(policy: &Policy, raw: RawPolicyPermit) {
    policy.complete_raw(raw, Outcome::Success, None);
}

/// One acquire + complete through the C ABI.
#[inline(always)]
fn c_call(handle: *const bw_policy) {
    let mut permit = MaybeUninit::<bw_permit>::uninit();
    // SAFETY: `handle` is live (its Arc is held by the caller); the permit is filled by
    // acquire before complete reads it.
    unsafe {
        let s = bw_policy_acquire(
            black_box(handle),
            BW_PRIORITY_DEFAULT,
            permit.as_mut_ptr(),
            null_mut(),
        );
        debug_assert_eq!(s, BW_OK);
        let s = bw_policy_complete(
            handle,
            permit.as_mut_ptr(),
            black_box(BW_OUTCOME_SUCCESS),
            BW_DURATION_UNKNOWN,
        );
        debug_assert_eq!(s, BW_OK);
    }
}

/// The callgrind driver (see the module docs); false when not asked for.
fn callgrind_driver() -> bool {
    let driver = common::driver("BW_CALLGRIND=<case>/ours");
    let engine = Engine::from_toml_str(TOML).unwrap();
    let policy = engine.policy("p").unwrap();
    let handle = Arc::as_ptr(&policy) as *const bw_policy;
    let (name, calls) = match driver {
        Some(common::Driver::Loop { case, calls, .. }) => (case, calls),
        Some(common::Driver::Min) => {
            min_batches(&policy, handle);
            return true;
        }
        None => return false,
    };
    match name.as_str() {
        "rust" => {
            for _ in 0..calls {
                let raw = policy.acquire_raw(black_box(Priority::Default)).unwrap();
                policy.complete_raw(raw, black_box(Outcome::Success), None);
            }
        }
        "rust_boundary" => {
            for _ in 0..calls {
                let raw = acquire(black_box(&policy));
                complete(&policy, raw);
            }
        }
        "c_abi" => {
            for _ in 0..calls {
                c_call(handle);
            }
        }
        other => panic!("no case {other} in benches/ffi.rs"),
    }
    true
}

/// `BW_CALLGRIND=min`: the fastest of many short batches of each case, alternating.
fn min_batches(policy: &Policy, handle: *const bw_policy) {
    let fastest = |f: &(dyn Fn() + Sync)| common::batch_ns(1, 20_000, f);
    let (mut rust, mut c) = (f64::MAX, f64::MAX);
    for _ in 0..300 {
        rust = rust.min(fastest(&|| {
            let raw = acquire(black_box(policy));
            complete(policy, raw);
        }));
        // As an address: a raw pointer is not `Sync`, and the batch runs on this thread.
        let address = handle as usize;
        c = c.min(fastest(&|| c_call(address as *const bw_policy)));
    }
    println!(
        "min/ffi/policy: rust behind a call boundary {rust:.2} ns, C ABI {c:.2} ns, +{:.2} ns",
        c - rust
    );
}

fn policy_acquire_complete(c: &mut Criterion) {
    if callgrind_driver() {
        std::process::exit(0);
    }
    let engine = Engine::from_toml_str(TOML).unwrap();
    let policy = engine.policy("p").unwrap();
    // The C handle of a policy is its `Arc` pointer (as `bw_engine_policy` hands out).
    let handle = Arc::as_ptr(&policy) as *const bw_policy;
    let mut group = c.benchmark_group("policy acquire+complete (breaker+bulkhead), 1 thread");
    group.bench_function("rust acquire_raw/complete_raw", |b| {
        b.iter(|| {
            let raw = policy.acquire_raw(black_box(Priority::Default)).unwrap();
            policy.complete_raw(raw, black_box(Outcome::Success), None);
        })
    });
    group.bench_function("rust behind a call boundary", |b| {
        b.iter(|| {
            let raw = acquire(black_box(&policy));
            complete(&policy, raw);
        })
    });
    group.bench_function("C ABI bw_policy_acquire/complete", |b| {
        b.iter(|| c_call(handle))
    });
    group.finish();
}

fn standalone(c: &mut Criterion) {
    let mut bc = null_mut();
    let mut breaker = null_mut();
    let mut hc = null_mut();
    let mut bulkhead = null_mut();
    // SAFETY: valid out-pointers; every handle is freed once at the end.
    unsafe {
        assert_eq!(bw_breaker_config_new(&mut bc), BW_OK);
        assert_eq!(bw_breaker_new(bc, null(), &mut breaker), BW_OK);
        assert_eq!(bw_bulkhead_config_new(&mut hc), BW_OK);
        assert_eq!(bw_bulkhead_config_set_max_concurrent(hc, 64), BW_OK);
        assert_eq!(bw_bulkhead_new(hc, null(), &mut bulkhead), BW_OK);
    }
    let mut group = c.benchmark_group("standalone through the C ABI, 1 thread");
    group.bench_function("bw_breaker_try_acquire/complete", |b| {
        b.iter(|| {
            let mut permit = MaybeUninit::<bw_breaker_permit>::uninit();
            // SAFETY: live handle; the permit is filled before complete reads it.
            unsafe {
                bw_breaker_try_acquire(black_box(breaker), permit.as_mut_ptr(), null_mut());
                bw_breaker_complete(
                    breaker,
                    permit.as_mut_ptr(),
                    BW_OUTCOME_SUCCESS,
                    BW_DURATION_UNKNOWN,
                );
            }
        })
    });
    group.bench_function("bw_bulkhead_try_acquire/release", |b| {
        b.iter(|| {
            // SAFETY: live handle.
            unsafe {
                bw_bulkhead_try_acquire(black_box(bulkhead));
                bw_bulkhead_release(bulkhead);
            }
        })
    });
    group.finish();
    // SAFETY: each handle freed once, after its last use.
    unsafe {
        bw_breaker_free(breaker);
        bw_breaker_config_free(bc);
        bw_bulkhead_free(bulkhead);
        bw_bulkhead_config_free(hc);
    }
}

criterion_group!(benches, policy_acquire_complete, standalone);
criterion_main!(benches);
