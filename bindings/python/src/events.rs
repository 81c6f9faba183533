//! Event listeners: one C callback per handle hands each `bw_event` to the Python
//! dispatcher (`breakwater._guard.dispatch`), which calls every listener and logs,
//! never raises, what they raise.

use std::os::raw::c_void;
use std::sync::{Mutex, OnceLock};

use breakwater::ffi::events::bw_event;
use breakwater::ffi::status::bw_status;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::status;

/// The Python listeners of one handle.
struct Sink {
    listeners: Mutex<Vec<Py<PyAny>>>,
}

/// A handle's listeners; the C callback is set on the first `add`.
#[derive(Default)]
pub(crate) struct Listeners(OnceLock<&'static Sink>);

impl Listeners {
    /// Adds `listener` and hands it back (so `on_event` can decorate);
    /// `set(callback, user_data)` installs the C callback the first time. The sink is
    /// leaked on purpose: the library may call the callback for as long as the C
    /// handle lives, which can be longer than this Python object (a policy keeps its
    /// engine's event sink), so `user_data` must never dangle.
    pub(crate) fn add(
        &self,
        py: Python<'_>,
        listener: Py<PyAny>,
        set: impl FnOnce(breakwater::ffi::events::bw_event_callback, *mut c_void) -> bw_status,
    ) -> PyResult<Py<PyAny>> {
        if !listener.bind(py).is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a listener must be callable",
            ));
        }
        let mut fresh = false;
        let sink = *self.0.get_or_init(|| {
            fresh = true;
            Box::leak(Box::new(Sink {
                listeners: Mutex::new(Vec::new()),
            }))
        });
        sink.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener.clone_ref(py));
        if fresh {
            let data = sink as *const Sink as *mut c_void;
            status::check(py, set(Some(deliver), data))?;
        }
        Ok(listener)
    }
}

extern "C" fn deliver(event: *const bw_event, data: *mut c_void) {
    // A panic must not unwind into the library (and an `extern "C"` unwind aborts).
    let _ = std::panic::catch_unwind(|| {
        if event.is_null() || data.is_null() {
            return;
        }
        // SAFETY: the library passes a pointer valid during the call; `data` is the
        // leaked `Sink` given to the setter, valid forever.
        let (event, sink) = unsafe { (&*event, &*(data as *const Sink)) };
        let policy = if event.policy.is_null() || event.policy_len == 0 {
            String::new()
        } else {
            // SAFETY: `policy_len` UTF-8 bytes valid during the call.
            let bytes =
                unsafe { std::slice::from_raw_parts(event.policy.cast::<u8>(), event.policy_len) };
            String::from_utf8_lossy(bytes).into_owned()
        };
        let trace = (event.trace.trace_id != [0; 16]).then(|| {
            let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            (hex(&event.trace.trace_id), hex(&event.trace.span_id))
        });
        Python::with_gil(|py| {
            let listeners: Vec<Py<PyAny>> = sink
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|l| l.clone_ref(py))
                .collect();
            let run = || -> PyResult<()> {
                let listeners = PyTuple::new(py, listeners)?;
                crate::guard::helpers(py)?.getattr("dispatch")?.call1((
                    listeners,
                    (
                        event.kind,
                        policy,
                        event.from_state,
                        event.to_state,
                        event.reason,
                    ),
                    (
                        event.generation,
                        event.at_ns,
                        event.added,
                        event.removed,
                        event.changed,
                    ),
                    trace.clone(),
                ))?;
                Ok(())
            };
            if let Err(e) = run() {
                e.write_unraisable(py, None);
            }
        });
    });
}
