//! `bw_breaker`: a standalone circuit breaker, built from a `bw_breaker_config`.
//!
//! The builder (`bw_breaker_config`) is single-threaded and owned by the caller; the
//! setters store values without checking them, and `bw_breaker_new` validates them all,
//! naming the first invalid field. The breaker itself is shared and thread-safe.
//! Permits are `bw_breaker_permit` structs passed by value: no allocation per call.

use std::os::raw::c_void;
use std::time::Duration;

use super::boundary::{
    check_permit, clone_or_null, config_error, ensure_non_null, ffi_status, ffi_value, handle_id,
    release, value_or, write_out, ArcHandle, BoxHandle, PERMIT_LIVE, PERMIT_USED,
};
use super::clock::{bw_clock, clock_or_system};
use super::codes::{known_duration, parse_outcome, BW_PERMIT_PROBE};
use super::events::{bw_event, bw_event_callback, CallbackTarget};
use super::metrics::{bw_metrics, write_metrics};
use super::status::{bw_status, fail, write_rejection};
use crate::breaker::{BreakerConfig, CircuitBreaker, RawBreakerPermit, WindowConfig};
use crate::clock::{duration_to_nanos, AnyClock};
use crate::metrics::Metered;

/// A circuit-breaker configuration builder (opaque, single-threaded, owned by the
/// caller). Starts with the library defaults: a count window of 100, minimum 20 calls,
/// failure rate 50 %, no slow-call or consecutive-failure rule, open 30 s (no backoff,
/// no jitter, at most 300 s), 5 half-open probes waited for up to 60 s.
#[derive(Debug)]
pub struct bw_breaker_config {
    _private: [u8; 0],
}

impl BoxHandle for bw_breaker_config {
    type Rust = BreakerConfig;
}

/// A circuit breaker (opaque, shared, thread-safe).
#[derive(Debug)]
pub struct bw_breaker {
    _private: [u8; 0],
}

impl ArcHandle for bw_breaker {
    type Rust = Metered<CircuitBreaker<AnyClock>>;
}

/// A permit of a standalone breaker, passed by value: plain data, no allocation. Fill
/// it with `bw_breaker_try_acquire` and give it back once to `bw_breaker_complete` of
/// the same breaker. Completing it twice returns `BW_PERMIT_ALREADY_USED`; a copy of
/// the struct cannot be told from the original, so never complete a copy. Callers may
/// read `flags` (`BW_PERMIT_PROBE`); every field is the library's.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bw_breaker_permit {
    /// The breaker the permit belongs to.
    pub instance: u64,
    /// Breaker generation the permit was taken in.
    pub generation: u64,
    /// When the call started (ns, 0 if the breaker does not time calls).
    pub started_ns: u64,
    /// `BW_PERMIT_PROBE` when the permit is a half-open probe.
    pub flags: u32,
    /// Live/used marker, owned by the library.
    pub state: u32,
}

/// A breaker's state and counters, filled by `bw_breaker_get_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct bw_breaker_stats {
    /// Generation: increments on every transition.
    pub generation: u64,
    /// Outcomes in the window now (0 unless closed or disabled).
    pub calls: u64,
    /// Failures (and timeouts) in the window.
    pub failures: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Consecutive failures so far.
    pub consecutive_failures: u64,
    /// When an open breaker lets probes in (clock ns); 0 unless open or half-open.
    pub open_until_ns: u64,
    /// How long until then (ns); 0 unless open or half-open.
    pub retry_after_ns: u64,
    /// Transitions into closed.
    pub transitions_to_closed: u64,
    /// Transitions into open.
    pub transitions_to_open: u64,
    /// Transitions into half-open.
    pub transitions_to_half_open: u64,
    /// Transitions into forced-open.
    pub transitions_to_forced_open: u64,
    /// Transitions into disabled.
    pub transitions_to_disabled: u64,
    /// Outcomes of permits from an older generation (counted, otherwise ignored).
    pub stale_outcomes: u64,
    /// Clock time of the snapshot (ns).
    pub at_ns: u64,
    /// `BW_BREAKER_*`.
    pub state: i32,
    /// How many times in a row the breaker opened (backoff level).
    pub open_level: u32,
    /// Half-open probes out.
    pub half_open_in_flight: u32,
    /// Half-open probes completed.
    pub half_open_completed: u32,
    /// Half-open probes that failed.
    pub half_open_failures: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Runs `$body` with the builder behind a non-NULL `$cfg` as `$c`.
