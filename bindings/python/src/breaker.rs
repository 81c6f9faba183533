//! `CircuitBreaker`: a standalone breaker (`bw_breaker_*`).

use breakwater::ffi::breaker::{
    bw_breaker, bw_breaker_complete, bw_breaker_config_free, bw_breaker_config_new,
    bw_breaker_config_set_consecutive_failures, bw_breaker_config_set_count_window,
    bw_breaker_config_set_failure_rate_threshold, bw_breaker_config_set_half_open,
    bw_breaker_config_set_minimum_calls, bw_breaker_config_set_open_backoff,
    bw_breaker_config_set_open_duration, bw_breaker_config_set_open_jitter,
    bw_breaker_config_set_slow_calls, bw_breaker_config_set_time_window, bw_breaker_disable,
    bw_breaker_force_open, bw_breaker_free, bw_breaker_get_metrics, bw_breaker_get_stats,
    bw_breaker_new, bw_breaker_permit, bw_breaker_reset, bw_breaker_set_listener, bw_breaker_state,
    bw_breaker_stats, bw_breaker_try_acquire,
};
use breakwater::ffi::codes::BW_DURATION_UNKNOWN;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::clock::{clock_ptr, ManualClock};
use crate::convert::{count, duration_ns, opt_duration_ns, real, seconds};
use crate::guard::{guard_methods, zeroed, Exclude, Guard, Refusal, Ticket};
use crate::handle::{Config, Handle};
use crate::metrics::{set_fields, transitions};
use crate::policy::breaker_state_name;
use crate::status;

/// A standalone circuit breaker: a decorator and a (sync and async) context manager.
/// Thread-safe.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct CircuitBreaker {
    handle: Handle<bw_breaker>,
    pub(crate) guard: Guard,
    listeners: crate::events::Listeners,
}

impl CircuitBreaker {
    #[inline]
    pub(crate) fn acquire_ticket(&self) -> Result<Ticket, Refusal> {
        let ptr = self.handle.get()?;
        let mut permit: bw_breaker_permit = zeroed();
        let mut after = 0u64;
        // SAFETY: live handle, valid out-pointers.
        let code = unsafe { bw_breaker_try_acquire(ptr, &mut permit, &mut after) } as i32;
        if code == status::OK {
            Ok(Ticket::Breaker(permit))
        } else if status::is_rejection(code) {
            Err(Refusal::Rejected(code, after))
        } else {
            Err(Refusal::Error(Python::with_gil(|py| {
                status::error(py, code)
            })))
        }
    }

    #[inline]
    pub(crate) fn complete_permit(&self, permit: &mut bw_breaker_permit, outcome: i32) -> i32 {
        // SAFETY: the handle lives as long as this object (permits hold it); the
        // permit came from this breaker and is not shared.
        unsafe {
            bw_breaker_complete(self.handle.raw(), permit, outcome, BW_DURATION_UNKNOWN) as i32
        }
    }
}

