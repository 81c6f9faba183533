//! Trace context for the guards: the hooks `breakwater.otel.install()` sets. Without
//! them a guarded call pays one relaxed atomic load; with them, the policy's acquire and
//! completion, keyed or not, carry the current OpenTelemetry span (`bw_policy_*_traced`,
//! `bw_policy_*_keyed_traced`), so the events
//! the call causes name it, and a rejection is reported to the span.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use breakwater::ffi::trace::bw_trace_context;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// Whether hooks are set: the one load an untraced call pays.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// `(trace_fn, rejection_fn)`: `trace_fn()` returns `(trace_id: bytes, span_id: bytes,
/// flags: int)` or None; `rejection_fn(policy, status, retry_after_ns)`.
static HOOKS: Mutex<Option<(Py<PyAny>, Py<PyAny>)>> = Mutex::new(None);
/// `(get_context, span_key)`: when set, `get_context()` is a dict-like context, and a
/// call whose context has no `span_key` has no span, so `trace_fn` is not called: a
/// call outside any span costs one C call and one dict lookup, no Python frame.
static SPAN_PROBE: Mutex<Option<(Py<PyAny>, Py<PyAny>)>> = Mutex::new(None);

/// Sets (or, with None, removes) the telemetry hooks of every guard of the process;
/// `span_probe` (optional) is `(get_context, span_key)`, see `SPAN_PROBE`.
#[pyfunction]
#[pyo3(signature = (trace_fn, rejection_fn, span_probe = None))]
pub(crate) fn _set_telemetry_hooks(
    trace_fn: Option<Py<PyAny>>,
    rejection_fn: Option<Py<PyAny>>,
    span_probe: Option<(Py<PyAny>, Py<PyAny>)>,
) {
    let hooks = trace_fn.zip(rejection_fn);
    *SPAN_PROBE.lock().unwrap_or_else(|e| e.into_inner()) = span_probe.filter(|_| hooks.is_some());
    // Relaxed: the flag only says whether to look under the lock, which orders the rest.
    INSTALLED.store(hooks.is_some(), Ordering::Relaxed);
    *HOOKS.lock().unwrap_or_else(|e| e.into_inner()) = hooks;
}

/// Whether hooks are set (one relaxed load).
#[inline]
pub(crate) fn installed() -> bool {
    // Relaxed: see `_set_telemetry_hooks`.
    INSTALLED.load(Ordering::Relaxed)
}

fn hook(py: Python<'_>, which: usize) -> Option<Py<PyAny>> {
    if !installed() {
        return None;
    }
    let hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    hooks.as_ref().map(|(t, r)| {
        if which == 0 {
            t.clone_ref(py)
        } else {
            r.clone_ref(py)
        }
    })
}

/// The trace context of the current span, when hooks are set and a span is active. A
/// hook that raises or answers something else is reported as unraisable and ignored:
/// telemetry never fails a call.
#[inline(always)]
pub(crate) fn current(py: Python<'_>) -> Option<bw_trace_context> {
    if !installed() {
        return None;
    }
    current_hooked(py)
}

#[cold]
#[inline(never)]
fn current_hooked(py: Python<'_>) -> Option<bw_trace_context> {
    if !has_span(py) {
        return None;
    }
    let trace_fn = hook(py, 0)?;
    let read = || -> PyResult<Option<bw_trace_context>> {
        let answer = trace_fn.call0(py)?;
        if answer.is_none(py) {
            return Ok(None);
        }
        let (trace_id, span_id, flags): (Bound<'_, PyBytes>, Bound<'_, PyBytes>, u8) =
            answer.extract(py)?;
        let mut c = bw_trace_context::default();
        if trace_id.as_bytes().len() != 16 || span_id.as_bytes().len() != 8 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "trace hook: trace_id must be 16 bytes and span_id 8",
            ));
        }
        c.trace_id.copy_from_slice(trace_id.as_bytes());
        c.span_id.copy_from_slice(span_id.as_bytes());
        c.flags = flags;
        Ok(Some(c))
    };
    read().unwrap_or_else(|e| {
        e.write_unraisable(py, None);
        None
    })
}

/// False when the span probe says the current context holds no span; true when it
/// holds one, or there is no probe, or it fails (then `trace_fn` decides).
fn has_span(py: Python<'_>) -> bool {
    let probe = SPAN_PROBE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|(get, key)| (get.clone_ref(py), key.clone_ref(py)));
    let Some((get, key)) = probe else {
        return true;
    };
    let Ok(context) = get.call0(py) else {
        return true;
    };
    match context.bind(py).downcast::<PyDict>() {
        Ok(dict) => !matches!(dict.get_item(key), Ok(None)),
        Err(_) => true,
    }
}

/// Tells the rejection hook (if set) that `policy` refused a call.
#[inline(always)]
pub(crate) fn on_rejection(py: Python<'_>, policy: &str, code: i32, after_ns: u64) {
    if installed() {
        on_rejection_hooked(py, policy, code, after_ns);
    }
}

#[cold]
#[inline(never)]
fn on_rejection_hooked(py: Python<'_>, policy: &str, code: i32, after_ns: u64) {
    if let Some(rejection_fn) = hook(py, 1) {
        if let Err(e) = rejection_fn.call1(py, (policy, code, after_ns)) {
            e.write_unraisable(py, None);
        }
    }
}
