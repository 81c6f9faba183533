//! The retry schedule for foreign callers: `bw_retry_config` (builder),
//! `bw_backoff_delay` (the pure delay formula), `bw_retry_state` (the per-call state
//! machine) and `bw_retry_budget` (shared, thread-safe).
//!
//! A foreign language runs its own retry loop: after each failed attempt it asks
//! `bw_retry_state_next_delay` whether and how long to wait, sleeps its own way, and
//! tries again.

use std::time::Duration;

use super::boundary::{
    box_value_or, clone_or_null, config_error, ensure_non_null, ffi_status, ffi_value, write_out,
    ArcHandle, BoxHandle,
};
use super::clock::{bw_clock, clock_or_system};
use super::status::{bw_status, fail};
use crate::clock::AnyClock;
use crate::retry::{
    BudgetConfig, GiveUpReason, Jitter, RetryBudget, RetryConfig, RetryDecision, RetryState,
};
use crate::rng::Rng;

/// Jitter: none, every delay is the exponential base.
pub const BW_JITTER_NONE: i32 = 0;
/// Jitter: uniform in `[0, base]` (the default).
pub const BW_JITTER_FULL: i32 = 1;
/// Jitter: uniform in `[base/2, base]`.
pub const BW_JITTER_EQUAL: i32 = 2;
/// Jitter: decorrelated (AWS), `min(max, uniform[initial, 3 × max(initial, previous)])`:
/// a previous delay below `initial` (0 before the first retry) reads as `initial`, so
/// the first retry is uniform in `[initial, 3 × initial]`.
pub const BW_JITTER_DECORRELATED: i32 = 3;

/// Give-up reason: `max_attempts` attempts were made.
pub const BW_GIVE_UP_ATTEMPTS_EXHAUSTED: i32 = 1;
/// Give-up reason: the next attempt would start after `max_elapsed`.
pub const BW_GIVE_UP_ELAPSED_EXCEEDED: i32 = 2;
/// Give-up reason: the next attempt would start at or after the deadline.
pub const BW_GIVE_UP_DEADLINE_EXCEEDED: i32 = 3;
/// Give-up reason: the retry budget refused the retry (bindings raise their
/// `RetryBudgetExhausted` rejection; for a policy, see `BW_EVENT_BUDGET_EXHAUSTED` for
/// how it is counted and emitted).
pub const BW_GIVE_UP_BUDGET_EXHAUSTED: i32 = 4;
/// Give-up reason: what ended the attempt is not retried (`bw_policy_retry_next` with
/// a class the policy's `retry_on` does not list).
pub const BW_GIVE_UP_NOT_RETRYABLE: i32 = 5;

// The C codes are the core's codes: a change on either side fails the build.
const _: () = {
    assert!(BW_JITTER_NONE == Jitter::None as i32);
    assert!(BW_JITTER_FULL == Jitter::Full as i32);
    assert!(BW_JITTER_EQUAL == Jitter::Equal as i32);
    assert!(BW_JITTER_DECORRELATED == Jitter::Decorrelated as i32);
    assert!(BW_GIVE_UP_ATTEMPTS_EXHAUSTED == GiveUpReason::AttemptsExhausted as i32);
    assert!(BW_GIVE_UP_ELAPSED_EXCEEDED == GiveUpReason::ElapsedExceeded as i32);
    assert!(BW_GIVE_UP_DEADLINE_EXCEEDED == GiveUpReason::DeadlineExceeded as i32);
    assert!(BW_GIVE_UP_BUDGET_EXHAUSTED == GiveUpReason::BudgetExhausted as i32);
    assert!(BW_GIVE_UP_NOT_RETRYABLE == GiveUpReason::NotRetryable as i32);
    assert!(GiveUpReason::ALL.len() == 5);
};

/// Pass as `retry_after_ns` to `bw_retry_state_next_delay` when the failure carried no
/// retry-after hint.
pub const BW_RETRY_AFTER_NONE: u64 = u64::MAX;

/// A retry configuration builder (opaque, single-threaded, owned by the caller).
/// Defaults: 3 attempts, backoff 100 ms × 2 up to 10 s with full jitter, no
/// `max_elapsed`.
#[derive(Debug)]
pub struct bw_retry_config {
    _private: [u8; 0],
}

impl BoxHandle for bw_retry_config {
    type Rust = RetryConfig;
}

/// The retry state of one call (opaque, single-threaded, owned by the caller): plain
/// data, create one per call.
#[derive(Debug)]
pub struct bw_retry_state {
    _private: [u8; 0],
}

impl BoxHandle for bw_retry_state {
    type Rust = RetryState;
}

