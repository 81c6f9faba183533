//! The C ABI's hot paths allocate nothing: policy acquire/complete (plain and keyed:
//! new keys, rejections, evictions, shedding, releases), the standalone
//! breaker (and its stats), limiter and bulkhead, and the retry schedule, called
//! through their `extern "C"` functions (counted per thread).
#![cfg(not(loom))]

use breakwater::ffi::breaker::*;
use breakwater::ffi::bulkhead::*;
use breakwater::ffi::clock::*;
use breakwater::ffi::codes::*;
use breakwater::ffi::engine::*;
use breakwater::ffi::keyed::*;
use breakwater::ffi::limiter::*;
use breakwater::ffi::policy::*;
use breakwater::ffi::retry::*;
use breakwater::ffi::status::bw_status::{self, *};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// GlobalAlloc contract; counting touches only a thread-local cell and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator, whose contract is ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(Box::new(1u64)))),
        1
    );
}

/// A manual clock, an engine of `toml` (NUL-terminated) on it, and its policy `name`;
/// give them back to `free_all` after their last use.
fn engine_policy(
    toml: &[u8],
    name: &std::ffi::CStr,
) -> (*mut bw_clock, *mut bw_engine, *mut bw_policy) {
    assert_eq!(toml.last(), Some(&0));
    let (mut clock, mut engine, mut policy) = (null_mut(), null_mut(), null_mut());
    // SAFETY: valid out-pointers, a NUL-terminated policy file and name.
    unsafe {
        assert_eq!(bw_clock_new_manual(1, &mut clock), BW_OK);
        assert_eq!(
            bw_engine_from_toml(toml.as_ptr().cast(), clock, &mut engine),
            BW_OK
        );
        assert_eq!(bw_engine_policy(engine, name.as_ptr(), &mut policy), BW_OK);
    }
    (clock, engine, policy)
}

/// Frees what `engine_policy` made, each once.
fn free_all(clock: *mut bw_clock, engine: *mut bw_engine, policy: *mut bw_policy) {
    // SAFETY: live handles from `engine_policy`, each freed once, after its last use.
    unsafe {
        bw_policy_free(policy);
        bw_engine_free(engine);
        bw_clock_free(clock);
    }
}

const TOML: &[u8] = b"[policies.p.circuit_breaker]\nminimum_calls = 100\n\
[policies.p.bulkhead]\nmax_concurrent = 1\n\
[policies.p.rate_limiter]\nrate = 1000000\nperiod = \"1s\"\n\0";

#[test]
fn policy_acquire_and_complete_allocate_nothing() {
    let (clock, engine, policy) = engine_policy(TOML, c"p");
    let n = allocations_in(|| {
        for i in 0..2000u64 {
            let mut permit = MaybeUninit::<bw_permit>::uninit();
            let mut second = MaybeUninit::<bw_permit>::uninit();
            let mut after = 0u64;
            // SAFETY: live handles; `permit` is filled by acquire before complete reads it.
            unsafe {
                assert_eq!(
                    bw_policy_acquire(policy, BW_PRIORITY_DEFAULT, permit.as_mut_ptr(), &mut after),
                    BW_OK
                );
                // The bulkhead is full: the rejection path.
                assert_eq!(
                    bw_policy_acquire(policy, BW_PRIORITY_DEFAULT, second.as_mut_ptr(), &mut after),
                    BW_BULKHEAD_FULL
                );
                let outcome = if i % 10 == 0 {
                    BW_OUTCOME_FAILURE
                } else {
                    BW_OUTCOME_SUCCESS
                };
                assert_eq!(
                    bw_policy_complete(policy, permit.as_mut_ptr(), outcome, 1000),
                    BW_OK
                );
                assert_eq!(bw_clock_advance(clock, 1000), BW_OK);
            }
        }
    });
    // The policy's first call on this thread creates the thread's metrics shard: one
    // allocation in 2,000 iterations, and none on any later call.
    assert_eq!(n, 1);
    free_all(clock, engine, policy);
}

/// One permit an hour per key, one call in flight per key, a table for 8 keys.
const KEYED_TOML: &[u8] = b"[policies.k.per_key]\nrate = 1\nperiod = \"1h\"\n\
max_concurrent = 1\nmax_keys = 8\ntop_keys = 4\n\0";

