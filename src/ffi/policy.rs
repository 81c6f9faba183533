//! `bw_policy`: acquire and complete through a named pipeline, with permits passed by
//! value (no allocation per call).

use std::sync::Arc;
use std::time::Duration;

use super::boundary::{
    ensure_non_null, ffi_status, ffi_value, write_out, ArcHandle, PERMIT_LIVE, PERMIT_USED,
};
use super::status::{bw_status, fail};
use crate::adaptive::{Priority, RawAdaptivePermit};
use crate::breaker::RawBreakerPermit;
use crate::chaos::ChaosDecision;
use crate::policy::{Policy, RawPolicyPermit};
use crate::Outcome;

/// A policy (opaque, shared, thread-safe): one named pipeline of an engine.
pub struct bw_policy {
    _private: [u8; 0],
}

impl ArcHandle for bw_policy {
    type Rust = Policy;
}

/// The permit holds a circuit-breaker permit.
pub const BW_PERMIT_BREAKER: u32 = 1;
/// The breaker permit is a half-open probe.
pub const BW_PERMIT_PROBE: u32 = 2;
/// The permit holds an adaptive-limit permit.
pub const BW_PERMIT_ADAPTIVE: u32 = 4;
/// The permit holds a bulkhead slot.
pub const BW_PERMIT_BULKHEAD: u32 = 8;
/// Fault injection decided that this call fails: skip the real call and complete it
/// with `BW_OUTCOME_FAILURE`.
pub const BW_PERMIT_INJECTED_FAILURE: u32 = 16;

/// The call succeeded.
pub const BW_OUTCOME_SUCCESS: i32 = 0;
/// The call failed.
pub const BW_OUTCOME_FAILURE: i32 = 1;
/// The call timed out (counts as a failure).
pub const BW_OUTCOME_TIMEOUT: i32 = 2;
/// The call says nothing about the dependency (cancelled); frees the permit only.
pub const BW_OUTCOME_IGNORED: i32 = 3;

/// Critical traffic: shed only at the adaptive limit's hard limit.
pub const BW_PRIORITY_CRITICAL: i32 = 0;
/// Default traffic.
pub const BW_PRIORITY_DEFAULT: i32 = 1;
/// Sheddable traffic: shed first under pressure.
pub const BW_PRIORITY_SHEDDABLE: i32 = 2;

/// Pass as `duration_ns` to let the policy use its own measurement.
pub const BW_DURATION_UNKNOWN: u64 = u64::MAX;

/// Reads an outcome code from C (`BW_OUTCOME_*`); anything else is
/// `BW_INVALID_ARGUMENT` with a message.
pub(crate) fn parse_outcome(code: i32) -> Result<Outcome, bw_status> {
    Outcome::from_code(i64::from(code)).ok_or_else(|| {
        fail(
            bw_status::BW_INVALID_ARGUMENT,
            format_args!(
                "unknown outcome {code} (expected 0 success, 1 failure, 2 timeout, 3 ignored)"
            ),
        )
    })
}

/// A permit of a policy, passed by value: plain data, no allocation. Fill it with
/// `bw_policy_acquire`, give it back once to `bw_policy_complete` (or
/// `bw_policy_release`) of the same policy. The library marks a completed permit, so
/// completing the same struct twice returns `BW_PERMIT_ALREADY_USED`; a copy of the
/// struct cannot be told from the original, so never complete a copy.
///
/// Callers read `flags` (`BW_PERMIT_INJECTED_FAILURE`) and `injected_latency_ns`;
/// every other field is the library's and must not be changed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bw_permit {
    /// The policy object the permit belongs to.
    pub instance: u64,
    /// Circuit-breaker generation the permit was taken in.
    pub breaker_generation: u64,
    /// Breaker permit start time (ns, 0 if not taken).
    pub breaker_started_ns: u64,
    /// Adaptive-limit permit start time (ns).
    pub adaptive_started_ns: u64,
    /// When the policy started timing the call (ns, 0 if it does not time it).
    pub started_ns: u64,
    /// Latency to inject before the call, in nanoseconds (0 for none).
    pub injected_latency_ns: u64,
    /// `BW_PERMIT_*` bits.
    pub flags: u32,
    /// Live/used marker, owned by the library.
    pub state: u32,
    /// Adaptive-limit in-flight count at admission.
    pub adaptive_in_flight: u32,
    /// Adaptive-limit priority class of the permit.
    pub adaptive_priority: u32,
}

