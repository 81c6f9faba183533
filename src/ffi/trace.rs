//! Trace context on a call: `bw_trace_context` and the traced forms of acquire,
//! complete (plain and keyed) and the retry step.
//!
//! A traced function is its untraced twin run with the caller's trace context as the
//! *cause* of every event it emits (see the `telemetry` module in the Rust docs): a breaker
//! transition, a budget exhaustion, a load-shed rejection. A listener reads it from
//! `bw_event.trace`. The context is held by the library only for the length of the
//! call, so a Go caller whose goroutine moves between threads loses nothing. A NULL
//! context makes the call untraced; the untraced functions pay nothing for this.

use super::boundary::{ensure_non_null, ffi_status};
use super::keyed::{bw_keyed_permit, bw_policy_acquire_keyed, bw_policy_complete_keyed};
use super::policy::{bw_permit, bw_policy, bw_policy_acquire, bw_policy_complete};
use super::policy_retry::bw_policy_retry_next;
use super::retry::bw_retry_state;
use super::status::{bw_status, fail};
use crate::telemetry::{CauseScope, TraceContext, TraceContextError};

/// The W3C trace context of a call: trace id, span id (the caller's span) and trace
/// flags (`0x01` = sampled). Both ids must be non-zero. In an event (`bw_event.trace`)
/// all zeros means the causing call was not traced.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct bw_trace_context {
    /// The trace id, 16 bytes, most significant first (as in `traceparent`).
    pub trace_id: [u8; 16],
    /// The span id, 8 bytes, most significant first.
    pub span_id: [u8; 8],
    /// The W3C trace flags.
    pub flags: u8,
    /// Reserved, 0.
    pub reserved: [u8; 7],
}

impl bw_trace_context {
    /// The C form of `trace` (all zeros for none).
    pub(crate) fn of(trace: Option<TraceContext>) -> bw_trace_context {
        match trace {
            Some(t) => bw_trace_context {
                trace_id: t.trace_id(),
                span_id: t.span_id(),
                flags: t.flags(),
                reserved: [0; 7],
            },
            None => bw_trace_context::default(),
        }
    }
}

/// Reads the trace context at `trace` (NULL: none); an invalid one gets
/// `BW_INVALID_ARGUMENT` with a message.
///
/// # Safety
/// `trace` must be NULL or valid for reads.
unsafe fn read_trace(trace: *const bw_trace_context) -> Result<Option<TraceContext>, bw_status> {
    if trace.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and readable by the caller's contract; a plain-bytes struct, so
    // any bit pattern is a valid value.
    let c = unsafe { *trace };
    if c.reserved != [0; 7] {
        return Err(fail(
            bw_status::BW_INVALID_ARGUMENT,
            "bw_trace_context.reserved must be zero",
        ));
    }
    TraceContext::new(c.trace_id, c.span_id, c.flags)
        .map(Some)
        .map_err(|e: TraceContextError| {
            fail(
                bw_status::BW_INVALID_ARGUMENT,
                format_args!("bw_trace_context: {e}"),
            )
        })
}

/// Runs `call` (an untraced twin) with the trace context at `trace` (NULL: none) as
/// the cause of the events it emits; an invalid context runs nothing and gets
/// `BW_INVALID_ARGUMENT`.
///
/// # Safety
/// `trace` must be NULL or valid for reads.
pub(super) unsafe fn with_cause(
    trace: *const bw_trace_context,
    call: impl FnOnce() -> bw_status,
) -> bw_status {
    // SAFETY: NULL or readable by this function's contract.
    match unsafe { read_trace(trace) } {
        Ok(trace) => {
            let _cause = CauseScope::enter(trace);
            call()
        }
        Err(status) => status,
    }
}