macro_rules! with_config {
    ($cfg:ident, |$c:ident| $body:expr) => {
        ffi_status!({
            ensure_non_null!($cfg);
            // SAFETY: non-NULL and, by contract, a live builder not used concurrently.
            let $c = unsafe { bw_breaker_config::borrow_mut($cfg) };
            $body;
            bw_status::BW_OK
        })
    };
}

/// Creates a breaker configuration builder with the defaults and writes it to `*out`
/// (free it with `bw_breaker_config_free`). `BW_NULL_POINTER` if `out` is NULL.
///
/// # Safety
/// `out` must be NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_new(out: *mut *mut bw_breaker_config) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let handle = bw_breaker_config::into_handle(BreakerConfig::default());
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, handle) };
        bw_status::BW_OK
    })
}

/// Frees a builder; NULL is a no-op. Must not be called twice with the same value.
/// Breakers built from it are unaffected.
///
/// # Safety
/// `config` must be NULL or a live builder owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_free(config: *mut bw_breaker_config) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned builder, by contract.
        unsafe { bw_breaker_config::free_handle(config) }
    })
}

/// Rates over the last `size` outcomes (`window.size`, 1..=500). Setters store the
/// value; `bw_breaker_new` validates it. Every setter returns `BW_OK` or
/// `BW_NULL_POINTER`. Builders are not thread-safe.
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_count_window(
    config: *mut bw_breaker_config,
    size: u32,
) -> bw_status {
    with_config!(config, |c| c.window = WindowConfig::Count { size })
}

/// Rates over the last `duration_ns` in `buckets` buckets (`window.duration`,
/// `window.buckets`, 1..=16).
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_time_window(
    config: *mut bw_breaker_config,
    duration_ns: u64,
    buckets: u32,
) -> bw_status {
    with_config!(config, |c| c.window = WindowConfig::Time {
        duration: Duration::from_nanos(duration_ns),
        buckets
    })
}

/// Outcomes needed in the window before the rates are evaluated (`minimum_calls`).
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_minimum_calls(
    config: *mut bw_breaker_config,
    calls: u32,
) -> bw_status {
    with_config!(config, |c| c.minimum_calls = calls)
}

/// Failure rate in percent that trips the breaker (`failure_rate_threshold`, (0, 100]).
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_failure_rate_threshold(
    config: *mut bw_breaker_config,
    percent: f64,
) -> bw_status {
    with_config!(config, |c| c.failure_rate_threshold = percent)
}

/// Calls slower than `duration_ns` count as slow (`slow_call_duration`); with
/// `rate_percent` > 0 a slow-call rate of that many percent trips the breaker
/// (`slow_call_rate_threshold`); 0 turns the slow-call rule off.
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_slow_calls(
    config: *mut bw_breaker_config,
    duration_ns: u64,
    rate_percent: f64,
) -> bw_status {
    with_config!(config, |c| {
        c.slow_call_duration = Duration::from_nanos(duration_ns);
        c.slow_call_rate_threshold = (rate_percent != 0.0).then_some(rate_percent);
    })
}

/// Trips after `failures` consecutive failures (`consecutive_failures`); 0 turns the
/// rule off.
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_consecutive_failures(
    config: *mut bw_breaker_config,
    failures: u32,
) -> bw_status {
    with_config!(config, |c| c.consecutive_failures =
        (failures != 0).then_some(failures))
}

/// How long the breaker stays open before probing (`open_duration`, > 0).
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_open_duration(
    config: *mut bw_breaker_config,
    duration_ns: u64,
) -> bw_status {
    with_config!(config, |c| c.open_duration =
        Duration::from_nanos(duration_ns))
}

/// Each consecutive opening lasts `multiplier` times longer, up to `max_ns`
/// (`open_backoff_multiplier` ≥ 1, `max_open_duration`).
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_open_backoff(
    config: *mut bw_breaker_config,
    multiplier: f64,
    max_ns: u64,
) -> bw_status {
    with_config!(config, |c| {
        c.open_backoff_multiplier = multiplier;
        c.max_open_duration = Duration::from_nanos(max_ns);
    })
}