impl bw_permit {
    fn from_raw(raw: RawPolicyPermit) -> bw_permit {
        let mut flags = 0;
        let (generation, breaker_started, probe) = match &raw.breaker {
            Some(p) => {
                flags |= BW_PERMIT_BREAKER;
                p.to_parts()
            }
            None => (0, 0, false),
        };
        if probe {
            flags |= BW_PERMIT_PROBE;
        }
        let (adaptive_started, adaptive_in_flight, adaptive_priority) = match &raw.adaptive {
            Some(p) => {
                flags |= BW_PERMIT_ADAPTIVE;
                (p.start_ns, p.in_flight, p.priority as u32)
            }
            None => (0, 0, 0),
        };
        if raw.bulkhead {
            flags |= BW_PERMIT_BULKHEAD;
        }
        if raw.chaos.fail {
            flags |= BW_PERMIT_INJECTED_FAILURE;
        }
        bw_permit {
            instance: raw.instance,
            breaker_generation: generation,
            breaker_started_ns: breaker_started,
            adaptive_started_ns: adaptive_started,
            started_ns: raw.started_at,
            injected_latency_ns: if raw.chaos.latency.is_zero() {
                0
            } else {
                crate::clock::duration_to_nanos(raw.chaos.latency)
            },
            flags,
            state: PERMIT_LIVE,
            adaptive_in_flight,
            adaptive_priority,
        }
    }

    fn to_raw(self) -> RawPolicyPermit {
        RawPolicyPermit {
            instance: self.instance,
            breaker: (self.flags & BW_PERMIT_BREAKER != 0).then(|| {
                RawBreakerPermit::from_parts(
                    self.breaker_generation,
                    self.breaker_started_ns,
                    self.flags & BW_PERMIT_PROBE != 0,
                )
            }),
            adaptive: (self.flags & BW_PERMIT_ADAPTIVE != 0).then(|| RawAdaptivePermit {
                start_ns: self.adaptive_started_ns,
                in_flight: self.adaptive_in_flight,
                priority: Priority::from_code(self.adaptive_priority as i64).unwrap_or_default(),
            }),
            bulkhead: self.flags & BW_PERMIT_BULKHEAD != 0,
            started_at: self.started_ns,
            // Completion reads nothing of the chaos decision (the caller already acted on
            // it), so the latency is not converted back.
            chaos: ChaosDecision {
                reject: false,
                fail: self.flags & BW_PERMIT_INJECTED_FAILURE != 0,
                latency: Duration::ZERO,
            },
        }
    }
}

pub(crate) fn policy_handle(policy: Arc<Policy>) -> *mut bw_policy {
    Arc::into_raw(policy) as *mut bw_policy
}

