//! Retries: `RetryRun` (the state of one logical call, driven by a policy's retry
//! section or by a standalone schedule), `RetrySchedule` (a standalone retry's
//! configuration) and `RetryBudget`.

use breakwater::ffi::policy_retry::{
    bw_policy_now, bw_policy_retry_begin, bw_policy_retry_next, BW_RETRY_ON_FAILURE,
    BW_RETRY_ON_TIMEOUT,
};
use breakwater::ffi::retry::{
    bw_retry_budget, bw_retry_budget_free, bw_retry_budget_get_stats, bw_retry_budget_new,
    bw_retry_budget_record_request, bw_retry_budget_stats, bw_retry_budget_try_withdraw,
    bw_retry_config, bw_retry_config_free, bw_retry_config_new, bw_retry_config_set_backoff,
    bw_retry_config_set_jitter, bw_retry_config_set_max_attempts, bw_retry_config_set_max_elapsed,
    bw_retry_state, bw_retry_state_free, bw_retry_state_new, bw_retry_state_next_delay,
    BW_GIVE_UP_ATTEMPTS_EXHAUSTED, BW_GIVE_UP_BUDGET_EXHAUSTED, BW_GIVE_UP_DEADLINE_EXCEEDED,
    BW_GIVE_UP_ELAPSED_EXCEEDED, BW_GIVE_UP_NOT_RETRYABLE, BW_RETRY_AFTER_NONE,
};
use breakwater::ffi::status::bw_status;
use breakwater::ffi::trace::bw_policy_retry_next_traced;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyDict;

use crate::clock::{clock_ptr, ManualClock};
use crate::convert::{count, duration_ns, opt_duration_ns, real};
use crate::guard::{next_seed, zeroed};
use crate::handle::{Config, Handle};
use crate::policy::Policy;
use crate::status;

/// Nanoseconds left before the caller's `breakwater.deadline`, or `None` outside one.
/// Read once per logical call, at its first miss: the success path never pays for it.
fn caller_time_left_ns(py: Python<'_>) -> PyResult<Option<u64>> {
    static LEFT_NS: GILOnceCell<Py<PyAny>> = GILOnceCell::new();
    LEFT_NS
        .import(py, "breakwater._deadline", "left_ns")?
        .call0()?
        .extract()
}

enum Driver {
    /// The policy's retry section, schedule, budget and counters.
    Policy(Py<Policy>),
    /// A standalone schedule and its optional budget.
    Schedule(Option<Py<RetryBudget>>),
}

/// The retry state of one logical call. Not shared between threads: one per call.
#[pyclass(module = "breakwater._breakwater")]
pub(crate) struct RetryRun {
    driver: Driver,
    state: *mut bw_retry_state,
}

// SAFETY: the state is plain data owned by this object; PyO3 hands `&mut self` to one
// thread at a time, so it is never used by two threads at once.
unsafe impl Send for RetryRun {}
// SAFETY: as for `Send`: every use goes through `&mut self`.
unsafe impl Sync for RetryRun {}

impl Drop for RetryRun {
    fn drop(&mut self) {
        // SAFETY: we own the state and free it once.
        unsafe { bw_retry_state_free(self.state) }
    }
}

impl RetryRun {
    pub(crate) fn for_policy(
        py: Python<'_>,
        policy: Py<Policy>,
        ptr: *const breakwater::ffi::policy::bw_policy,
    ) -> PyResult<Self> {
        let deadline = match caller_time_left_ns(py)? {
            // The caller's deadline on the policy's clock; 0 would mean none.
            // SAFETY: live policy.
            Some(left) => unsafe { bw_policy_now(ptr) }.saturating_add(left).max(1),
            None => 0,
        };
        Self::for_policy_with(py, policy, ptr, next_seed(), deadline)
    }

    /// A run with an explicit seed and deadline (`0`: none) on the policy's clock.
    pub(crate) fn for_policy_with(
        py: Python<'_>,
        policy: Py<Policy>,
        ptr: *const breakwater::ffi::policy::bw_policy,
        seed: u64,
        deadline_ns: u64,
    ) -> PyResult<Self> {
        let mut state: *mut bw_retry_state = std::ptr::null_mut();
        // SAFETY: live policy, valid out-pointer.
        status::check(py, unsafe {
            bw_policy_retry_begin(ptr, seed, deadline_ns, &mut state)
        })?;
        Ok(RetryRun {
            driver: Driver::Policy(policy),
            state,
        })
    }