/// The body of every traced function: the NULL checks of its untraced twin first (so
/// a NULL argument is `BW_NULL_POINTER` whatever `trace` holds), then the twin's call
/// (`$call`, inside the caller's `unsafe`) with the trace context as its cause.
macro_rules! traced {
    ($trace:ident, [$($ptr:ident),+], $call:expr) => {
        ffi_status!({
            ensure_non_null!($($ptr),+);
            with_cause($trace, || $call)
        })
    };
}

/// `bw_policy_acquire` for a call with the trace context `trace` (NULL: untraced).
/// The events this acquire causes (an open breaker admitting a half-open probe, a
/// load-shed rejection) carry it. Statuses and outputs as `bw_policy_acquire`, plus
/// `BW_INVALID_ARGUMENT` when `trace` has an all-zero id or non-zero reserved bytes
/// (nothing acquired, nothing written).
///
/// # Safety
/// As `bw_policy_acquire`; `trace` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_acquire_traced(
    policy: *const bw_policy,
    priority: i32,
    trace: *const bw_trace_context,
    out_permit: *mut bw_permit,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    // SAFETY: `trace` NULL or readable, and the rest of the caller's contract is
    // bw_policy_acquire's.
    unsafe {
        traced!(
            trace,
            [policy, out_permit],
            bw_policy_acquire(policy, priority, out_permit, out_retry_after_ns)
        )
    }
}

/// `bw_policy_complete` for a call with the trace context `trace` (NULL: untraced).
/// The events this completion causes (a trip, a half-open breaker closing or
/// re-opening) carry it. Statuses as `bw_policy_complete`, plus `BW_INVALID_ARGUMENT`
/// for an invalid `trace` (the permit stays live).
///
/// # Safety
/// As `bw_policy_complete`; `trace` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_complete_traced(
    policy: *const bw_policy,
    permit: *mut bw_permit,
    outcome: i32,
    duration_ns: u64,
    trace: *const bw_trace_context,
) -> bw_status {
    // SAFETY: `trace` NULL or readable, and the rest of the caller's contract is
    // bw_policy_complete's.
    unsafe {
        traced!(
            trace,
            [policy, permit],
            bw_policy_complete(policy, permit, outcome, duration_ns)
        )
    }
}

/// `bw_policy_acquire_keyed` for a call with the trace context `trace` (NULL:
/// untraced), as `bw_policy_acquire_traced` is to `bw_policy_acquire`. Statuses and
/// outputs as `bw_policy_acquire_keyed`, plus `BW_INVALID_ARGUMENT` for an invalid
/// `trace` (nothing acquired, nothing written).
///
/// # Safety
/// As `bw_policy_acquire_keyed`; `trace` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_acquire_keyed_traced(
    policy: *const bw_policy,
    key: *const u8,
    key_len: usize,
    priority: i32,
    trace: *const bw_trace_context,
    out_permit: *mut bw_keyed_permit,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    // SAFETY: `trace` NULL or readable, and the rest of the caller's contract is
    // bw_policy_acquire_keyed's.
    unsafe {
        traced!(
            trace,
            [policy, out_permit],
            bw_policy_acquire_keyed(
                policy,
                key,
                key_len,
                priority,
                out_permit,
                out_retry_after_ns
            )
        )
    }
}

/// `bw_policy_complete_keyed` for a call with the trace context `trace` (NULL:
/// untraced), as `bw_policy_complete_traced` is to `bw_policy_complete`. Statuses as
/// `bw_policy_complete_keyed`, plus `BW_INVALID_ARGUMENT` for an invalid `trace` (the
/// permit stays live).
///
/// # Safety
/// As `bw_policy_complete_keyed`; `trace` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_complete_keyed_traced(
    policy: *const bw_policy,
    permit: *mut bw_keyed_permit,
    outcome: i32,
    duration_ns: u64,
    trace: *const bw_trace_context,
) -> bw_status {
    // SAFETY: `trace` NULL or readable, and the rest of the caller's contract is
    // bw_policy_complete_keyed's.
    unsafe {
        traced!(
            trace,
            [policy, permit],
            bw_policy_complete_keyed(policy, permit, outcome, duration_ns)
        )
    }
}