/// Asks every stage of `policy` for a permit, at `priority` (`BW_PRIORITY_*`).
///
/// - `BW_OK`: `*out_permit` is filled; complete it exactly once.
/// - a rejection status (`BW_CIRCUIT_OPEN`, `BW_RATE_LIMITED`, `BW_BULKHEAD_FULL`,
///   `BW_LOAD_SHED`, `BW_INJECTED_REJECTION`): `*out_permit` is untouched and, when
///   `out_retry_after_ns` is not NULL, it receives the wait after which a new attempt
///   may pass (0 when unknown). A rejection is an answer, not an error: no message is
///   recorded and nothing is allocated.
/// - `BW_NULL_POINTER` (policy or out_permit NULL), `BW_INVALID_ARGUMENT` (unknown
///   priority): nothing written.
///
/// Thread-safe; may block only if the policy's bulkhead has a `max_wait`.
///
/// # Safety
/// `policy` must be NULL or live; `out_permit` and `out_retry_after_ns` NULL or valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_acquire(
    policy: *const bw_policy,
    priority: i32,
    out_permit: *mut bw_permit,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_permit);
        let Some(priority) = Priority::from_code(priority as i64) else {
            return fail(
                bw_status::BW_INVALID_ARGUMENT,
                format_args!(
                    "unknown priority {priority} (expected 0 critical, 1 default, 2 sheddable)"
                ),
            );
        };
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match policy.acquire_raw(priority) {
            Ok(raw) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out_permit, bw_permit::from_raw(raw)) };
                bw_status::BW_OK
            }
            Err(rejection) => {
                if !out_retry_after_ns.is_null() {
                    let after = rejection
                        .retry_after
                        .map_or(0, crate::clock::duration_to_nanos);
                    // SAFETY: non-NULL and writable by contract.
                    unsafe { write_out(out_retry_after_ns, after) };
                }
                bw_status::of_rejection(rejection.reason)
            }
        }
    })
}

