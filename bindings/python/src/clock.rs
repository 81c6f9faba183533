//! `ManualClock`: time that moves only when a test says so.

use breakwater::ffi::clock::{
    bw_clock, bw_clock_advance, bw_clock_free, bw_clock_new_manual, bw_clock_now, bw_clock_set,
};
use pyo3::prelude::*;

use crate::convert::{duration_ns, seconds};
use crate::handle::Handle;
use crate::status;

/// A manual clock (seconds). Give it to an `Engine` or a standalone guard, then move it
/// with `advance`: every time rule (open duration, refill, windows) follows it.
/// Thread-safe; copies of the object share one time.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct ManualClock {
    pub(crate) handle: Handle<bw_clock>,
}

impl ManualClock {
    pub(crate) fn ptr(&self) -> PyResult<*const bw_clock> {
        self.handle.get()
    }
}

/// The clock pointer of an optional `ManualClock` argument (NULL: the system clock).
pub(crate) fn clock_ptr(clock: Option<&Bound<'_, ManualClock>>) -> PyResult<*const bw_clock> {
    match clock {
        None => Ok(std::ptr::null()),
        Some(c) => c.get().ptr(),
    }
}

#[pymethods]
impl ManualClock {
    #[new]
    #[pyo3(signature = (start = None))]
    fn new(py: Python<'_>, start: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let start_ns = match start {
            Some(s) => duration_ns(s, "start", true)?,
            None => 1_000_000_000,
        };
        // SAFETY: `out` is a valid pointer slot.
        let out = status::out_ptr(py, |out| unsafe { bw_clock_new_manual(start_ns, out) })?;
        Ok(ManualClock {
            handle: Handle::new(out, bw_clock_free, "clock"),
        })
    }

    /// Moves the clock forward (seconds or `timedelta`, not negative).
    fn advance(&self, py: Python<'_>, delta: &Bound<'_, PyAny>) -> PyResult<()> {
        let ns = duration_ns(delta, "delta", true)?;
        // SAFETY: live handle.
        status::check(py, unsafe { bw_clock_advance(self.ptr()?, ns) })
    }

    /// Sets the clock to `now` seconds.
    fn set(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<()> {
        let ns = duration_ns(now, "now", true)?;
        // SAFETY: live handle.
        status::check(py, unsafe { bw_clock_set(self.ptr()?, ns) })
    }

    /// Moves the clock forward by exactly `ns` nanoseconds.
    fn advance_ns(&self, py: Python<'_>, ns: u64) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_clock_advance(self.ptr()?, ns) })
    }

    /// Sets the clock to exactly `ns` nanoseconds (also backwards).
    fn set_ns(&self, py: Python<'_>, ns: u64) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_clock_set(self.ptr()?, ns) })
    }

    /// The clock's time in seconds.
    fn now(&self) -> PyResult<f64> {
        // SAFETY: live handle.
        Ok(seconds(unsafe { bw_clock_now(self.ptr()?) }))
    }

    /// The clock's time in nanoseconds.
    fn now_ns(&self) -> PyResult<u64> {
        // SAFETY: live handle.
        Ok(unsafe { bw_clock_now(self.ptr()?) })
    }

    fn __repr__(&self) -> String {
        // SAFETY: the pointer stays live while `self` does.
        format!(
            "ManualClock(now={})",
            seconds(unsafe { bw_clock_now(self.handle.raw()) })
        )
    }
}