/// A retry budget (opaque, shared, thread-safe): retries limited to a ratio of the
/// traffic plus a floor per second, over a sliding window.
#[derive(Debug)]
pub struct bw_retry_budget {
    _private: [u8; 0],
}

impl ArcHandle for bw_retry_budget {
    type Rust = RetryBudget<AnyClock>;
}

/// A retry budget's counters, filled by `bw_retry_budget_get_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct bw_retry_budget_stats {
    /// First attempts recorded in the window.
    pub requests: u64,
    /// Retries granted in the window.
    pub retries: u64,
    /// Retries that would be granted now, one after the other.
    pub available: u64,
}

/// Creates a retry configuration builder with the defaults and writes it to `*out`
/// (free it with `bw_retry_config_free`). `BW_NULL_POINTER` if `out` is NULL.
///
/// # Safety
/// `out` must be NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_config_new(out: *mut *mut bw_retry_config) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let handle = bw_retry_config::into_handle(RetryConfig::default());
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, handle) };
        bw_status::BW_OK
    })
}

/// Frees a builder; NULL is a no-op. Must not be called twice with the same value.
///
/// # Safety
/// `config` must be NULL or a live builder owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_config_free(config: *mut bw_retry_config) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned builder, by contract.
        unsafe { bw_retry_config::free_handle(config) }
    })
}

/// Attempts in all, counting the first (`max_attempts`, at least 1). Stored as given;
/// validated by `bw_retry_state_new` and `bw_backoff_delay`. `BW_OK` or
/// `BW_NULL_POINTER`. Not thread-safe (builder).
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_config_set_max_attempts(
    config: *mut bw_retry_config,
    max_attempts: u32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        unsafe { bw_retry_config::borrow_mut(config) }.max_attempts = max_attempts;
        bw_status::BW_OK
    })
}

/// The delay before retry n is `min(max_ns, initial_ns × multiplier^(n−1))`, then
/// jittered (`backoff.initial` > 0, `backoff.multiplier` ≥ 1, `backoff.max` ≥ initial).
/// `BW_OK` or `BW_NULL_POINTER`. Not thread-safe (builder).
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_config_set_backoff(
    config: *mut bw_retry_config,
    initial_ns: u64,
    multiplier: f64,
    max_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        let backoff = &mut unsafe { bw_retry_config::borrow_mut(config) }.backoff;
        backoff.initial = Duration::from_nanos(initial_ns);
        backoff.multiplier = multiplier;
        backoff.max = Duration::from_nanos(max_ns);
        bw_status::BW_OK
    })
}

/// The jitter (`BW_JITTER_*`). Returns `BW_OK`, `BW_NULL_POINTER`, or
/// `BW_INVALID_ARGUMENT` for an unknown code (the builder is unchanged). Not
/// thread-safe (builder).
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_config_set_jitter(
    config: *mut bw_retry_config,
    jitter: i32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        let Some(jitter) = Jitter::from_code(i64::from(jitter)) else {
            return fail(
                bw_status::BW_INVALID_ARGUMENT,
                format_args!(
                    "unknown jitter {jitter} (expected 0 none, 1 full, 2 equal, 3 decorrelated)"
                ),
            );
        };
        // SAFETY: non-NULL, live and unshared by contract.
        unsafe { bw_retry_config::borrow_mut(config) }
            .backoff
            .jitter = jitter;
        bw_status::BW_OK
    })
}

/// No retry starts later than `max_elapsed_ns` after the call's start
/// (`max_elapsed`); 0 means no bound (the default). `BW_OK` or `BW_NULL_POINTER`.
/// Not thread-safe (builder).
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_config_set_max_elapsed(
    config: *mut bw_retry_config,
    max_elapsed_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        unsafe { bw_retry_config::borrow_mut(config) }.max_elapsed =
            (max_elapsed_ns != 0).then(|| Duration::from_nanos(max_elapsed_ns));
        bw_status::BW_OK
    })
}