/// Reports how the call of `permit` went (`outcome`: `BW_OUTCOME_*`) and frees what
/// the permit holds. `duration_ns` is the call's duration, or `BW_DURATION_UNKNOWN` to
/// let the policy use its own measurement (it times calls when it has a timeout).
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_ARGUMENT` for an unknown outcome
/// (the permit stays live: complete it again with a valid one);
/// `BW_PERMIT_ALREADY_USED` if this permit was completed before; `BW_WRONG_HANDLE` if
/// it came from another policy (the permit stays live). On success the permit is
/// marked used. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live; `permit` NULL or a permit filled by
/// `bw_policy_acquire`, not accessed by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_complete(
    policy: *const bw_policy,
    permit: *mut bw_permit,
    outcome: i32,
    duration_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, permit);
        let outcome = match parse_outcome(outcome) {
            Ok(o) => o,
            Err(status) => return status,
        };
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        // SAFETY: non-NULL, valid and not shared during the call, by contract.
        let permit = unsafe { &mut *permit };
        match permit.state {
            PERMIT_LIVE => {}
            PERMIT_USED => {
                return fail(
                    bw_status::BW_PERMIT_ALREADY_USED,
                    "the permit was already completed",
                )
            }
            _ => {
                return fail(
                    bw_status::BW_INVALID_ARGUMENT,
                    "the permit was not filled by bw_policy_acquire",
                )
            }
        }
        if permit.instance != policy.instance() {
            return fail(
                bw_status::BW_WRONG_HANDLE,
                "the permit belongs to another policy",
            );
        }
        let duration =
            (duration_ns != BW_DURATION_UNKNOWN).then(|| Duration::from_nanos(duration_ns));
        permit.state = PERMIT_USED;
        policy.complete_raw(permit.to_raw(), outcome, duration);
        bw_status::BW_OK
    })
}

/// Adds a reference to `policy` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_clone(policy: *const bw_policy) -> *mut bw_policy {
    ffi_value!(std::ptr::null_mut(), {
        if policy.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: non-NULL and live by contract.
        unsafe { bw_policy::clone_handle(policy) }
    })
}

/// Drops one reference to `policy`; NULL is a no-op. Must not be called twice with the
/// same reference. Permits of the policy must be completed before its last reference
/// is dropped.
///
/// # Safety
/// `policy` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_free(policy: *const bw_policy) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned reference, by contract.
        unsafe { bw_policy::free_handle(policy) }
    })
}

/// Whether a reload replaced this policy's configuration (look it up again with
/// `bw_engine_policy` to follow the new one). False for NULL. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_is_superseded(policy: *const bw_policy) -> bool {
    ffi_value!(false, {
        if policy.is_null() {
            return false;
        }
        // SAFETY: non-NULL and live by contract.
        unsafe { bw_policy::borrow(policy) }.is_superseded()
    })
}

/// Breaker state code: closed.
pub const BW_BREAKER_CLOSED: i32 = 0;
/// Breaker state code: open.
pub const BW_BREAKER_OPEN: i32 = 1;
/// Breaker state code: half-open.
pub const BW_BREAKER_HALF_OPEN: i32 = 2;
/// Breaker state code: forced open.
pub const BW_BREAKER_FORCED_OPEN: i32 = 3;
/// Breaker state code: disabled.
pub const BW_BREAKER_DISABLED: i32 = 4;

/// A policy's counters and the state of its stages, filled by `bw_policy_get_stats`.
/// Counters are exact and monotonic; `success + failure + timeout + ignored ≤
/// permitted` always holds. Fields of stages the policy does not have read as noted.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct bw_policy_stats {
    /// Permits handed out.
    pub permitted: u64,
    /// Completed calls by outcome.
    pub success: u64,
    /// Failed calls.
    pub failure: u64,
    /// Timed-out calls.
    pub timeout: u64,
    /// Ignored calls (cancelled, released).
    pub ignored: u64,
    /// Calls slower than the breaker's slow-call duration.
    pub slow: u64,
    /// Retry attempts started by `call` loops.
    pub retries: u64,
    /// Rejections by an open breaker.
    pub rejected_circuit_open: u64,
    /// Rejections by the rate limiter.
    pub rejected_rate_limited: u64,
    /// Rejections by the bulkhead.
    pub rejected_bulkhead_full: u64,
    /// Rejections by the adaptive limit or the throttle.
    pub rejected_load_shed: u64,
    /// Retries the retry budget refused (see `BW_EVENT_BUDGET_EXHAUSTED`).
    pub rejected_retry_budget_exhausted: u64,
    /// Rejections injected by chaos.
    pub rejected_injected: u64,
    /// Breaker transitions into closed.
    pub transitions_to_closed: u64,
    /// Breaker transitions into open.
    pub transitions_to_open: u64,
    /// Breaker transitions into half-open.
    pub transitions_to_half_open: u64,
    /// Breaker transitions into forced-open.
    pub transitions_to_forced_open: u64,
    /// Breaker transitions into disabled.
    pub transitions_to_disabled: u64,
    /// Calls with a known duration (in the latency histogram).
    pub latency_count: u64,
    /// Sum of those durations, ns.
    pub latency_sum_ns: u64,
    /// Median latency, ns (0 when no call was timed).
    pub latency_p50_ns: u64,
    /// 90th percentile latency, ns.
    pub latency_p90_ns: u64,
    /// 99th percentile latency, ns.
    pub latency_p99_ns: u64,
    /// 99.9th percentile latency, ns.
    pub latency_p999_ns: u64,
    /// Breaker generation (0 without a breaker).
    pub breaker_generation: u64,
    /// Tokens the rate limiter would grant now; -1 without a limiter.
    pub limiter_available: i64,
    /// `BW_BREAKER_*`, or -1 without a breaker.
    pub breaker_state: i32,
    /// Bulkhead permits out (0 without a bulkhead).
    pub bulkhead_in_flight: u32,
    /// Bulkhead limit; 0 without a bulkhead.
    pub bulkhead_max_concurrent: u32,
    /// Adaptive limit now; 0 without an adaptive stage.
    pub adaptive_limit: u32,
    /// Adaptive permits out.
    pub adaptive_in_flight: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Fills `*out` with the policy's counters and stage states. Returns `BW_OK` or