guard_methods! {
    CircuitBreaker, Breaker, "CircuitBreaker", metrics = bw_breaker_get_metrics;
    /// Every setting is keyword-only and optional (the library's defaults apply);
    /// durations are seconds or `timedelta`. Use `window_size` (the last N calls) or
    /// `window_duration` (+ `window_buckets`), not both.
    #[new]
    #[pyo3(signature = (*, name = "breaker".to_string(), failure_rate_threshold = None, minimum_calls = None,
        window_size = None, window_duration = None, window_buckets = None, consecutive_failures = None,
        slow_call_duration = None, slow_call_rate_threshold = None, open_duration = None,
        open_backoff_multiplier = None, max_open_duration = None, open_jitter = None,
        half_open_permits = None, half_open_max_wait = None, clock = None, exclude = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        failure_rate_threshold: Option<&Bound<'_, PyAny>>,
        minimum_calls: Option<&Bound<'_, PyAny>>,
        window_size: Option<&Bound<'_, PyAny>>,
        window_duration: Option<&Bound<'_, PyAny>>,
        window_buckets: Option<&Bound<'_, PyAny>>,
        consecutive_failures: Option<&Bound<'_, PyAny>>,
        slow_call_duration: Option<&Bound<'_, PyAny>>,
        slow_call_rate_threshold: Option<&Bound<'_, PyAny>>,
        open_duration: Option<&Bound<'_, PyAny>>,
        open_backoff_multiplier: Option<&Bound<'_, PyAny>>,
        max_open_duration: Option<&Bound<'_, PyAny>>,
        open_jitter: Option<&Bound<'_, PyAny>>,
        half_open_permits: Option<&Bound<'_, PyAny>>,
        half_open_max_wait: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, ManualClock>>,
        exclude: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        const U32: u64 = u32::MAX as u64;
        let b = Config::new(py, bw_breaker_config_new, bw_breaker_config_free)?;
        // SAFETY (every block below): `b.ptr()` is our live builder, used by this thread only.
        if window_size.is_some() && window_duration.is_some() {
            return Err(crate::convert::invalid(
                py,
                "window",
                "give window_size or window_duration, not both",
            ));
        }
        if let Some(v) = window_size {
            let n = count(v, "window.size", 0, U32)? as u32;
            status::check(py, unsafe { bw_breaker_config_set_count_window(b.ptr(), n) })?;
        }
        if let Some(v) = window_duration {
            let d = duration_ns(v, "window.duration", false)?;
            let buckets = window_buckets
                .map(|v| count(v, "window.buckets", 0, U32))
                .transpose()?
                .unwrap_or(10) as u32;
            status::check(py, unsafe {
                bw_breaker_config_set_time_window(b.ptr(), d, buckets)
            })?;
        }
        if let Some(v) = minimum_calls {
            let n = count(v, "minimum_calls", 0, U32)? as u32;
            status::check(py, unsafe { bw_breaker_config_set_minimum_calls(b.ptr(), n) })?;
        }
        if let Some(v) = failure_rate_threshold {
            let x = real(v, "failure_rate_threshold")?;
            status::check(py, unsafe {
                bw_breaker_config_set_failure_rate_threshold(b.ptr(), x)
            })?;
        }
        if let Some(v) = consecutive_failures {
            let n = count(v, "consecutive_failures", 0, U32)? as u32;
            status::check(py, unsafe {
                bw_breaker_config_set_consecutive_failures(b.ptr(), n)
            })?;
        }
        if slow_call_duration.is_some() || slow_call_rate_threshold.is_some() {
            let d = opt_duration_ns(slow_call_duration, "slow_call_duration", false)?
                .unwrap_or(u64::MAX / 2);
            let rate = slow_call_rate_threshold
                .map(|v| real(v, "slow_call_rate_threshold"))
                .transpose()?
                .unwrap_or(0.0);
            status::check(py, unsafe {
                bw_breaker_config_set_slow_calls(b.ptr(), d, rate)
            })?;
        }
        if let Some(v) = open_duration {
            let d = duration_ns(v, "open_duration", false)?;
            status::check(py, unsafe { bw_breaker_config_set_open_duration(b.ptr(), d) })?;
        }
        if open_backoff_multiplier.is_some() || max_open_duration.is_some() {
            let m = open_backoff_multiplier
                .map(|v| real(v, "open_backoff_multiplier"))
                .transpose()?
                .unwrap_or(1.0);
            let max = opt_duration_ns(max_open_duration, "max_open_duration", false)?
                .unwrap_or(300_000_000_000);
            status::check(py, unsafe {
                bw_breaker_config_set_open_backoff(b.ptr(), m, max)
            })?;
        }
        if let Some(v) = open_jitter {
            let x = real(v, "open_jitter")?;
            status::check(py, unsafe {
                bw_breaker_config_set_open_jitter(b.ptr(), x, crate::guard::next_seed())
            })?;
        }
        if half_open_permits.is_some() || half_open_max_wait.is_some() {
            let n = half_open_permits
                .map(|v| count(v, "half_open_permits", 0, U32))
                .transpose()?
                .unwrap_or(5) as u32;
            let w = opt_duration_ns(half_open_max_wait, "half_open_max_wait", false)?
                .unwrap_or(60_000_000_000);
            status::check(py, unsafe { bw_breaker_config_set_half_open(b.ptr(), n, w) })?;
        }
        let clock = clock_ptr(clock)?;
        // SAFETY: live builder, clock NULL or live, valid out-pointer.
        let out = status::out_ptr(py, |out| unsafe { bw_breaker_new(b.ptr(), clock, out) })?;
        let (types, predicate) = crate::guard::normalize_exclude(py, exclude)?;
        Ok(CircuitBreaker {
            handle: Handle::new(out, bw_breaker_free, "circuit breaker"),
            guard: Guard::new(py, name, Exclude::new(types, predicate))?,
            listeners: Default::default(),
        })
    }

    /// `"closed"`, `"open"`, `"half_open"`, `"forced_open"` or `"disabled"`.
    #[getter]
    fn state(&self) -> PyResult<&'static str> {
        // SAFETY: live handle.
        let code = unsafe { bw_breaker_state(self.handle.get()?) };
        Ok(breaker_state_name(code).unwrap_or("unknown"))
    }

    fn force_open(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_breaker_force_open(self.handle.get()?) })
    }

    fn disable(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_breaker_disable(self.handle.get()?) })
    }

    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_breaker_reset(self.handle.get()?) })
    }

    /// State and window counters (`BreakerSnapshot`).
    fn snapshot(&self, py: Python<'_>) -> PyResult<PyObject> {
        let mut s: bw_breaker_stats = zeroed();
        // SAFETY: live handle, valid out-pointer.
        status::check(py, unsafe {
            bw_breaker_get_stats(self.handle.get()?, &mut s)
        })?;
        let d = PyDict::new(py);
        d.set_item("name", self.guard.name.object())?;
        d.set_item("state", breaker_state_name(s.state).unwrap_or("unknown"))?;
        set_fields!(d, s; generation, calls, failures, slow_calls, consecutive_failures);
        d.set_item(
            "retry_after",
            (s.retry_after_ns > 0).then(|| seconds(s.retry_after_ns)),
        )?;
        set_fields!(d, s; open_level, half_open_in_flight);
        d.set_item("transitions", PyTuple::new(py, transitions!(s))?)?;
        crate::guard::call_helper(py, "breaker_snapshot", (d,))
    }

    /// Calls `listener(event)` after every state transition (an `Event`). Exceptions
    /// in it are logged, never raised into the call that caused the transition.
    fn on_transition(&self, py: Python<'_>, listener: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let ptr = self.handle.get()?;
        self.listeners.add(py, listener, |callback, data| {
            // SAFETY: live handle; the callback and its leaked data live forever.
            unsafe { bw_breaker_set_listener(ptr, callback, data) }
        })
    }
}
