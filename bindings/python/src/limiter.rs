//! `RateLimiter`: a standalone GCRA rate limiter (`bw_limiter_*`).

use std::sync::Mutex;

use breakwater::ffi::limiter::{
    bw_limiter, bw_limiter_acquire, bw_limiter_available, bw_limiter_cancel,
    bw_limiter_config_free, bw_limiter_config_new, bw_limiter_config_set_burst,
    bw_limiter_config_set_rate, bw_limiter_free, bw_limiter_get_metrics, bw_limiter_new,
    bw_limiter_reserve, bw_limiter_try_acquire, bw_reservation,
};
use pyo3::prelude::*;

use crate::clock::{clock_ptr, ManualClock};
use crate::convert::{count, duration_ns, opt_duration_ns, seconds};
use crate::guard::{guard_methods, zeroed, Exclude, Guard, Refusal, Ticket};
use crate::handle::{Config, Handle, SendPtr};
use crate::status;

/// A rate limiter: `rate` permits per `period`, bursts up to `burst`. As a decorator
/// or context manager it takes one permit, waiting up to `max_wait` (sleeping the
/// thread with the GIL released, or `asyncio.sleep` in a coroutine). Thread-safe.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct RateLimiter {
    handle: Handle<bw_limiter>,
    pub(crate) guard: Guard,
    max_wait_ns: u64,
}

impl RateLimiter {
    #[inline]
    pub(crate) fn acquire_ticket(
        &self,
        py: Python<'_>,
        wait: bool,
        n: u64,
    ) -> Result<Ticket, Refusal> {
        let ptr = self.handle.get()?;
        let mut after = 0u64;
        let code = if wait && self.max_wait_ns > 0 {
            let (p, max_wait) = (SendPtr(ptr), self.max_wait_ns);
            py.allow_threads(move || {
                let p = p;
                let mut after = 0u64;
                // SAFETY: live handle (held by the Python object), valid out-pointer.
                let code = unsafe { bw_limiter_acquire(p.0, n, max_wait, &mut after) } as i32;
                (code, after)
            })
            .0
        } else {
            // SAFETY: live handle, valid out-pointer.
            unsafe { bw_limiter_try_acquire(ptr, n, &mut after) as i32 }
        };
        if code == status::OK {
            Ok(Ticket::Limiter)
        } else if status::is_rejection(code) {
            Err(Refusal::Rejected(code, after))
        } else {
            Err(Refusal::Error(status::error(py, code)))
        }
    }

    fn refusal(&self, py: Python<'_>, r: Refusal) -> PyErr {
        match r {
            Refusal::Rejected(code, after) => status::rejection(py, code, after, &self.guard.name),
            Refusal::Error(e) => e,
        }
    }
}

/// A committed future slot (`RateLimiter._reserve`): go ahead after `wait`, or
/// `cancel()` it to give the permits back.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct Reservation {
    limiter: Py<RateLimiter>,
    slot: Mutex<bw_reservation>,
    /// Seconds to wait before going ahead.
    #[pyo3(get)]
    wait: f64,
    /// Nanoseconds to wait before going ahead (exact).
    #[pyo3(get)]
    wait_ns: u64,
}

#[pymethods]
impl Reservation {
    /// Gives the permits back if nothing was admitted after them; `True` if they went
    /// back.
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut cancelled = false;
        // SAFETY: live limiter (held), our reservation, not shared (locked).
        let code = unsafe {
            bw_limiter_cancel(self.limiter.get().handle.raw(), &mut *slot, &mut cancelled)
        } as i32;
        if code == status::OK {
            Ok(cancelled)
        } else {
            Err(status::error(py, code))
        }
    }
}

