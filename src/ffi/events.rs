//! Events for C listeners: `bw_event`, `bw_engine_set_listener` (and
//! `bw_breaker_set_listener` in `breaker`).
//!
//! A listener is a plain C function pointer plus a `user_data` pointer. It is called
//! synchronously on the thread that caused the event, with no library lock held, once
//! per event. The `bw_event` and the policy name it points to are valid only during the
//! call. A C function cannot unwind into Rust: the callback must return normally.

use std::os::raw::{c_char, c_void};

use super::boundary::{ensure_non_null, ffi_status, ArcHandle};
use super::engine::bw_engine;
use super::status::{bw_status, fail};
use super::trace::bw_trace_context;
use crate::metrics::Event;

/// Event kind: a circuit breaker changed state (`from_state`, `to_state`,
/// `generation`, `at_ns`).
pub const BW_EVENT_TRANSITION: i32 = 1;
/// Event kind: a policy's retry budget refused a retry (`at_ns`). The one rule: each
/// retry the budget refuses (`BW_GIVE_UP_BUDGET_EXHAUSTED` from `bw_policy_retry_next`,
/// a `RetryBudgetExhausted` rejection from the Rust `call`) is counted once in
/// `rejected_retry_budget_exhausted` and emits this event once, at the same moment;
/// asking a state that already gave up again does neither.
pub const BW_EVENT_BUDGET_EXHAUSTED: i32 = 2;
/// Event kind: a call was rejected (`reason` is the rejection status, `at_ns`). A
/// policy emits it for load shedding (`BW_LOAD_SHED`) only; other rejections are
/// counted, not emitted (see `bw_policy_get_stats`). A listener should ignore kinds it
/// does not know.
pub const BW_EVENT_REJECTED: i32 = 3;
/// Event kind: the engine applied a new configuration (`added`, `removed`, `changed`;
/// no policy name).
pub const BW_EVENT_RELOAD: i32 = 4;

/// One event, passed by pointer to a listener and valid only during the call. Fields
/// that do not apply to the kind are zero; `policy` then points to an empty string
/// (never NULL). `policy` is NOT NUL-terminated: read `policy_len` bytes (UTF-8).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bw_event {
    /// `BW_EVENT_*`.
    pub kind: i32,
    /// The state left, `BW_BREAKER_*` (transitions).
    pub from_state: i32,
    /// The state entered, `BW_BREAKER_*` (transitions).
    pub to_state: i32,
    /// The rejection status, `BW_CIRCUIT_OPEN` … (rejections).
    pub reason: i32,
    /// The policy's name: `policy_len` UTF-8 bytes, not NUL-terminated, valid only
    /// during the call. Empty for engine-wide events and standalone breakers.
    pub policy: *const c_char,
    /// Length of `policy` in bytes.
    pub policy_len: usize,
    /// The breaker's generation after the transition.
    pub generation: u64,
    /// Clock time of the event, ns (0 for reloads).
    pub at_ns: u64,
    /// Policies added by a reload.
    pub added: u64,
    /// Policies removed by a reload.
    pub removed: u64,
    /// Policies whose configuration changed in a reload.
    pub changed: u64,
    /// The trace context of the call that caused the event (transitions, budget
    /// exhaustion, load shedding), when it was traced (`bw_policy_acquire_traced` …);
    /// all zeros otherwise.
    pub trace: bw_trace_context,
}

/// A listener: called with the event (valid only during the call) and the `user_data`
/// given when it was set.
pub type bw_event_callback =
    Option<unsafe extern "C" fn(event: *const bw_event, user_data: *mut c_void)>;

impl bw_event {
    fn empty(kind: i32, policy: &str) -> bw_event {
        bw_event {
            kind,
            from_state: 0,
            to_state: 0,
            reason: 0,
            policy: policy.as_ptr().cast(),
            policy_len: policy.len(),
            generation: 0,
            at_ns: 0,
            added: 0,
            removed: 0,
            changed: 0,
            trace: bw_trace_context::default(),
        }
    }