#[test]
fn keyed_acquire_and_complete_allocate_nothing() {
    let (clock, engine, policy) = engine_policy(KEYED_TOML, c"k");
    let keys: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("client-{i}").into_bytes())
        .collect();
    let mut held: Vec<bw_keyed_permit> = Vec::with_capacity(keys.len());
    // SAFETY: a live policy, a key slice valid for its length, a writable permit.
    let acquire = |key: &[u8], out: &mut MaybeUninit<bw_keyed_permit>| unsafe {
        let mut after = 0u64;
        bw_policy_acquire_keyed(
            policy,
            key.as_ptr(),
            key.len(),
            BW_PRIORITY_DEFAULT,
            out.as_mut_ptr(),
            &mut after,
        )
    };
    // SAFETY: a live policy; every permit passed was filled by `acquire`.
    let complete = |permit: &mut bw_keyed_permit| unsafe {
        bw_policy_complete_keyed(policy, permit, BW_OUTCOME_SUCCESS, 1000)
    };
    let mut warm = MaybeUninit::uninit();
    let first = allocations_in(|| {
        assert_eq!(acquire(b"warm-up", &mut warm), BW_OK);
        // SAFETY: filled by the acquire above.
        assert_eq!(complete(unsafe { warm.assume_init_mut() }), BW_OK);
    });
    assert_eq!(
        first, 1,
        "the first call allocates only this thread's shard"
    );
    let n = allocations_in(|| {
        // New keys overflowing the table (evictions), each rejected once after its
        // permit (the heavy-hitter sketch records it).
        for key in &keys[..500] {
            let mut permit = MaybeUninit::uninit();
            assert_eq!(acquire(key, &mut permit), BW_OK);
            // SAFETY: filled by the acquire above.
            assert_eq!(complete(unsafe { permit.assume_init_mut() }), BW_OK);
            let mut refused = MaybeUninit::uninit();
            assert_eq!(acquire(key, &mut refused), BW_RATE_LIMITED);
        }
        // Keys holding their slots fill the table: load shed; then every slot back.
        for key in &keys[500..] {
            let mut permit = MaybeUninit::uninit();
            match acquire(key, &mut permit) {
                // SAFETY: filled by the acquire.
                BW_OK => held.push(unsafe { permit.assume_init() }),
                status => assert_eq!(status, BW_LOAD_SHED),
            }
        }
        for permit in &mut held {
            assert_eq!(complete(permit), BW_OK);
        }
    });
    assert_eq!(n, 0, "keyed calls through the C ABI allocate nothing");
    assert!(held.len() < 500, "some keys were shed: {}", held.len());
    free_all(clock, engine, policy);
}