/// `bw_policy_retry_next` for a call with the trace context `trace` (NULL:
/// untraced): the budget-exhaustion event of a refused retry carries it. Statuses and
/// outputs as `bw_policy_retry_next`, plus `BW_INVALID_ARGUMENT` for an invalid
/// `trace` (nothing decided, nothing counted).
///
/// # Safety
/// As `bw_policy_retry_next`; `trace` NULL or valid for reads.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_retry_next_traced(
    policy: *const bw_policy,
    state: *mut bw_retry_state,
    what: u32,
    retry_after_ns: u64,
    trace: *const bw_trace_context,
    out_delay_ns: *mut u64,
    out_reason: *mut i32,
) -> bw_status {
    // SAFETY: `trace` NULL or readable, and the rest of the caller's contract is
    // bw_policy_retry_next's.
    unsafe {
        traced!(
            trace,
            [policy, state, out_delay_ns],
            bw_policy_retry_next(
                policy,
                state,
                what,
                retry_after_ns,
                out_delay_ns,
                out_reason
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::codes::{BW_OUTCOME_FAILURE, BW_PRIORITY_DEFAULT};
    use crate::ffi::engine::{bw_engine, bw_engine_free, bw_engine_from_toml, bw_engine_policy};
    use crate::ffi::events::{bw_engine_set_listener, bw_event, BW_EVENT_TRANSITION};
    use crate::ffi::policy::bw_policy_free;
    use std::os::raw::c_void;
    use std::sync::Mutex;

    type Trips = Mutex<Vec<bw_trace_context>>;

    /// Collects the trace of every transition into the `Trips` at `trips`.
    unsafe extern "C" fn listener(event: *const bw_event, trips: *mut c_void) {
        // SAFETY: the library passes a valid event for the length of the call, and each
        // test passes a pointer to a static `Trips`.
        let (event, trips) = unsafe { (&*event, &*trips.cast::<Trips>()) };
        if event.kind == BW_EVENT_TRANSITION {
            trips.lock().unwrap().push(event.trace);
        }
    }

    /// An engine from `text` whose transitions go to `trips`, and its policy `p`.
    ///
    /// # Safety
    /// `text` is a policy file with a policy `p`; free both handles once.
    unsafe fn engine_with_listener(
        text: &std::ffi::CStr,
        trips: &'static Trips,
    ) -> (*mut bw_engine, *mut bw_policy) {
        let mut engine: *mut bw_engine = std::ptr::null_mut();
        let mut policy: *mut bw_policy = std::ptr::null_mut();
        let data = (trips as *const Trips).cast_mut().cast::<c_void>();
        // SAFETY: valid pointers throughout, by this function's contract.
        unsafe {
            assert_eq!(
                bw_engine_from_toml(text.as_ptr(), std::ptr::null(), &mut engine),
                bw_status::BW_OK
            );
            assert_eq!(
                bw_engine_set_listener(engine, Some(listener), data),
                bw_status::BW_OK
            );
            assert_eq!(
                bw_engine_policy(engine, c"p".as_ptr(), &mut policy),
                bw_status::BW_OK
            );
        }
        (engine, policy)
    }

    fn context(n: u8) -> bw_trace_context {
        bw_trace_context {
            trace_id: [n; 16],
            span_id: [n; 8],
            flags: 1,
            reserved: [0; 7],
        }
    }

    #[test]
    fn the_trip_event_carries_the_completion_s_trace_and_bad_contexts_are_refused() {
        let text =
            c"[policies.p.circuit_breaker]\nminimum_calls = 2\nfailure_rate_threshold = 50\n";
        static TRIPS: Trips = Mutex::new(Vec::new());
        // SAFETY: valid pointers and lengths throughout; every handle is freed once.
        unsafe {
            let (engine, policy) = engine_with_listener(text, &TRIPS);
            let mut permit = std::mem::zeroed::<bw_permit>();
            let zero = bw_trace_context::default();
            assert_eq!(
                bw_policy_acquire_traced(
                    policy,
                    BW_PRIORITY_DEFAULT,
                    &zero,
                    &mut permit,
                    std::ptr::null_mut()
                ),
                bw_status::BW_INVALID_ARGUMENT
            );
            let reserved = bw_trace_context {
                reserved: [1; 7],
                ..context(1)
            };
            assert_eq!(
                bw_policy_acquire_traced(
                    policy,
                    BW_PRIORITY_DEFAULT,
                    &reserved,
                    &mut permit,
                    std::ptr::null_mut()
                ),
                bw_status::BW_INVALID_ARGUMENT
            );
            for n in 1..=2u8 {
                assert_eq!(
                    bw_policy_acquire_traced(
                        policy,
                        BW_PRIORITY_DEFAULT,
                        std::ptr::null(),
                        &mut permit,
                        std::ptr::null_mut()
                    ),
                    bw_status::BW_OK
                );
                assert_eq!(
                    bw_policy_complete_traced(policy, &mut permit, BW_OUTCOME_FAILURE, 0, &zero),
                    bw_status::BW_INVALID_ARGUMENT,
                    "refused: the permit stays live"
                );
                assert_eq!(
                    bw_policy_complete_traced(
                        policy,
                        &mut permit,
                        BW_OUTCOME_FAILURE,
                        0,
                        &context(n)
                    ),
                    bw_status::BW_OK
                );
            }
            bw_policy_free(policy);
            bw_engine_free(engine);
        }
        assert_eq!(*TRIPS.lock().unwrap(), [context(2)]);
    }

    #[test]
    fn a_keyed_trip_carries_the_keyed_completion_s_trace() {
        let text = c"[policies.p.circuit_breaker]\nminimum_calls = 2\nfailure_rate_threshold = 50\n[policies.p.per_key]\nrate = 100\n";
        static TRIPS: Trips = Mutex::new(Vec::new());
        let key = b"tenant-1";
        // SAFETY: valid pointers and lengths throughout; every handle is freed once.
        unsafe {
            let (engine, policy) = engine_with_listener(text, &TRIPS);
            let mut permit = std::mem::zeroed::<bw_keyed_permit>();
            let zero = bw_trace_context::default();
            assert_eq!(
                bw_policy_acquire_keyed_traced(
                    policy,
                    key.as_ptr(),
                    key.len(),
                    BW_PRIORITY_DEFAULT,
                    &zero,
                    &mut permit,
                    std::ptr::null_mut()
                ),
                bw_status::BW_INVALID_ARGUMENT
            );
            for n in 1..=2u8 {
                assert_eq!(
                    bw_policy_acquire_keyed_traced(
                        policy,
                        key.as_ptr(),
                        key.len(),
                        BW_PRIORITY_DEFAULT,
                        &context(n),
                        &mut permit,
                        std::ptr::null_mut()
                    ),
                    bw_status::BW_OK
                );
                assert_eq!(
                    bw_policy_complete_keyed_traced(
                        policy,
                        &mut permit,
                        BW_OUTCOME_FAILURE,
                        0,
                        &zero
                    ),
                    bw_status::BW_INVALID_ARGUMENT,
                    "refused: the permit stays live"
                );
                assert_eq!(
                    bw_policy_complete_keyed_traced(
                        policy,
                        &mut permit,
                        BW_OUTCOME_FAILURE,
                        0,
                        &context(n + 10)
                    ),
                    bw_status::BW_OK
                );
            }
            bw_policy_free(policy);
            bw_engine_free(engine);
        }
        assert_eq!(*TRIPS.lock().unwrap(), [context(12)]);
    }
}