    /// After a miss of class `what` (`BW_RETRY_ON_*`): `(true, delay_ns)` to retry,
    /// `(false, reason)` to give up. `now_ns` is read by standalone schedules only.
    pub(crate) fn next_raw(
        &mut self,
        py: Python<'_>,
        what: u32,
        hint_ns: u64,
        now_ns: u64,
    ) -> PyResult<(bool, u64)> {
        let mut delay = 0u64;
        let mut reason = 0i32;
        let code = match &self.driver {
            // The current span's context, as the policy's acquire reads it: the
            // budget-exhaustion event of a refused retry names the call's trace.
            Driver::Policy(p) => match crate::trace::current(py) {
                // SAFETY: live policy (held), our live unshared state, valid out-pointers.
                None => unsafe {
                    bw_policy_retry_next(
                        p.get().raw(),
                        self.state,
                        what,
                        hint_ns,
                        &mut delay,
                        &mut reason,
                    )
                },
                // SAFETY: as above, and a valid trace context.
                Some(trace) => unsafe {
                    bw_policy_retry_next_traced(
                        p.get().raw(),
                        self.state,
                        what,
                        hint_ns,
                        &trace,
                        &mut delay,
                        &mut reason,
                    )
                },
            },
            Driver::Schedule(budget) => {
                let budget = budget
                    .as_ref()
                    .map_or(std::ptr::null(), |b| b.get().handle.raw());
                // SAFETY: our live unshared state, live budget or NULL, valid out-pointers.
                unsafe {
                    bw_retry_state_next_delay(
                        self.state,
                        now_ns,
                        hint_ns,
                        budget,
                        &mut delay,
                        &mut reason,
                    )
                }
            }
        };
        match code {
            bw_status::BW_OK => Ok((true, delay)),
            bw_status::BW_RETRY_GIVE_UP => {
                if let (Driver::Policy(p), BW_GIVE_UP_BUDGET_EXHAUSTED) = (&self.driver, reason) {
                    // A retry the budget refused is a rejection of the call (Go's
                    // `Execute` reports it alike): the span event, when a span records.
                    crate::trace::on_rejection(
                        py,
                        &p.get().guard.name,
                        bw_status::BW_RETRY_BUDGET_EXHAUSTED as i32,
                        0,
                    );
                }
                Ok((false, reason as u64))
            }
            other => Err(status::error(py, other as i32)),
        }
    }
}

/// The retry class of a miss named as in the policy file's `retry_on`.
fn retry_class(py: Python<'_>, what: &str) -> PyResult<u32> {
    let code = match what {
        "failure" => return Ok(BW_RETRY_ON_FAILURE),
        "timeout" => return Ok(BW_RETRY_ON_TIMEOUT),
        "circuit_open" => bw_status::BW_CIRCUIT_OPEN,
        "rate_limited" => bw_status::BW_RATE_LIMITED,
        "bulkhead_full" => bw_status::BW_BULKHEAD_FULL,
        "load_shed" => bw_status::BW_LOAD_SHED,
        "retry_budget_exhausted" => bw_status::BW_RETRY_BUDGET_EXHAUSTED,
        "injected" => bw_status::BW_INJECTED_REJECTION,
        other => {
            return Err(status::error_with(
                py,
                bw_status::BW_INVALID_ARGUMENT as i32,
                &format!(
                    "unknown miss {other:?} (expected failure, timeout or a rejection reason)"
                ),
            ))
        }
    };
    // A rejection's class is bit 1 + its status (`BW_RETRY_ON_CIRCUIT_OPEN`, ...).
    Ok(1 << (1 + code as u32))
}

fn give_up_reason(code: u64) -> &'static str {
    match code as i32 {
        BW_GIVE_UP_ATTEMPTS_EXHAUSTED => "attempts_exhausted",
        BW_GIVE_UP_ELAPSED_EXCEEDED => "elapsed_exceeded",
        BW_GIVE_UP_DEADLINE_EXCEEDED => "deadline_exceeded",
        BW_GIVE_UP_BUDGET_EXHAUSTED => "budget_exhausted",
        BW_GIVE_UP_NOT_RETRYABLE => "not_retryable",
        _ => "unknown",
    }
}