/// Randomizes each open duration by up to this fraction (`open_jitter`, [0, 1]),
/// drawing from a generator seeded with `seed`.
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_open_jitter(
    config: *mut bw_breaker_config,
    fraction: f64,
    seed: u64,
) -> bw_status {
    with_config!(config, |c| {
        c.open_jitter = fraction;
        c.jitter_seed = seed;
    })
}

/// Probes let through while half-open (`half_open_permits`, 1..=1000) and how long the
/// breaker waits for their outcomes before reopening (`half_open_max_wait`, > 0).
///
/// # Safety
/// As for `bw_breaker_config_set_count_window`.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_config_set_half_open(
    config: *mut bw_breaker_config,
    permits: u32,
    max_wait_ns: u64,
) -> bw_status {
    with_config!(config, |c| {
        c.half_open_permits = permits;
        c.half_open_max_wait = Duration::from_nanos(max_wait_ns);
    })
}

/// Builds a breaker from `config` (copied: the builder can be freed or reused) reading
/// `clock` (a manual clock, or NULL for the system clock), and writes it to `*out`
/// (free it with `bw_breaker_free`).
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` with a message naming the
/// first invalid field (`window.size`, `failure_rate_threshold`, …). Nothing is
/// written on failure. Thread-safe with respect to other handles.
///
/// # Safety
/// `config` must be NULL or a live builder not mutated during the call; `clock` NULL
/// or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_new(
    config: *const bw_breaker_config,
    clock: *const bw_clock,
    out: *mut *mut bw_breaker,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config, out);
        // SAFETY: non-NULL and live by contract.
        let config = unsafe { bw_breaker_config::borrow(config) }.clone();
        // SAFETY: NULL or live by contract.
        let clock = unsafe { clock_or_system(clock) };
        match CircuitBreaker::with_clock(config, clock) {
            Ok(breaker) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out, bw_breaker::into_handle(Metered::new(breaker))) };
                bw_status::BW_OK
            }
            Err(e) => config_error("circuit breaker", &e),
        }
    })
}

/// Adds a reference to `breaker` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `breaker` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_clone(breaker: *const bw_breaker) -> *mut bw_breaker {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(breaker) }
}

/// Drops one reference to `breaker`; NULL is a no-op. Must not be called twice with
/// the same reference; permits must be completed before the last one is dropped.
///
/// # Safety
/// `breaker` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_free(breaker: *const bw_breaker) {
    // SAFETY: NULL or a live, owned reference, by contract.
    unsafe { release(breaker) }
}

/// Asks the breaker for a permit.
///
/// - `BW_OK`: `*out_permit` is filled; complete it exactly once.
/// - `BW_CIRCUIT_OPEN`: a rejection (an answer, not an error: no message, no
///   allocation); `*out_permit` untouched; `*out_retry_after_ns` (if not NULL) gets
///   the wait until probes are let in (0 when unknown, e.g. forced open).
/// - `BW_NULL_POINTER`: nothing written.
///
/// Thread-safe, lock-free, allocation-free.
///
/// # Safety
/// `breaker` must be NULL or live; the out-pointers NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_try_acquire(
    breaker: *const bw_breaker,
    out_permit: *mut bw_breaker_permit,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(breaker, out_permit);
        // SAFETY: non-NULL and live by contract.
        let b = unsafe { bw_breaker::borrow(breaker) };
        match b.try_acquire_raw() {
            Ok(raw) => {
                let (generation, started_ns, probe) = raw.to_parts();
                let permit = bw_breaker_permit {
                    instance: handle_id(breaker),
                    generation,
                    started_ns,
                    flags: if probe { BW_PERMIT_PROBE } else { 0 },
                    state: PERMIT_LIVE,
                };
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out_permit, permit) };
                bw_status::BW_OK
            }
            // SAFETY: NULL or writable by contract.
            Err(rejection) => unsafe { write_rejection(&rejection, out_retry_after_ns) },
        }
    })
}

/// Reports how the call of `permit` went (`outcome`: `BW_OUTCOME_*`) and marks the
/// permit used. `duration_ns` is the call's duration for the slow-call rule, or
/// `BW_DURATION_UNKNOWN` to measure it from the permit's start.
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_ARGUMENT` (unknown outcome, or a
/// struct never filled by `bw_breaker_try_acquire`; the permit stays live);
/// `BW_PERMIT_ALREADY_USED`; `BW_WRONG_HANDLE` (the permit is another breaker's; it
/// stays live). Thread-safe, allocation-free on success.
///
/// # Safety
/// `breaker` must be NULL or live; `permit` NULL or valid for reads and writes and not
/// accessed by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_complete(
    breaker: *const bw_breaker,
    permit: *mut bw_breaker_permit,
    outcome: i32,
    duration_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(breaker, permit);
        let outcome = match parse_outcome(outcome) {
            Ok(o) => o,
            Err(status) => return status,
        };
        // SAFETY: non-NULL, valid and unshared by contract.
        let p = unsafe { &mut *permit };
        if let Err(status) = check_permit(p.state, p.instance, handle_id(breaker), "breaker permit")
        {
            return status;
        }
        // SAFETY: non-NULL and live by contract.
        let b = unsafe { bw_breaker::borrow(breaker) };
        p.state = PERMIT_USED;
        let raw = RawBreakerPermit::from_parts(
            p.generation,
            p.started_ns,
            p.flags & BW_PERMIT_PROBE != 0,
        );
        let duration = known_duration(duration_ns).map(Duration::from_nanos);
        b.complete_raw(raw, outcome, duration);
        bw_status::BW_OK
    })
}