/// The delay before retry number `retry` (1 = first retry; 0 is read as 1) under the
/// configuration's backoff, given the previous delay `previous_ns` (used by
/// decorrelated jitter; 0 before the first retry) and a generator state `*rng_state`
/// (any value; seed it once per call). On `BW_OK`, writes the delay to `*out_delay_ns`
/// and advances `*rng_state`. Pure: the same inputs give the same outputs; the delay
/// never exceeds the backoff's max.
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` (naming `backoff.initial`,
/// `backoff.multiplier` or `backoff.max`). Nothing is written on failure. Thread-safe
/// as long as the builder is not mutated concurrently; allocation-free.
///
/// # Safety
/// `config` must be NULL or a live builder; `rng_state` NULL or valid for reads and
/// writes; `out_delay_ns` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_backoff_delay(
    config: *const bw_retry_config,
    retry: u32,
    previous_ns: u64,
    rng_state: *mut u64,
    out_delay_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config, rng_state, out_delay_ns);
        // SAFETY: non-NULL and live by contract.
        let backoff = unsafe { bw_retry_config::borrow(config) }.backoff;
        if let Err(e) = backoff.validate() {
            return config_error("retry", &e);
        }
        // SAFETY: non-NULL and readable by contract.
        let mut rng = Rng::new(unsafe { rng_state.read() });
        let delay = backoff.delay_nanos(retry, previous_ns, &mut rng);
        // SAFETY: both non-NULL and writable by contract.
        unsafe {
            write_out(rng_state, rng.state());
            write_out(out_delay_ns, delay);
        }
        bw_status::BW_OK
    })
}

/// Creates the retry state of one call whose first attempt started at `start_ns`
/// (clock nanoseconds, the same clock as the `now_ns` passed later), with an absolute
/// deadline `deadline_ns` (0 = none), drawing jitter from a generator seeded with
/// `seed`. Writes it to `*out` (free it with `bw_retry_state_free`).
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` naming the field
/// (`max_attempts`, `max_elapsed`, `backoff.*`). Nothing is written on failure.
///
/// # Safety
/// `config` must be NULL or a live builder not mutated during the call; `out` NULL or
/// valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_state_new(
    config: *const bw_retry_config,
    seed: u64,
    start_ns: u64,
    deadline_ns: u64,
    out: *mut *mut bw_retry_state,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config, out);
        // SAFETY: non-NULL and live by contract.
        let config = unsafe { bw_retry_config::borrow(config) };
        if let Err(e) = config.validate() {
            return config_error("retry", &e);
        }
        let state = RetryState::new(
            config,
            seed,
            start_ns,
            (deadline_ns != 0).then_some(deadline_ns),
        );
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, bw_retry_state::into_handle(state)) };
        bw_status::BW_OK
    })
}

/// Frees a retry state; NULL is a no-op. Must not be called twice with the same value.
///
/// # Safety
/// `state` must be NULL or a live retry state owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_state_free(state: *mut bw_retry_state) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned state, by contract.
        unsafe { bw_retry_state::free_handle(state) }
    })
}

/// After a failed attempt at clock time `now_ns`: whether and how long to wait before
/// the next one. `retry_after_ns` is the server's hint (a minimum delay), or
/// `BW_RETRY_AFTER_NONE`. `budget` (may be NULL) is withdrawn from only when every
/// other rule says retry.
///
/// - `BW_OK`: retry after `*out_delay_ns` nanoseconds (the attempt count goes up).
/// - `BW_RETRY_GIVE_UP`: stop; `*out_reason` (if not NULL) gets `BW_GIVE_UP_*`. Once
///   given up, every later call gives up with the same reason.
/// - `BW_NULL_POINTER` (`state` or `out_delay_ns`).
///
/// Outputs are written only for the status that names them. Not thread-safe for one
/// state (the budget is); allocation-free.
///
/// # Safety
/// `state` must be NULL or a live retry state not used by another thread; `budget`
/// NULL or live; the out-pointers NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_state_next_delay(
    state: *mut bw_retry_state,
    now_ns: u64,
    retry_after_ns: u64,
    budget: *const bw_retry_budget,
    out_delay_ns: *mut u64,
    out_reason: *mut i32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(state, out_delay_ns);
        // SAFETY: non-NULL, live and unshared by contract.
        let state = unsafe { bw_retry_state::borrow_mut(state) };
        let budget = if budget.is_null() {
            None
        } else {
            // SAFETY: non-NULL and live by contract.
            Some(unsafe { bw_retry_budget::borrow(budget) })
        };
        let decision = state.next_delay(now_ns, retry_after_hint(retry_after_ns), budget);
        // SAFETY: `out_delay_ns` is non-NULL and both out-pointers are NULL or writable
        // by contract.
        unsafe { write_decision(decision, out_delay_ns, out_reason) }
    })
}

/// Attempts started so far, counting the first (1 after `bw_retry_state_new`, one
/// more per `BW_OK` from `bw_retry_state_next_delay`); 0 if `state` is NULL.
///
/// # Safety
/// `state` must be NULL or a live retry state not mutated during the call.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_state_attempts(state: *const bw_retry_state) -> u32 {
    // SAFETY: NULL or live and not mutated during the call, by contract.
    unsafe { box_value_or(state, 0, |s| s.attempts()) }
}

