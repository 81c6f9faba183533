//! `Bulkhead`: a standalone concurrency limit (`bw_bulkhead_*`).

use breakwater::ffi::bulkhead::{
    bw_bulkhead, bw_bulkhead_acquire, bw_bulkhead_available, bw_bulkhead_config_free,
    bw_bulkhead_config_new, bw_bulkhead_config_set_max_concurrent, bw_bulkhead_config_set_max_wait,
    bw_bulkhead_free, bw_bulkhead_get_metrics, bw_bulkhead_in_flight, bw_bulkhead_new,
    bw_bulkhead_release, bw_bulkhead_try_acquire, BW_WAIT_DEFAULT,
};
use pyo3::prelude::*;

use crate::clock::{clock_ptr, ManualClock};
use crate::convert::{count, opt_duration_ns};
use crate::guard::{guard_methods, Exclude, Guard, Refusal, Ticket};
use crate::handle::{Config, Handle, SendPtr};
use crate::status;

/// At most `max_concurrent` calls at once; a call waits up to `max_wait` for a slot
/// (the thread sleeps with the GIL released; a coroutine awaits). Thread-safe.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct Bulkhead {
    handle: Handle<bw_bulkhead>,
    pub(crate) guard: Guard,
    max_wait_ns: u64,
}

impl Bulkhead {
    #[inline]
    pub(crate) fn acquire_ticket(&self, py: Python<'_>, wait: bool) -> Result<Ticket, Refusal> {
        let ptr = self.handle.get()?;
        let code = if wait && self.max_wait_ns > 0 {
            let p = SendPtr(ptr);
            // SAFETY: live handle (held by the Python object).
            py.allow_threads(move || {
                let p = p;
                unsafe { bw_bulkhead_acquire(p.0, BW_WAIT_DEFAULT) as i32 }
            })
        } else {
            // SAFETY: live handle.
            unsafe { bw_bulkhead_try_acquire(ptr) as i32 }
        };
        if code == status::OK {
            Ok(Ticket::Bulkhead)
        } else if status::is_rejection(code) {
            Err(Refusal::Rejected(code, 0))
        } else {
            Err(Refusal::Error(status::error(py, code)))
        }
    }

    #[inline]
    pub(crate) fn release_slot(&self) -> i32 {
        // SAFETY: live handle (permits hold the object).
        unsafe { bw_bulkhead_release(self.handle.raw()) as i32 }
    }
}

guard_methods! {
    Bulkhead, Bulkhead, "Bulkhead", metrics = bw_bulkhead_get_metrics, max_wait;
    #[new]
    #[pyo3(signature = (*, max_concurrent, max_wait = None, name = "bulkhead".to_string(), clock = None))]
    fn new(
        py: Python<'_>,
        max_concurrent: &Bound<'_, PyAny>,
        max_wait: Option<&Bound<'_, PyAny>>,
        name: String,
        clock: Option<&Bound<'_, ManualClock>>,
    ) -> PyResult<Self> {
        let max = count(max_concurrent, "max_concurrent", 0, u64::from(u32::MAX))? as u32;
        let max_wait_ns = opt_duration_ns(max_wait, "max_wait", true)?.unwrap_or(0);
        let b = Config::new(py, bw_bulkhead_config_new, bw_bulkhead_config_free)?;
        // SAFETY: our live builder, this thread only.
        unsafe {
            status::check(py, bw_bulkhead_config_set_max_concurrent(b.ptr(), max))?;
            status::check(py, bw_bulkhead_config_set_max_wait(b.ptr(), max_wait_ns))?;
        }
        let clock = clock_ptr(clock)?;
        // SAFETY: live builder, clock NULL or live, valid out-pointer.
        let out = status::out_ptr(py, |out| unsafe { bw_bulkhead_new(b.ptr(), clock, out) })?;
        Ok(Bulkhead {
            handle: Handle::new(out, bw_bulkhead_free, "bulkhead"),
            guard: Guard::new(py, name, Exclude::none())?,
            max_wait_ns,
        })
    }

    /// Takes a slot if one is free now: `True` if taken (give it back with `release`).
    fn try_acquire(&self, py: Python<'_>) -> PyResult<bool> {
        match self.acquire_ticket(py, false) {
            Ok(_) => Ok(true),
            Err(Refusal::Rejected(..)) => Ok(false),
            Err(Refusal::Error(e)) => Err(e),
        }
    }

    /// Takes a slot, waiting (GIL released) up to `timeout` seconds (default: the
    /// bulkhead's `max_wait`); raises `BulkheadFullError` otherwise.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let wait = opt_duration_ns(timeout, "timeout", true)?.unwrap_or(self.max_wait_ns);
        let p = SendPtr(self.handle.get()?);
        // SAFETY: live handle (held by `self`).
        let code = py.allow_threads(move || {
            let p = p;
            unsafe { bw_bulkhead_acquire(p.0, wait) as i32 }
        });
        if code == status::OK {
            Ok(())
        } else {
            Err(status::status_err(py, code, 0, &self.guard.name))
        }
    }

    /// Gives one slot back (`PermitUsedError` if none is out).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let _ = self.handle.get()?;
        let code = self.release_slot();
        if code == status::OK {
            Ok(())
        } else {
            Err(status::error(py, code))
        }
    }

    #[getter]
    fn in_flight(&self) -> PyResult<u32> {
        // SAFETY: live handle.
        Ok(unsafe { bw_bulkhead_in_flight(self.handle.get()?) })
    }

    #[getter]
    fn available(&self) -> PyResult<u32> {
        // SAFETY: live handle.
        Ok(unsafe { bw_bulkhead_available(self.handle.get()?) })
    }
}