#[pymethods]
impl RetryRun {
    /// After an attempt missed: `what` is `"failure"`, `"timeout"` or the rejection
    /// reason (`"circuit_open"`, `"rate_limited"`, ...), `retry_after_ns` the
    /// rejection's hint. `(True, delay_ns)` to retry after `delay_ns`, or `(False,
    /// reason)` to give up (`"attempts_exhausted"`, `"elapsed_exceeded"`,
    /// `"deadline_exceeded"`, `"budget_exhausted"`, `"not_retryable"`).
    #[pyo3(signature = (what, retry_after_ns = None))]
    fn next_ns(
        &mut self,
        py: Python<'_>,
        what: &str,
        retry_after_ns: Option<u64>,
    ) -> PyResult<(bool, PyObject)> {
        let class = retry_class(py, what)?;
        let hint = retry_after_ns.unwrap_or(BW_RETRY_AFTER_NONE);
        let (retry, value) = self.next_raw(py, class, hint, 0)?;
        Ok(if retry {
            (true, value.into_pyobject(py)?.into_any().unbind())
        } else {
            (
                false,
                give_up_reason(value).into_pyobject(py)?.into_any().unbind(),
            )
        })
    }

    /// After a miss of class `what`: `(True, delay_seconds)` or `(False, reason)`.
    #[pyo3(signature = (what, retry_after = None, now_ns = 0))]
    fn next(
        &mut self,
        py: Python<'_>,
        what: u32,
        retry_after: Option<f64>,
        now_ns: u64,
    ) -> PyResult<(bool, f64)> {
        let hint = match retry_after {
            Some(s) if s > 0.0 && s.is_finite() => (s * 1e9) as u64,
            _ => BW_RETRY_AFTER_NONE,
        };
        let (retry, value) = self.next_raw(py, what, hint, now_ns)?;
        Ok((
            retry,
            if retry {
                crate::convert::seconds(value)
            } else {
                value as f64
            },
        ))
    }
}

/// A retry budget: retries may add at most `ratio` of the traffic plus
/// `min_per_second`, over a sliding `window`. Share one between retries.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct RetryBudget {
    handle: Handle<bw_retry_budget>,
}

#[pymethods]
impl RetryBudget {
    #[new]
    #[pyo3(signature = (*, ratio = None, min_per_second = None, window = None, clock = None))]
    fn new(
        py: Python<'_>,
        ratio: Option<&Bound<'_, PyAny>>,
        min_per_second: Option<&Bound<'_, PyAny>>,
        window: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, ManualClock>>,
    ) -> PyResult<Self> {
        let ratio = ratio
            .map(|r| real(r, "budget.ratio"))
            .transpose()?
            .unwrap_or(0.2);
        let min = min_per_second
            .map(|m| count(m, "budget.min_per_second", 0, u64::from(u32::MAX)))
            .transpose()?
            .unwrap_or(10) as u32;
        let window = opt_duration_ns(window, "budget.window", false)?.unwrap_or(10_000_000_000);
        let mut out: *mut bw_retry_budget = std::ptr::null_mut();
        // SAFETY: clock NULL or live, valid out-pointer.
        status::check(py, unsafe {
            bw_retry_budget_new(ratio, min, window, clock_ptr(clock)?, &mut out)
        })?;
        Ok(RetryBudget {
            handle: Handle::new(out, bw_retry_budget_free, "retry budget"),
        })
    }

    /// Records one request (a first attempt).
    fn record_request(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe {
            bw_retry_budget_record_request(self.handle.get()?)
        })
    }

    /// Asks for one retry: `True` if granted (and counted).
    fn try_withdraw(&self, py: Python<'_>) -> PyResult<bool> {
        // SAFETY: live handle.
        match unsafe { bw_retry_budget_try_withdraw(self.handle.get()?) } {
            bw_status::BW_OK => Ok(true),
            bw_status::BW_RETRY_BUDGET_EXHAUSTED => Ok(false),
            other => Err(status::error(py, other as i32)),
        }
    }

    /// `{"requests", "retries", "available"}` in the window now.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut s: bw_retry_budget_stats = zeroed();
        // SAFETY: live handle, valid out-pointer.
        status::check(py, unsafe {
            bw_retry_budget_get_stats(self.handle.get()?, &mut s)
        })?;
        let d = PyDict::new(py);
        crate::metrics::set_fields!(d, s; requests, retries, available);
        Ok(d)
    }
}