/// The breaker's state (`BW_BREAKER_*`), or -1 if `breaker` is NULL. An open breaker
/// whose open duration has passed reads open until the next acquire moves it to
/// half-open. Thread-safe.
///
/// # Safety
/// `breaker` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_state(breaker: *const bw_breaker) -> i32 {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(breaker, -1, |h| h.inner().state() as i32) }
}

/// Runs a manual transition on a breaker handle.
///
/// # Safety
/// `breaker` must be NULL or live.
unsafe fn manual(breaker: *const bw_breaker, act: fn(&CircuitBreaker<AnyClock>)) -> bw_status {
    ffi_status!({
        ensure_non_null!(breaker);
        // SAFETY: non-NULL and live by this function's contract.
        act(unsafe { bw_breaker::borrow(breaker) }.inner());
        bw_status::BW_OK
    })
}

/// Opens the breaker until `bw_breaker_reset`: every call is rejected.
/// `BW_OK` or `BW_NULL_POINTER`. Thread-safe.
///
/// # Safety
/// `breaker` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_force_open(breaker: *const bw_breaker) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { manual(breaker, CircuitBreaker::force_open) }
}

/// Lets every call through and never trips until `bw_breaker_reset` (outcomes are
/// still recorded). `BW_OK` or `BW_NULL_POINTER`. Thread-safe.
///
/// # Safety
/// `breaker` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_disable(breaker: *const bw_breaker) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { manual(breaker, CircuitBreaker::disable) }
}

/// Back to closed with an empty window and the base open duration.
/// `BW_OK` or `BW_NULL_POINTER`. Thread-safe.
///
/// # Safety
/// `breaker` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_reset(breaker: *const bw_breaker) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { manual(breaker, CircuitBreaker::reset) }
}

/// Fills `*out` with the breaker's state and counters. `BW_OK` or `BW_NULL_POINTER`
/// (nothing written). Thread-safe, allocation-free.
///
/// # Safety
/// `breaker` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_get_stats(
    breaker: *const bw_breaker,
    out: *mut bw_breaker_stats,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(breaker, out);
        // SAFETY: non-NULL and live by contract.
        let s = unsafe { bw_breaker::borrow(breaker) }.inner().snapshot();
        let stats = bw_breaker_stats {
            generation: s.generation,
            calls: s.calls,
            failures: s.failures,
            slow_calls: s.slow_calls,
            consecutive_failures: s.consecutive_failures,
            open_until_ns: s.open_until_nanos.unwrap_or(0),
            retry_after_ns: s.retry_after.map_or(0, duration_to_nanos),
            transitions_to_closed: s.transitions.to_closed,
            transitions_to_open: s.transitions.to_open,
            transitions_to_half_open: s.transitions.to_half_open,
            transitions_to_forced_open: s.transitions.to_forced_open,
            transitions_to_disabled: s.transitions.to_disabled,
            stale_outcomes: s.stale_outcomes,
            at_ns: s.at_nanos,
            state: s.state as i32,
            open_level: s.open_level,
            half_open_in_flight: s.half_open_in_flight,
            half_open_completed: s.half_open_completed,
            half_open_failures: s.half_open_failures,
            reserved: 0,
        };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, stats) };
        bw_status::BW_OK
    })
}