    /// A transition event.
    pub(crate) fn transition(
        policy: &str,
        from: u8,
        to: u8,
        generation: u64,
        at_ns: u64,
    ) -> bw_event {
        bw_event {
            from_state: i32::from(from),
            to_state: i32::from(to),
            generation,
            at_ns,
            ..bw_event::empty(BW_EVENT_TRANSITION, policy)
        }
    }

    fn of(event: &Event<'_>) -> bw_event {
        let trace = bw_trace_context::of(event.trace());
        let event = match *event {
            Event::Transition {
                policy,
                from_code,
                to_code,
                generation,
                at_nanos,
                ..
            } => bw_event::transition(policy, from_code, to_code, generation, at_nanos),
            Event::BudgetExhausted {
                policy, at_nanos, ..
            } => bw_event {
                at_ns: at_nanos,
                ..bw_event::empty(BW_EVENT_BUDGET_EXHAUSTED, policy)
            },
            Event::Rejected {
                policy,
                reason,
                at_nanos,
                ..
            } => bw_event {
                reason: bw_status::of_rejection(reason) as i32,
                at_ns: at_nanos,
                ..bw_event::empty(BW_EVENT_REJECTED, policy)
            },
            Event::Reload {
                added,
                removed,
                changed,
            } => bw_event {
                added: added as u64,
                removed: removed as u64,
                changed: changed as u64,
                ..bw_event::empty(BW_EVENT_RELOAD, "")
            },
        };
        bw_event { trace, ..event }
    }
}

/// A C callback and its `user_data`, callable from any thread.
pub(crate) struct CallbackTarget {
    pub(crate) callback: unsafe extern "C" fn(*const bw_event, *mut c_void),
    pub(crate) user_data: *mut c_void,
}

// SAFETY: the pointers are only handed back to the C callback; the setters' contracts
// require the callback and `user_data` to be usable from any thread while the handle
// lives.
unsafe impl Send for CallbackTarget {}
// SAFETY: as for `Send`: the library never dereferences `user_data`.
unsafe impl Sync for CallbackTarget {}

impl CallbackTarget {
    /// Calls the callback with `event`. It cannot unwind (an `extern "C"` function that
    /// unwinds aborts the process), so no panic crosses here.
    pub(crate) fn deliver(&self, event: &bw_event) {
        // SAFETY: by the setter's contract the callback is safe to call from any thread
        // with a pointer to an event valid for the call and the caller's `user_data`.
        unsafe { (self.callback)(event, self.user_data) }
    }
}

/// Sets the function called for every event of the engine and its policies (breaker
/// transitions, retry budget exhaustion, reloads), with `user_data`. Settable once: a
/// second call returns `BW_ALREADY_SET` and keeps the first listener.
/// `BW_NULL_POINTER` if `engine` or `callback` is NULL.
///
/// The callback runs synchronously on the thread that caused the event, never while
/// the library holds a lock (it may call back into the library), exactly once per
/// event; the `bw_event` is valid only during the call. It must return normally: no
/// `longjmp` out of it and no C++ exception through it. `user_data` must stay valid,
/// and be usable from any thread, while the engine lives.
///
/// # Safety
/// `engine` must be NULL or live; `callback` NULL or a function safe to call from any
/// thread with the documented arguments.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_set_listener(
    engine: *const bw_engine,
    callback: bw_event_callback,
    user_data: *mut c_void,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine);
        let Some(callback) = callback else {
            return fail(bw_status::BW_NULL_POINTER, "`callback` is NULL");
        };
        let target = CallbackTarget {
            callback,
            user_data,
        };
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        match engine
            .events()
            .set_listener(move |event: &Event<'_>| target.deliver(&bw_event::of(event)))
        {
            Ok(()) => bw_status::BW_OK,
            Err(_) => fail(
                bw_status::BW_ALREADY_SET,
                "the engine already has a listener",
            ),
        }
    })
}