/// A standalone retry's schedule (immutable after construction, shared by calls).
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct RetrySchedule {
    config: ConfigBox,
    budget: Option<Py<RetryBudget>>,
}

struct ConfigBox(Config<bw_retry_config>);
// SAFETY: the builder is never mutated after `RetrySchedule::new`; concurrent readers
// (`bw_retry_state_new`) only read it.
unsafe impl Send for ConfigBox {}
// SAFETY: as for `Send`.
unsafe impl Sync for ConfigBox {}

fn jitter_code(py: Python<'_>, jitter: &str) -> PyResult<i32> {
    match jitter {
        "none" => Ok(0),
        "full" => Ok(1),
        "equal" => Ok(2),
        "decorrelated" => Ok(3),
        other => Err(crate::convert::invalid(
            py,
            "backoff.jitter",
            &format!("unknown jitter {other:?} (expected none, full, equal or decorrelated)"),
        )),
    }
}

#[pymethods]
impl RetrySchedule {
    #[new]
    #[pyo3(signature = (*, max_attempts, initial, multiplier, max, jitter, max_elapsed = None, budget = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        max_attempts: &Bound<'_, PyAny>,
        initial: &Bound<'_, PyAny>,
        multiplier: &Bound<'_, PyAny>,
        max: &Bound<'_, PyAny>,
        jitter: &str,
        max_elapsed: Option<&Bound<'_, PyAny>>,
        budget: Option<Py<RetryBudget>>,
    ) -> PyResult<Self> {
        let attempts = count(max_attempts, "max_attempts", 1, u64::from(u32::MAX))? as u32;
        let initial = duration_ns(initial, "backoff.initial", false)?;
        let multiplier = real(multiplier, "backoff.multiplier")?;
        let max = duration_ns(max, "backoff.max", false)?;
        let elapsed = opt_duration_ns(max_elapsed, "max_elapsed", false)?.unwrap_or(0);
        let jitter = jitter_code(py, jitter)?;
        let config = ConfigBox(Config::new(py, bw_retry_config_new, bw_retry_config_free)?);
        // SAFETY: our live builder, not shared yet.
        unsafe {
            status::check(
                py,
                bw_retry_config_set_max_attempts(config.0.ptr(), attempts),
            )?;
            status::check(
                py,
                bw_retry_config_set_backoff(config.0.ptr(), initial, multiplier, max),
            )?;
            status::check(py, bw_retry_config_set_jitter(config.0.ptr(), jitter))?;
            status::check(py, bw_retry_config_set_max_elapsed(config.0.ptr(), elapsed))?;
        }
        // Validate now (a state validates its configuration), not at the first miss.
        let mut probe: *mut bw_retry_state = std::ptr::null_mut();
        // SAFETY: live builder, valid out-pointer; the probe is freed at once.
        unsafe {
            status::check(py, bw_retry_state_new(config.0.ptr(), 1, 1, 0, &mut probe))?;
            bw_retry_state_free(probe);
        }
        Ok(RetrySchedule { config, budget })
    }

    /// Records one logical call in the budget (if any).
    fn record_request(&self, py: Python<'_>) -> PyResult<()> {
        match &self.budget {
            Some(b) => b.get().record_request(py),
            None => Ok(()),
        }
    }

    /// The retry run of one call whose first attempt started at `start_ns` (on the
    /// caller's clock), with an absolute `deadline_ns` (0 = none).
    #[pyo3(signature = (start_ns, deadline_ns = 0))]
    fn start(&self, py: Python<'_>, start_ns: u64, deadline_ns: u64) -> PyResult<RetryRun> {
        let mut state: *mut bw_retry_state = std::ptr::null_mut();
        // SAFETY: live, never-mutated builder; valid out-pointer.
        status::check(py, unsafe {
            bw_retry_state_new(
                self.config.0.ptr(),
                next_seed(),
                start_ns,
                deadline_ns,
                &mut state,
            )
        })?;
        Ok(RetryRun {
            driver: Driver::Schedule(self.budget.as_ref().map(|b| b.clone_ref(py))),
            state,
        })
    }
}