/// Creates a retry budget allowing `ratio` retries per recorded request
/// (`budget.ratio`, 0..=1000) plus `min_per_second` retries per second
/// (`budget.min_per_second`), counted over a sliding window of `window_ns`
/// (`budget.window`, 1 s..=60 s), on `clock` (NULL: the system clock). Writes it to
/// `*out` (free it with `bw_retry_budget_free`).
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` naming the field.
///
/// # Safety
/// `clock` must be NULL or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_budget_new(
    ratio: f64,
    min_per_second: u32,
    window_ns: u64,
    clock: *const bw_clock,
    out: *mut *mut bw_retry_budget,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let config = BudgetConfig {
            ratio,
            min_per_second,
            window: Duration::from_nanos(window_ns),
        };
        // SAFETY: NULL or live by contract.
        match RetryBudget::with_clock(config, unsafe { clock_or_system(clock) }) {
            Ok(budget) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out, bw_retry_budget::into_handle(budget)) };
                bw_status::BW_OK
            }
            Err(e) => config_error("retry budget", &e),
        }
    })
}

/// Adds a reference to `budget` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `budget` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_budget_clone(
    budget: *const bw_retry_budget,
) -> *mut bw_retry_budget {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(budget) }
}

/// Drops one reference to `budget`; NULL is a no-op. Must not be called twice with the
/// same reference.
///
/// # Safety
/// `budget` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_budget_free(budget: *const bw_retry_budget) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned reference, by contract.
        unsafe { bw_retry_budget::free_handle(budget) }
    })
}

/// Records one request (a first attempt), adding `ratio` retries to the allowance.
/// `BW_OK` or `BW_NULL_POINTER`. Thread-safe, lock-free.
///
/// # Safety
/// `budget` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_budget_record_request(
    budget: *const bw_retry_budget,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(budget);
        // SAFETY: non-NULL and live by contract.
        unsafe { bw_retry_budget::borrow(budget) }.record_request();
        bw_status::BW_OK
    })
}

/// Asks for one retry: `BW_OK` if granted (and counted), `BW_RETRY_BUDGET_EXHAUSTED`
/// (a rejection, no message) if the budget is spent, `BW_NULL_POINTER`. Thread-safe,
/// lock-free.
///
/// # Safety
/// `budget` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_budget_try_withdraw(budget: *const bw_retry_budget) -> bw_status {
    ffi_status!({
        ensure_non_null!(budget);
        // SAFETY: non-NULL and live by contract.
        if unsafe { bw_retry_budget::borrow(budget) }.try_withdraw() {
            bw_status::BW_OK
        } else {
            bw_status::BW_RETRY_BUDGET_EXHAUSTED
        }
    })
}

/// Fills `*out` with the budget's counters. `BW_OK` or `BW_NULL_POINTER` (nothing
/// written). Thread-safe.
///
/// # Safety
/// `budget` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_retry_budget_get_stats(
    budget: *const bw_retry_budget,
    out: *mut bw_retry_budget_stats,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(budget, out);
        // SAFETY: non-NULL and live by contract.
        let s = unsafe { bw_retry_budget::borrow(budget) }.snapshot();
        let stats = bw_retry_budget_stats {
            requests: s.requests,
            retries: s.retries,
            available: s.available,
        };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, stats) };
        bw_status::BW_OK
    })
}

/// The `retry_after_ns` argument of the retry calls as the hint it stands for.
pub(crate) fn retry_after_hint(retry_after_ns: u64) -> Option<Duration> {
    (retry_after_ns != BW_RETRY_AFTER_NONE).then(|| Duration::from_nanos(retry_after_ns))
}

/// Writes a retry decision to the out-pointers of the retry calls and returns its status:
/// `BW_OK` with the delay, or `BW_RETRY_GIVE_UP` with the reason (when `out_reason` is
/// not NULL).
///
/// # Safety
/// `out_delay_ns` must be valid for a write; `out_reason` NULL or valid for a write.
pub(crate) unsafe fn write_decision(
    decision: RetryDecision,
    out_delay_ns: *mut u64,
    out_reason: *mut i32,
) -> bw_status {
    match decision {
        RetryDecision::RetryAfter(delay) => {
            // SAFETY: valid for a write by this function's contract.
            unsafe { write_out(out_delay_ns, crate::clock::duration_to_nanos(delay)) };
            bw_status::BW_OK
        }
        RetryDecision::GiveUp(reason) => {
            if !out_reason.is_null() {
                // SAFETY: non-NULL, so valid for a write by this function's contract.
                unsafe { write_out(out_reason, i32::from(reason.code())) };
            }
            bw_status::BW_RETRY_GIVE_UP
        }
    }
}
