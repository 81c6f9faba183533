//! A policy's retry loop, driven by a foreign caller: `Policy::retry_begin` and
//! `Policy::retry_next` (the step `Policy::call` runs) translated to C, so the schedule,
//! budget, deadline, outcome classes, counters and events are the Rust call's.
//!
//! ```c
//! bw_retry_state *retry = NULL;
//! uint64_t deadline_ns = 0;                              // or bw_policy_now(policy) + left
//! bw_policy_retry_begin(policy, seed, deadline_ns, &retry); // one per logical call
//! for (;;) {
//!     /* acquire, call, complete ... */
//!     uint64_t delay_ns; int32_t reason;
//!     if (bw_policy_retry_next(policy, retry, BW_RETRY_ON_FAILURE, BW_RETRY_AFTER_NONE,
//!                              &delay_ns, &reason) != BW_OK) break;   // give up
//!     sleep_ns(delay_ns);
//! }
//! bw_retry_state_free(retry);
//! ```

use super::boundary::{ensure_non_null, ffi_status, value_or, write_out, ArcHandle, BoxHandle};
use super::policy::bw_policy;
use super::retry::{bw_retry_state, retry_after_hint, write_decision};
use super::status::{bw_status, fail};
use crate::policy::{Policy, RetryOn};

/// Retry class: the call failed.
pub const BW_RETRY_ON_FAILURE: u32 = 1;
/// Retry class: the call timed out.
pub const BW_RETRY_ON_TIMEOUT: u32 = 1 << 1;
/// Retry class: rejected by an open breaker (`BW_CIRCUIT_OPEN`).
pub const BW_RETRY_ON_CIRCUIT_OPEN: u32 = 1 << 2;
/// Retry class: rejected by the rate limiter (`BW_RATE_LIMITED`).
pub const BW_RETRY_ON_RATE_LIMITED: u32 = 1 << 3;
/// Retry class: rejected by the bulkhead (`BW_BULKHEAD_FULL`).
pub const BW_RETRY_ON_BULKHEAD_FULL: u32 = 1 << 4;
/// Retry class: shed by the adaptive limit or the throttle (`BW_LOAD_SHED`).
pub const BW_RETRY_ON_LOAD_SHED: u32 = 1 << 5;
/// Retry class: refused by the retry budget (`BW_RETRY_BUDGET_EXHAUSTED`).
pub const BW_RETRY_ON_RETRY_BUDGET_EXHAUSTED: u32 = 1 << 6;
/// Retry class: an injected rejection (`BW_INJECTED_REJECTION`).
pub const BW_RETRY_ON_INJECTED: u32 = 1 << 7;

// The C classes are the core's `RetryOn` bits: a change on either side fails the build.
const _: () = {
    use crate::RejectReason;
    assert!(BW_RETRY_ON_FAILURE == RetryOn::FAILURE.bits());
    assert!(BW_RETRY_ON_TIMEOUT == RetryOn::TIMEOUT.bits());
    assert!(BW_RETRY_ON_CIRCUIT_OPEN == RetryOn::rejection(RejectReason::CircuitOpen).bits());
    assert!(BW_RETRY_ON_RATE_LIMITED == RetryOn::rejection(RejectReason::RateLimited).bits());
    assert!(BW_RETRY_ON_BULKHEAD_FULL == RetryOn::rejection(RejectReason::BulkheadFull).bits());
    assert!(BW_RETRY_ON_LOAD_SHED == RetryOn::rejection(RejectReason::LoadShed).bits());
    assert!(
        BW_RETRY_ON_RETRY_BUDGET_EXHAUSTED
            == RetryOn::rejection(RejectReason::RetryBudgetExhausted).bits()
    );
    assert!(BW_RETRY_ON_INJECTED == RetryOn::rejection(RejectReason::Injected).bits());
    assert!(RetryOn::ALL.bits() == (BW_RETRY_ON_INJECTED << 1) - 1);
};

#[cold]
fn no_retry_section(policy: &Policy) -> bw_status {
    fail(
        bw_status::BW_NO_STAGE,
        format_args!("policy \"{}\" has no retry section", policy.name()),
    )
}