/// `BW_NULL_POINTER` (nothing written). Thread-safe; allocates only for the latency
/// quantiles' snapshot.
///
/// # Safety
/// `policy` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_get_stats(
    policy: *const bw_policy,
    out: *mut bw_policy_stats,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        let s = policy.snapshot();
        let m = &s.metrics;
        let nanos = |d: Option<Duration>| d.map_or(0, crate::clock::duration_to_nanos);
        let stats = bw_policy_stats {
            permitted: m.permitted,
            success: m.success,
            failure: m.failure,
            timeout: m.timeout,
            ignored: m.ignored,
            slow: m.slow,
            retries: m.retries,
            rejected_circuit_open: m.rejected[crate::RejectReason::CircuitOpen.index()],
            rejected_rate_limited: m.rejected[crate::RejectReason::RateLimited.index()],
            rejected_bulkhead_full: m.rejected[crate::RejectReason::BulkheadFull.index()],
            rejected_load_shed: m.rejected[crate::RejectReason::LoadShed.index()],
            rejected_retry_budget_exhausted: m.rejected
                [crate::RejectReason::RetryBudgetExhausted.index()],
            rejected_injected: m.rejected[crate::RejectReason::Injected.index()],
            transitions_to_closed: m.transitions[0],
            transitions_to_open: m.transitions[1],
            transitions_to_half_open: m.transitions[2],
            transitions_to_forced_open: m.transitions[3],
            transitions_to_disabled: m.transitions[4],
            latency_count: m.latency.count,
            latency_sum_ns: m.latency.sum_nanos,
            latency_p50_ns: nanos(m.latency.p50()),
            latency_p90_ns: nanos(m.latency.p90()),
            latency_p99_ns: nanos(m.latency.p99()),
            latency_p999_ns: nanos(m.latency.p999()),
            breaker_generation: s.breaker.as_ref().map_or(0, |b| b.generation),
            limiter_available: s
                .limiter
                .as_ref()
                .map_or(-1, |l| l.available.min(i64::MAX as u64) as i64),
            breaker_state: s.breaker.as_ref().map_or(-1, |b| b.state as i32),
            bulkhead_in_flight: s.bulkhead.as_ref().map_or(0, |b| b.in_flight),
            bulkhead_max_concurrent: s.bulkhead.as_ref().map_or(0, |b| b.max_concurrent),
            adaptive_limit: s.adaptive.as_ref().map_or(0, |a| a.limit),
            adaptive_in_flight: s.adaptive.as_ref().map_or(0, |a| a.in_flight),
            reserved: 0,
        };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, stats) };
        bw_status::BW_OK
    })
}

/// Runs `act` on the policy's breaker; `BW_NO_STAGE` when it has none.
///
/// # Safety
/// `policy` must be NULL or live.
unsafe fn with_breaker(
    policy: *const bw_policy,
    act: fn(&crate::breaker::CircuitBreaker<crate::clock::AnyClock>),
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy);
        // SAFETY: non-NULL and live by this function's contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match policy.breaker() {
            Some(breaker) => {
                act(breaker);
                bw_status::BW_OK
            }
            None => fail(
                bw_status::BW_NO_STAGE,
                format_args!("policy \"{}\" has no circuit_breaker", policy.name()),
            ),
        }
    })
}

/// Opens the policy's circuit breaker until `bw_policy_breaker_reset`: every call is
/// rejected with `BW_CIRCUIT_OPEN`. Returns `BW_OK`, `BW_NULL_POINTER`, or
/// `BW_NO_STAGE` if the policy has no circuit breaker. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_breaker_force_open(policy: *const bw_policy) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { with_breaker(policy, |b| b.force_open()) }
}

/// Lets every call through the policy's breaker until `bw_policy_breaker_reset`.
/// Statuses as for `bw_policy_breaker_force_open`. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_breaker_disable(policy: *const bw_policy) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { with_breaker(policy, |b| b.disable()) }
}

/// Puts the policy's breaker back to closed with an empty window. Statuses as for
/// `bw_policy_breaker_force_open`. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_breaker_reset(policy: *const bw_policy) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { with_breaker(policy, |b| b.reset()) }
}

/// Turns the policy's fault injection on or off (its tuning is kept). Returns `BW_OK`,
/// `BW_NULL_POINTER`, or `BW_NO_STAGE` if the policy has no `chaos` section.
/// Thread-safe; takes effect for the next acquire.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_chaos_set_enabled(
    policy: *const bw_policy,
    enabled: bool,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match policy.chaos() {
            Some(chaos) => {
                chaos.set_enabled(enabled);
                bw_status::BW_OK
            }
            None => fail(
                bw_status::BW_NO_STAGE,
                format_args!("policy \"{}\" has no chaos stage", policy.name()),
            ),
        }
    })
}