/// Sets the function called after every state transition of this breaker, with a
/// `bw_event` of kind `BW_EVENT_TRANSITION` (its policy name is empty) and `user_data`.
/// Settable once: a second call returns `BW_ALREADY_SET` and keeps the first listener.
/// `BW_NULL_POINTER` if `breaker` or `callback` is NULL.
///
/// The callback runs synchronously on the thread that caused the transition, holding
/// no library lock (it may call back into the library), exactly once per transition.
/// It must return normally: it must not `longjmp` out or let a C++ exception escape.
/// `user_data` must stay valid, and be usable from any thread, while the breaker lives.
///
/// # Safety
/// `breaker` must be NULL or live; `callback` NULL or a function safe to call from any
/// thread with the documented arguments.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_set_listener(
    breaker: *const bw_breaker,
    callback: bw_event_callback,
    user_data: *mut c_void,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(breaker);
        let Some(callback) = callback else {
            return fail(bw_status::BW_NULL_POINTER, "`callback` is NULL");
        };
        let target = CallbackTarget {
            callback,
            user_data,
        };
        // SAFETY: non-NULL and live by contract.
        let b = unsafe { bw_breaker::borrow(breaker) };
        let set = b.inner().set_transition_listener(move |t| {
            let event =
                bw_event::transition("", t.from as u8, t.to as u8, t.generation, t.at_nanos);
            target.deliver(&event);
        });
        if set {
            bw_status::BW_OK
        } else {
            fail(
                bw_status::BW_ALREADY_SET,
                "the breaker already has a listener",
            )
        }
    })
}

/// Fills `*out` with the breaker's exact counters: permits handed out, rejections,
/// completions by outcome, slow calls and the latency of the completions given a
/// duration (see `bw_metrics`).
///
/// Returns `BW_OK`, or `BW_NULL_POINTER` (nothing written). Thread-safe, also while
/// other threads use the breaker.
///
/// # Safety
/// `breaker` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_breaker_get_metrics(
    breaker: *const bw_breaker,
    out: *mut bw_metrics,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(breaker, out);
        // SAFETY: non-NULL here; live and writable by contract.
        unsafe { write_metrics(breaker, out) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values `bw_breaker_config`'s doc promises (they become the header comment).
    #[test]
    fn a_new_builder_holds_the_documented_defaults() {
        let mut handle = std::ptr::null_mut();
        // SAFETY: a valid out-pointer; the builder is freed once below.
        let status = unsafe { bw_breaker_config_new(&mut handle) };
        assert_eq!(status, bw_status::BW_OK);
        // SAFETY: live, and used by this thread only.
        let c = unsafe { bw_breaker_config::borrow(handle) }.clone();
        // SAFETY: live and owned; freed once.
        unsafe { bw_breaker_config_free(handle) };
        assert_eq!(c.window, WindowConfig::Count { size: 100 });
        assert_eq!(c.minimum_calls, 20);
        assert_eq!(c.failure_rate_threshold, 50.0);
        assert_eq!(
            (c.slow_call_rate_threshold, c.consecutive_failures),
            (None, None)
        );
        assert_eq!(c.open_duration, Duration::from_secs(30));
        assert_eq!((c.open_backoff_multiplier, c.open_jitter), (1.0, 0.0));
        assert_eq!(c.max_open_duration, Duration::from_secs(300));
        assert_eq!(c.half_open_permits, 5);
        assert_eq!(c.half_open_max_wait, Duration::from_secs(60));
    }
}