/// Writes the policy's retry classes (`BW_RETRY_ON_*` bits, from `retry_on` in the
/// policy file) to `*out_mask`. Returns `BW_OK`, `BW_NULL_POINTER`, or `BW_NO_STAGE`
/// when the policy has no retry section (nothing written). Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live; `out_mask` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_retry_on(
    policy: *const bw_policy,
    out_mask: *mut u32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_mask);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match &policy.config().retry {
            Some(section) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out_mask, section.retry_on.bits()) };
                bw_status::BW_OK
            }
            None => no_retry_section(policy),
        }
    })
}

/// The time on the policy's clock in nanoseconds (its manual clock, or the system's
/// `CLOCK_MONOTONIC`): add the time a caller has left to get the `deadline_ns` of
/// `bw_policy_retry_begin`. 0 if `policy` is NULL. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_now(policy: *const bw_policy) -> u64 {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(policy, 0, |p| p.now()) }
}

/// Starts the retry loop of one logical call with the policy's retry settings: a new
/// `bw_retry_state` (seeded with `seed`, started now on the policy's clock) written to
/// `*out`, and one request recorded in the policy's retry budget. `deadline_ns` is the
/// caller's overall deadline on the policy's clock (see `bw_policy_now`), 0 for none:
/// a retry whose delay would end at or after it is not started, and
/// `bw_policy_retry_next` gives up at once with `BW_GIVE_UP_DEADLINE_EXCEEDED`, as the
/// Rust `call` does. Free the state with `bw_retry_state_free`.
///
/// Returns `BW_OK`, `BW_NULL_POINTER`, or `BW_NO_STAGE` when the policy has no retry
/// section (nothing written, nothing recorded). Thread-safe for the policy; allocates
/// the state.
///
/// # Safety
/// `policy` must be NULL or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_retry_begin(
    policy: *const bw_policy,
    seed: u64,
    deadline_ns: u64,
    out: *mut *mut bw_retry_state,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        let Some(state) = policy.retry_begin(seed, (deadline_ns != 0).then_some(deadline_ns))
        else {
            return no_retry_section(policy);
        };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, bw_retry_state::into_handle(state)) };
        bw_status::BW_OK
    })
}

/// After an attempt of a call begun with `bw_policy_retry_begin` did not succeed:
/// `what` is the one `BW_RETRY_ON_*` class of what happened (a failure, a timeout, or
/// the rejection status), `retry_after_ns` the rejection's hint or
/// `BW_RETRY_AFTER_NONE`.
///
/// - `BW_OK`: retry after `*out_delay_ns`; counted in the policy's `retries`.
/// - `BW_RETRY_GIVE_UP`: stop; `*out_reason` (if not NULL) gets the `BW_GIVE_UP_*`
///   reason (`BW_GIVE_UP_NOT_RETRYABLE` when the policy does not retry `what`). A give-up
///   is final: asking again gives the same reason and counts nothing.
/// - `BW_INVALID_ARGUMENT`: `what` is not exactly one known class.
/// - `BW_NULL_POINTER`, `BW_NO_STAGE` (no retry section).
///
/// The decision is `Policy::retry_next`'s, the one `Policy::call` makes. Not
/// thread-safe for one state; allocation-free.
///
/// # Safety
/// `policy` must be NULL or live; `state` NULL or a live retry state not used by
/// another thread; the out-pointers NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_retry_next(
    policy: *const bw_policy,
    state: *mut bw_retry_state,
    what: u32,
    retry_after_ns: u64,
    out_delay_ns: *mut u64,
    out_reason: *mut i32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, state, out_delay_ns);
        let class = match RetryOn::from_bits(what) {
            Some(class) if what.count_ones() == 1 => class,
            _ => {
                return fail(
                    bw_status::BW_INVALID_ARGUMENT,
                    format_args!("`what` must be one BW_RETRY_ON_* class, got {what:#x}"),
                )
            }
        };
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        if policy.config().retry.is_none() {
            return no_retry_section(policy);
        }
        // SAFETY: non-NULL, live and unshared by contract.
        let state = unsafe { bw_retry_state::borrow_mut(state) };
        let decision = policy.retry_next(state, class, retry_after_hint(retry_after_ns));
        // SAFETY: `out_delay_ns` is non-NULL and both out-pointers are NULL or writable
        // by contract.
        unsafe { write_decision(decision, out_delay_ns, out_reason) }
    })
}