guard_methods! {
    RateLimiter, Limiter, "RateLimiter", metrics = bw_limiter_get_metrics, max_wait;
    #[new]
    #[pyo3(signature = (*, rate, period = None, burst = None, max_wait = None, name = "limiter".to_string(), clock = None))]
    fn new(
        py: Python<'_>,
        rate: &Bound<'_, PyAny>,
        period: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
        max_wait: Option<&Bound<'_, PyAny>>,
        name: String,
        clock: Option<&Bound<'_, ManualClock>>,
    ) -> PyResult<Self> {
        let rate = count(rate, "rate", 0, u64::MAX)?;
        let period = opt_duration_ns(period, "period", false)?.unwrap_or(1_000_000_000);
        let max_wait_ns = opt_duration_ns(max_wait, "max_wait", true)?.unwrap_or(0);
        let b = Config::new(py, bw_limiter_config_new, bw_limiter_config_free)?;
        // SAFETY: our live builder, this thread only.
        status::check(py, unsafe { bw_limiter_config_set_rate(b.ptr(), rate, period) })?;
        if let Some(v) = burst {
            let n = count(v, "burst", 0, u64::MAX)?;
            // SAFETY: as above.
            status::check(py, unsafe { bw_limiter_config_set_burst(b.ptr(), n) })?;
        }
        let clock = clock_ptr(clock)?;
        // SAFETY: live builder, clock NULL or live, valid out-pointer.
        let out = status::out_ptr(py, |out| unsafe { bw_limiter_new(b.ptr(), clock, out) })?;
        Ok(RateLimiter {
            handle: Handle::new(out, bw_limiter_free, "rate limiter"),
            guard: Guard::new(py, name, Exclude::none())?,
            max_wait_ns,
        })
    }

    /// Takes `n` permits now, or none: `True` if taken. Raises `NeverPassesError` when
    /// `n` exceeds the burst.
    #[pyo3(signature = (n = None))]
    fn try_acquire(&self, py: Python<'_>, n: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let n = n
            .map(|n| count(n, "n", 0, u64::MAX))
            .transpose()?
            .unwrap_or(1);
        let mut after = 0u64;
        // SAFETY: live handle, valid out-pointer.
        let code = unsafe { bw_limiter_try_acquire(self.handle.get()?, n, &mut after) } as i32;
        if code == status::OK {
            Ok(true)
        } else if status::is_rejection(code) {
            Ok(false)
        } else {
            Err(status::error(py, code))
        }
    }

    /// Takes `n` permits, sleeping (GIL released) up to `timeout` seconds for them
    /// (default: the limiter's `max_wait`); raises `RateLimitedError` otherwise.
    #[pyo3(signature = (n = None, timeout = None))]
    fn acquire(
        &self,
        py: Python<'_>,
        n: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let n = n
            .map(|n| count(n, "n", 0, u64::MAX))
            .transpose()?
            .unwrap_or(1);
        let max_wait = opt_duration_ns(timeout, "timeout", true)?.unwrap_or(self.max_wait_ns);
        let p = SendPtr(self.handle.get()?);
        let (code, after) = py.allow_threads(move || {
            let p = p;
            let mut after = 0u64;
            // SAFETY: live handle (held by `self`), valid out-pointer.
            let code = unsafe { bw_limiter_acquire(p.0, n, max_wait, &mut after) } as i32;
            (code, after)
        });
        if code == status::OK {
            Ok(())
        } else {
            Err(status::status_err(py, code, after, &self.guard.name))
        }
    }

    /// Commits `n` permits due within `max_wait` seconds (never blocks): a
    /// `Reservation` to wait for, or `RateLimitedError`.
    fn _reserve(
        slf: &Bound<'_, Self>,
        n: u64,
        max_wait: &Bound<'_, PyAny>,
    ) -> PyResult<Reservation> {
        let py = slf.py();
        let me = slf.get();
        let max_wait = duration_ns(max_wait, "max_wait", true)?;
        let mut slot: bw_reservation = zeroed();
        let mut after = 0u64;
        // SAFETY: live handle, valid out-pointers.
        let code =
            unsafe { bw_limiter_reserve(me.handle.get()?, n, max_wait, &mut slot, &mut after) }
                as i32;
        if code != status::OK {
            return Err(me.refusal(
                py,
                if status::is_rejection(code) {
                    Refusal::Rejected(code, after)
                } else {
                    Refusal::Error(status::error(py, code))
                },
            ));
        }
        Ok(Reservation {
            limiter: slf.clone().unbind(),
            wait: seconds(slot.wait_ns),
            wait_ns: slot.wait_ns,
            slot: Mutex::new(slot),
        })
    }

    /// Commits `n` permits that fall due within `max_wait` (seconds or `timedelta`),
    /// without blocking: a `Reservation` (wait `reservation.wait` before going ahead,
    /// or `cancel()` it to give the permits back), or `RateLimitedError` saying when
    /// they would pass; `NeverPassesError` when `n` exceeds the burst.
    #[pyo3(signature = (n = 1, *, max_wait))]
    fn reserve(
        slf: &Bound<'_, Self>,
        n: u64,
        max_wait: &Bound<'_, PyAny>,
    ) -> PyResult<Reservation> {
        Self::_reserve(slf, n, max_wait)
    }

    /// A permit for permits already taken (by a waited-out reservation).
    fn _granted(slf: &Bound<'_, Self>) -> crate::guard::Permit {
        crate::guard::Permit::new(
            crate::guard::Target::Limiter(slf.clone().unbind()),
            Ticket::Limiter,
        )
    }

    /// Permits that would pass now.
    #[getter]
    fn available(&self) -> PyResult<u64> {
        // SAFETY: live handle.
        Ok(unsafe { bw_limiter_available(self.handle.get()?) })
    }
}