#[test]
fn standalone_handles_allocate_nothing() {
    let mut clock = null_mut();
    let mut bc = null_mut();
    let mut breaker = null_mut();
    let mut lc = null_mut();
    let mut limiter = null_mut();
    let mut hc = null_mut();
    let mut bulkhead = null_mut();
    let mut rc = null_mut();
    // SAFETY: valid out-pointers; builders are used on this thread only; every handle
    // is freed once at the end.
    unsafe {
        assert_eq!(bw_clock_new_manual(1, &mut clock), BW_OK);
        assert_eq!(bw_breaker_config_new(&mut bc), BW_OK);
        assert_eq!(bw_breaker_new(bc, clock, &mut breaker), BW_OK);
        assert_eq!(bw_limiter_config_new(&mut lc), BW_OK);
        assert_eq!(bw_limiter_config_set_rate(lc, 10, 1_000_000_000), BW_OK);
        assert_eq!(bw_limiter_new(lc, clock, &mut limiter), BW_OK);
        assert_eq!(bw_bulkhead_config_new(&mut hc), BW_OK);
        assert_eq!(bw_bulkhead_config_set_max_concurrent(hc, 1), BW_OK);
        assert_eq!(bw_bulkhead_new(hc, null(), &mut bulkhead), BW_OK);
        assert_eq!(bw_retry_config_new(&mut rc), BW_OK);
    }
    let n = allocations_in(|| {
        for i in 0..2000u64 {
            // SAFETY: live handles; permits and reservations are filled before use.
            unsafe {
                let mut permit = MaybeUninit::<bw_breaker_permit>::uninit();
                assert_eq!(
                    bw_breaker_try_acquire(breaker, permit.as_mut_ptr(), null_mut()),
                    BW_OK
                );
                let outcome = if i % 10 == 0 {
                    BW_OUTCOME_FAILURE
                } else {
                    BW_OUTCOME_SUCCESS
                };
                assert_eq!(
                    bw_breaker_complete(breaker, permit.as_mut_ptr(), outcome, 1000),
                    BW_OK
                );
                assert_eq!(bw_breaker_state(breaker), BW_BREAKER_CLOSED);
                let mut stats = MaybeUninit::<bw_breaker_stats>::uninit();
                assert_eq!(bw_breaker_get_stats(breaker, stats.as_mut_ptr()), BW_OK);

                let mut after = 0u64;
                let status: bw_status = bw_limiter_try_acquire(limiter, 1, &mut after);
                assert!(status == BW_OK || status == BW_RATE_LIMITED);
                let mut r = MaybeUninit::<bw_reservation>::uninit();
                assert_eq!(
                    bw_limiter_reserve(limiter, 1, u64::MAX, r.as_mut_ptr(), &mut after),
                    BW_OK
                );
                let mut cancelled = false;
                assert_eq!(
                    bw_limiter_cancel(limiter, r.as_mut_ptr(), &mut cancelled),
                    BW_OK
                );
                assert!(cancelled);
                std::hint::black_box(bw_limiter_available(limiter));

                assert_eq!(bw_bulkhead_try_acquire(bulkhead), BW_OK);
                assert_eq!(bw_bulkhead_try_acquire(bulkhead), BW_BULKHEAD_FULL);
                assert_eq!(bw_bulkhead_release(bulkhead), BW_OK);

                let mut rng = i;
                let mut delay = 0;
                assert_eq!(bw_backoff_delay(rc, 3, 0, &mut rng, &mut delay), BW_OK);
                assert_eq!(bw_clock_advance(clock, 10_000_000), BW_OK);
            }
        }
    });
    // The first call on this thread of each metered handle (breaker, limiter,
    // bulkhead) creates the thread's metrics shard in it: three allocations in all, and
    // none on any later call.
    assert_eq!(n, 3);
    // SAFETY: each handle freed once, after its last use.
    unsafe {
        bw_breaker_free(breaker);
        bw_breaker_config_free(bc);
        bw_limiter_free(limiter);
        bw_limiter_config_free(lc);
        bw_bulkhead_free(bulkhead);
        bw_bulkhead_config_free(hc);
        bw_retry_config_free(rc);
        bw_clock_free(clock);
    }
}

#[test]
fn retry_state_next_delay_allocates_nothing() {
    let mut rc = null_mut();
    let mut state = null_mut();
    let mut budget = null_mut();
    // SAFETY: valid out-pointers; handles freed once at the end.
    unsafe {
        assert_eq!(bw_retry_config_new(&mut rc), BW_OK);
        assert_eq!(bw_retry_config_set_max_attempts(rc, u32::MAX), BW_OK);
        assert_eq!(bw_retry_state_new(rc, 1, 1, 0, &mut state), BW_OK);
        assert_eq!(
            bw_retry_budget_new(1000.0, 10, 10_000_000_000, null(), &mut budget),
            BW_OK
        );
    }
    let n = allocations_in(|| {
        for _ in 0..2000 {
            let mut delay = 0;
            let mut reason = 0;
            // SAFETY: live handles and valid out-pointers.
            unsafe {
                assert_eq!(bw_retry_budget_record_request(budget), BW_OK);
                assert_eq!(
                    bw_retry_state_next_delay(
                        state,
                        1,
                        BW_RETRY_AFTER_NONE,
                        budget,
                        &mut delay,
                        &mut reason
                    ),
                    BW_OK
                );
            }
        }
    });
    assert_eq!(n, 0);
    // SAFETY: each handle freed once, after its last use.
    unsafe {
        bw_retry_budget_free(budget);
        bw_retry_state_free(state);
        bw_retry_config_free(rc);
    }
}
