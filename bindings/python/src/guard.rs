//! What every guard (policy, breaker, limiter, bulkhead) shares: the `Target` they
//! dispatch through, the `Permit` handed to Python, the decorator `Guarded` whose
//! `__call__` runs a whole synchronous call in one crossing, and the context-manager
//! stack kept in a `ContextVar` (so threads and asyncio tasks each see their own).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use breakwater::ffi::breaker::bw_breaker_permit;
use breakwater::ffi::codes::{
    BW_OUTCOME_FAILURE, BW_OUTCOME_IGNORED, BW_OUTCOME_SUCCESS, BW_OUTCOME_TIMEOUT,
    BW_PERMIT_INJECTED_FAILURE,
};
use breakwater::ffi::keyed::bw_keyed_permit;
use breakwater::ffi::policy::bw_permit;
use breakwater::ffi::policy_retry::{BW_RETRY_ON_FAILURE, BW_RETRY_ON_TIMEOUT};
use breakwater::ffi::retry::{BW_GIVE_UP_BUDGET_EXHAUSTED, BW_RETRY_AFTER_NONE};
use breakwater::ffi::trace::bw_trace_context;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::breaker::CircuitBreaker;
use crate::bulkhead::Bulkhead;
use crate::keyed::KeyedPolicy;
use crate::limiter::RateLimiter;
use crate::policy::Policy;
use crate::retry::RetryRun;
use crate::status;

/// A zeroed ABI struct: the ABI asks callers to zero-initialise permits.
pub(crate) fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for the ABI's `#[repr(C)]` plain-data structs (integers and
    // flags), for which all-zero bytes are a valid value.
    unsafe { std::mem::MaybeUninit::<T>::zeroed().assume_init() }
}

/// A different, unpredictable seed for every retry loop (jitter) and breaker: the
/// randomly keyed SipHash of the standard library's `RandomState`, whose keys are drawn
/// once per thread and then stepped for each new state, so no lock and no generator
/// of our own.
pub(crate) fn next_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

/// A guard's name as Rust text (messages) and as a Python string made once, so a
/// rejection names its guard without building a string per call.
pub(crate) struct Name {
    text: String,
    object: Py<PyString>,
}

impl Name {
    pub(crate) fn new(py: Python<'_>, text: String) -> Self {
        let object = PyString::new(py, &text).unbind();
        Name { text, object }
    }

    pub(crate) fn object(&self) -> &Py<PyString> {
        &self.object
    }
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.text.fmt(f)
    }
}

/// What a guard hands out on admission.
pub(crate) enum Ticket {
    /// A policy permit, and the trace context it was taken with (its completion
    /// carries the same).
    Policy(bw_permit, Option<bw_trace_context>),
    /// A policy permit holding a key's slot (`acquire_key`, `policy.key(k)`), and its
    /// trace context as in `Policy`.
    Keyed(bw_keyed_permit, Option<bw_trace_context>),
    Breaker(bw_breaker_permit),
    /// A limiter gives nothing back.
    Limiter,
    /// One bulkhead slot, released once.
    Bulkhead,
}

impl Ticket {
    /// `(injected failure, injected latency ns)`: only policies inject faults. Reads
    /// only `flags` and `injected_latency_ns`, the fields the ABI lets callers read.
    #[inline]
    pub(crate) fn injected(&self) -> (bool, u64) {
        match self {
            Ticket::Policy(p, _) | Ticket::Keyed(bw_keyed_permit { permit: p, .. }, _) => (
                p.flags & BW_PERMIT_INJECTED_FAILURE != 0,
                p.injected_latency_ns,
            ),
            _ => (false, 0),
        }
    }
}

/// Why an acquire gave no ticket.
pub(crate) enum Refusal {
    /// A rejection status (1–6) and its retry-after hint (ns, 0 = unknown).
    Rejected(i32, u64),
    Error(PyErr),
}

impl From<PyErr> for Refusal {
    fn from(e: PyErr) -> Self {
        Refusal::Error(e)
    }
}

/// The guard a permit or decorator belongs to.
pub(crate) enum Target {
    Policy(Py<Policy>),
    Breaker(Py<CircuitBreaker>),
    Limiter(Py<RateLimiter>),
    Bulkhead(Py<Bulkhead>),
    /// A policy's calls for one key.
    Keyed(Py<KeyedPolicy>),
}

impl Target {
    pub(crate) fn name(&self) -> &Name {
        match self {
            Target::Policy(p) => &p.get().guard.name,
            Target::Breaker(p) => &p.get().guard.name,
            Target::Limiter(p) => &p.get().guard.name,
            Target::Bulkhead(p) => &p.get().guard.name,
            Target::Keyed(k) => &k.get().policy().guard.name,
        }
    }

    /// Asks for admission. `wait`: blocking waits (bulkhead, limiter `max_wait`) are
    /// allowed, with the GIL released.
    #[inline]
    pub(crate) fn acquire(
        &self,
        py: Python<'_>,
        wait: bool,
        priority: i32,
    ) -> Result<Ticket, Refusal> {
        match self {
            Target::Policy(p) => p.get().acquire_ticket(py, wait, priority),
            Target::Breaker(p) => p.get().acquire_ticket(),
            Target::Limiter(p) => p.get().acquire_ticket(py, wait, 1),
            Target::Bulkhead(p) => p.get().acquire_ticket(py, wait),
            Target::Keyed(k) => {
                let k = k.get();
                k.policy()
                    .acquire_keyed_ticket(py, wait, priority, k.key_bytes())
            }
        }
    }

    /// Gives the ticket back with `outcome`; returns the status (no GIL needed).
    #[inline]
    pub(crate) fn complete(&self, ticket: &mut Ticket, outcome: i32) -> i32 {
        match (self, ticket) {
            (Target::Policy(p), Ticket::Policy(permit, trace)) => {
                p.get().complete_permit(permit, trace.as_ref(), outcome)
            }
            (Target::Policy(p), Ticket::Keyed(permit, trace)) => {
                p.get().complete_keyed(permit, trace.as_ref(), outcome)
            }
            (Target::Keyed(k), Ticket::Keyed(permit, trace)) => {
                k.get()
                    .policy()
                    .complete_keyed(permit, trace.as_ref(), outcome)
            }
            (Target::Breaker(b), Ticket::Breaker(permit)) => {
                b.get().complete_permit(permit, outcome)
            }
            (Target::Limiter(_), Ticket::Limiter) => status::OK,
            (Target::Bulkhead(b), Ticket::Bulkhead) => b.get().release_slot(),
            _ => breakwater::ffi::status::bw_status::BW_WRONG_HANDLE as i32,
        }
    }

    fn complete_checked(&self, py: Python<'_>, ticket: &mut Ticket, outcome: i32) -> PyResult<()> {
        let code = self.complete(ticket, outcome);
        if code == status::OK {
            Ok(())
        } else {
            Err(status::error(py, code))
        }
    }

    fn timeout_ns(&self) -> u64 {
        match self {
            Target::Policy(p) => p.get().timeout_ns(),
            Target::Keyed(k) => k.get().policy().timeout_ns(),
            _ => 0,
        }
    }

    fn begin_retry(&self, py: Python<'_>) -> PyResult<Option<RetryRun>> {
        match self {
            Target::Policy(p) => p.get().begin_retry(py, p.clone_ref(py)),
            Target::Keyed(k) => {
                let policy = k.get().policy_object();
                policy.get().begin_retry(py, policy.clone_ref(py))
            }
            _ => Ok(None),
        }
    }

    pub(crate) fn rejection(&self, py: Python<'_>, code: i32, retry_after_ns: u64) -> PyErr {
        status::rejection_named(py, code, retry_after_ns, self.name().object().bind(py))
    }
}

/// What every guard (policy, breaker, limiter, bulkhead) keeps for its decorator and
/// `with` blocks: its name, its `with` stack (a `ContextVar` of this context's
/// permits) and its exclusions.
pub(crate) struct Guard {
    pub(crate) name: Name,
    pub(crate) stack: Py<PyAny>,
    pub(crate) exclude: Exclude,
}

impl Guard {
    pub(crate) fn new(py: Python<'_>, name: String, exclude: Exclude) -> PyResult<Self> {
        Ok(Guard {
            name: Name::new(py, name),
            stack: new_stack_var(py)?,
            exclude,
        })
    }
}

/// Which raised exceptions do not count as failures: types and/or a predicate.
pub(crate) struct Exclude {
    types: Option<Py<PyTuple>>,
    predicate: Option<Py<PyAny>>,
}

impl Exclude {
    pub(crate) fn none() -> Self {
        Exclude {
            types: None,
            predicate: None,
        }
    }

    pub(crate) fn new(types: Option<Py<PyTuple>>, predicate: Option<Py<PyAny>>) -> Self {
        Exclude { types, predicate }
    }

    /// The outcome of a call that raised `err`: an excluded exception is a success (as
    /// pybreaker's `exclude`); a `BaseException` that is not an `Exception`
    /// (cancellation, interrupt, exit) says nothing about the dependency: ignored.
    pub(crate) fn outcome_of(&self, py: Python<'_>, err: &PyErr) -> PyResult<i32> {
        let value = err.value(py);
        if !value.is_instance_of::<PyException>() {
            return Ok(BW_OUTCOME_IGNORED);
        }
        if let Some(types) = &self.types {
            if value.is_instance(types.bind(py).as_any())? {
                return Ok(BW_OUTCOME_SUCCESS);
            }
        }
        if let Some(predicate) = &self.predicate {
            if predicate.bind(py).call1((value,))?.is_truthy()? {
                return Ok(BW_OUTCOME_SUCCESS);
            }
        }
        Ok(BW_OUTCOME_FAILURE)
    }
}

/// A permit of a guard, given to Python by `with`, `async with` and `_acquire`.
/// Complete it once; one dropped without completion is completed as ignored, so a
/// permit is never leaked.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct Permit {
    target: Target,
    ticket: Mutex<Option<Ticket>>,
}

impl Permit {
    pub(crate) fn new(target: Target, ticket: Ticket) -> Self {
        Permit {
            target,
            ticket: Mutex::new(Some(ticket)),
        }
    }

    /// The ticket slot (`None` once completed). A panic while it was held cannot leave
    /// it half-written (it is only ever taken whole), so a poisoned lock is still good.
    #[inline]
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Ticket>> {
        self.ticket.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> Option<Ticket> {
        self.slot().take()
    }

    pub(crate) fn finish(&self, py: Python<'_>, outcome: i32) -> PyResult<()> {
        match self.take() {
            Some(mut ticket) => self.target.complete_checked(py, &mut ticket, outcome),
            None => Err(status::error_with(
                py,
                breakwater::ffi::status::bw_status::BW_PERMIT_ALREADY_USED as i32,
                "the permit was already completed",
            )),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(mut ticket) = self.take() {
            // Nothing to report to: a permit dropped unfinished frees its slot only.
            let _ = self.target.complete(&mut ticket, BW_OUTCOME_IGNORED);
        }
    }
}

fn outcome_code(outcome: &str) -> Option<i32> {
    match outcome {
        "success" => Some(BW_OUTCOME_SUCCESS),
        "failure" => Some(BW_OUTCOME_FAILURE),
        "timeout" => Some(BW_OUTCOME_TIMEOUT),
        "ignored" => Some(BW_OUTCOME_IGNORED),
        _ => None,
    }
}

#[pymethods]
impl Permit {
    /// Reports how the call went: `"success"`, `"failure"`, `"timeout"` or
    /// `"ignored"`. A second completion raises `PermitUsedError`.
    fn complete(&self, py: Python<'_>, outcome: &str) -> PyResult<()> {
        let code = outcome_code(outcome).ok_or_else(|| {
            status::error_with(
                py,
                breakwater::ffi::status::bw_status::BW_INVALID_ARGUMENT as i32,
                &format!(
                    "unknown outcome {outcome:?} (expected success, failure, timeout or ignored)"
                ),
            )
        })?;
        self.finish(py, code)
    }

    /// Completes with the outcome of a raised exception under the guard's exclusions,
    /// or success when `exc` is `None`.
    /// Returns the outcome code (0 success, 1 failure, 3 ignored).
    #[pyo3(signature = (exc, exclude_types = None, exclude_predicate = None))]
    fn complete_with(
        &self,
        py: Python<'_>,
        exc: Option<Bound<'_, PyAny>>,
        exclude_types: Option<Py<PyTuple>>,
        exclude_predicate: Option<Py<PyAny>>,
    ) -> PyResult<i32> {
        let outcome = match exc {
            None => BW_OUTCOME_SUCCESS,
            Some(e) => Exclude::new(exclude_types, exclude_predicate)
                .outcome_of(py, &PyErr::from_value(e))?,
        };
        self.finish(py, outcome)?;
        Ok(outcome)
    }

    /// Whether fault injection decided this call fails (skip it).
    #[getter]
    fn injected_failure(&self) -> bool {
        self.slot().as_ref().is_some_and(|t| t.injected().0)
    }

    /// Latency to inject before the call, in seconds (0.0 for none).
    #[getter]
    fn injected_latency(&self) -> f64 {
        crate::convert::seconds(self.injected_latency_ns())
    }

    /// Latency to inject before the call, in nanoseconds (0 for none).
    #[getter]
    fn injected_latency_ns(&self) -> u64 {
        self.slot().as_ref().map_or(0, |t| t.injected().1)
    }

    /// Whether the permit was completed.
    #[getter]
    fn done(&self) -> bool {
        self.slot().is_none()
    }
}

static GUARD_HELPERS: GILOnceCell<Py<PyModule>> = GILOnceCell::new();

/// `breakwater._guard`: the Python half (decorating, asyncio glue).
pub(crate) fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    GUARD_HELPERS
        .get_or_try_init(py, || Ok(py.import("breakwater._guard")?.unbind()))
        .map(|m| m.bind(py))
}

/// `breakwater._guard.NAME(*args)`.
#[inline]
pub(crate) fn call_helper<'py>(
    py: Python<'py>,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<PyObject> {
    Ok(helpers(py)?.getattr(name)?.call1(args)?.unbind())
}

/// A new `ContextVar` for a guard's `with` stack.
fn new_stack_var(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(py
        .import("contextvars")?
        .getattr("ContextVar")?
        .call1(("breakwater.permits",))?
        .unbind())
}

/// Sleeps with the GIL released, then lets a pending signal (Ctrl-C) raise.
pub(crate) fn sleep_ns(py: Python<'_>, ns: u64) -> PyResult<()> {
    if ns > 0 {
        py.allow_threads(|| std::thread::sleep(Duration::from_nanos(ns)));
        py.check_signals()?;
    }
    Ok(())
}

/// `__enter__`: acquire (waiting if configured), push the permit on this context's
/// stack, and return it. An injected fault fails here, since the block cannot be
/// skipped otherwise.
pub(crate) fn enter(py: Python<'_>, target: Target, stack: &Py<PyAny>) -> PyResult<Py<Permit>> {
    let ticket = match target.acquire(py, true, breakwater::ffi::codes::BW_PRIORITY_DEFAULT) {
        Ok(t) => t,
        Err(Refusal::Rejected(code, after)) => return Err(target.rejection(py, code, after)),
        Err(Refusal::Error(e)) => return Err(e),
    };
    let (failure, latency) = ticket.injected();
    let permit = Py::new(py, Permit::new(target, ticket))?;
    sleep_ns(py, latency)?;
    if failure {
        permit.get().finish(py, BW_OUTCOME_FAILURE)?;
        return Err(injected_fault(py, permit.get().target.name()));
    }
    let var = stack.bind(py);
    let below = var.call_method1("get", (py.None(),))?;
    var.call_method1(
        "set",
        (PyTuple::new(
            py,
            [permit.clone_ref(py).into_any(), below.unbind()],
        )?,),
    )?;
    Ok(permit)
}

/// `__exit__`: pop this context's permit and complete it from the exception.
pub(crate) fn exit(
    py: Python<'_>,
    stack: &Py<PyAny>,
    exc: Option<Bound<'_, PyAny>>,
    exclude: &Exclude,
) -> PyResult<bool> {
    let var = stack.bind(py);
    let top = var.call_method1("get", (py.None(),))?;
    if top.is_none() {
        return Err(status::internal("__exit__ without a matching __enter__"));
    }
    let top = top.downcast_into::<PyTuple>()?;
    var.call_method1("set", (top.get_item(1)?,))?;
    let permit = top.get_item(0)?.downcast_into::<Permit>()?;
    let outcome = match exc {
        Some(e) if !e.is_none() => exclude.outcome_of(py, &PyErr::from_value(e))?,
        _ => BW_OUTCOME_SUCCESS,
    };
    permit.get().finish(py, outcome)?;
    Ok(false)
}

/// `__aexit__`: as `exit`, handed back as a finished awaitable (completing never
/// waits); a block entered with a policy timeout (an entry of three items: its timer
/// is the third) goes to `_guard.aexit_cut`, which stops the timer and records a cut.
pub(crate) fn aexit(
    py: Python<'_>,
    guard: &Guard,
    exc: Option<Bound<'_, PyAny>>,
) -> PyResult<PyObject> {
    let top = guard.stack.bind(py).call_method1("get", (py.None(),))?;
    if let Ok(entry) = top.downcast::<PyTuple>() {
        if entry.len() == 3 {
            return call_helper(
                py,
                "aexit_cut",
                (
                    guard.name.object(),
                    &guard.stack,
                    entry,
                    exc,
                    guard.exclude.parts(py),
                ),
            );
        }
    }
    let suppress = exit(py, &guard.stack, exc, &guard.exclude)?;
    call_helper(py, "done", (suppress,))
}

fn injected_fault(py: Python<'_>, name: &str) -> PyErr {
    match status::class(py, "InjectedFaultError").and_then(|cls| cls.call1((name,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// A function wrapped by a guard: `__call__` runs acquire, the call, completion and
/// the policy's retries in one crossing into native code.
#[pyclass(frozen, dict, weakref, module = "breakwater._breakwater")]
pub(crate) struct Guarded {
    target: Target,
    func: Py<PyAny>,
    exclude: Exclude,
    fallback: Option<Py<PyAny>>,
    priority: i32,
}

impl Guarded {
    /// One logical call: attempts under the policy's retry rules.
    fn run(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        let mut retry: Option<RetryRun> = None;
        let mut begun = false;
        loop {
            let (error, what, hint) = match self.target.acquire(py, true, self.priority) {
                Err(Refusal::Error(e)) => return Err(e),
                Err(Refusal::Rejected(code, after)) => {
                    let hint = if after == 0 {
                        BW_RETRY_AFTER_NONE
                    } else {
                        after
                    };
                    (
                        self.target.rejection(py, code, after),
                        1u32 << (1 + code),
                        hint,
                    )
                }
                Ok(mut ticket) => {
                    let (failure, latency) = ticket.injected();
                    sleep_ns(py, latency)?;
                    if failure {
                        self.target
                            .complete_checked(py, &mut ticket, BW_OUTCOME_FAILURE)?;
                        (
                            injected_fault(py, self.target.name()),
                            BW_RETRY_ON_FAILURE,
                            BW_RETRY_AFTER_NONE,
                        )
                    } else {
                        let timeout = self.target.timeout_ns();
                        let started = (timeout > 0).then(Instant::now);
                        match self.func.bind(py).call(args, kwargs) {
                            Ok(value) => {
                                self.target.complete_checked(
                                    py,
                                    &mut ticket,
                                    BW_OUTCOME_SUCCESS,
                                )?;
                                return Ok(value.unbind());
                            }
                            Err(e) => {
                                let outcome = match self.exclude.outcome_of(py, &e) {
                                    Ok(o) => o,
                                    Err(predicate_error) => {
                                        self.target.complete(&mut ticket, BW_OUTCOME_FAILURE);
                                        return Err(predicate_error);
                                    }
                                };
                                self.target.complete_checked(py, &mut ticket, outcome)?;
                                if outcome != BW_OUTCOME_FAILURE {
                                    return Err(e);
                                }
                                let late = started
                                    .is_some_and(|s| s.elapsed() > Duration::from_nanos(timeout));
                                let what = if late {
                                    BW_RETRY_ON_TIMEOUT
                                } else {
                                    BW_RETRY_ON_FAILURE
                                };
                                (e, what, BW_RETRY_AFTER_NONE)
                            }
                        }
                    }
                }
            };
            if !begun {
                // The retry loop starts at the first miss: a call that succeeds at once
                // costs no retry state. The budget still counts this request.
                begun = true;
                retry = self.target.begin_retry(py)?;
            }
            let Some(run) = retry.as_mut() else {
                return Err(error);
            };
            match run.next_raw(py, what, hint, 0)? {
                (true, delay) => sleep_ns(py, delay)?,
                (false, reason) => {
                    if reason == BW_GIVE_UP_BUDGET_EXHAUSTED as u64 {
                        let exc = self.target.rejection(
                            py,
                            breakwater::ffi::status::bw_status::BW_RETRY_BUDGET_EXHAUSTED as i32,
                            0,
                        );
                        exc.set_cause(py, Some(error));
                        return Err(exc);
                    }
                    return Err(error);
                }
            }
        }
    }
}

#[pymethods]
impl Guarded {
    #[new]
    #[pyo3(signature = (target, func, exclude_types = None, exclude_predicate = None, fallback = None, priority = 1))]
    fn new(
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        func: Py<PyAny>,
        exclude_types: Option<Py<PyTuple>>,
        exclude_predicate: Option<Py<PyAny>>,
        fallback: Option<Py<PyAny>>,
        priority: i32,
    ) -> PyResult<Self> {
        let target = target_of(py, target)?;
        Ok(Guarded {
            target,
            func,
            exclude: Exclude::new(exclude_types, exclude_predicate),
            fallback,
            priority,
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyObject> {
        match self.run(py, args, kwargs) {
            Ok(v) => Ok(v),
            Err(e) => match &self.fallback {
                Some(fallback)
                    if e.value(py).is_instance_of::<PyException>()
                        && self.exclude.outcome_of(py, &e)? == BW_OUTCOME_FAILURE =>
                {
                    Ok(fallback.bind(py).call1((e.value(py),))?.unbind())
                }
                _ => Err(e),
            },
        }
    }

    /// Binds like a function, so a guarded method receives `self`.
    fn __get__(
        slf: Bound<'_, Self>,
        instance: Option<Bound<'_, PyAny>>,
        owner: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let _ = owner;
        let py = slf.py();
        match instance {
            Some(obj) if !obj.is_none() => {
                static METHOD: GILOnceCell<Py<PyType>> = GILOnceCell::new();
                let method = METHOD.import(py, "types", "MethodType")?;
                Ok(method.call1((slf, obj))?.unbind())
            }
            _ => Ok(slf.into_any().unbind()),
        }
    }
}

/// The `Target` of a guard object.
pub(crate) fn target_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Target> {
    if let Ok(p) = obj.downcast::<Policy>() {
        return Ok(Target::Policy(p.clone().unbind()));
    }
    if let Ok(b) = obj.downcast::<CircuitBreaker>() {
        return Ok(Target::Breaker(b.clone().unbind()));
    }
    if let Ok(l) = obj.downcast::<RateLimiter>() {
        return Ok(Target::Limiter(l.clone().unbind()));
    }
    if let Ok(b) = obj.downcast::<Bulkhead>() {
        return Ok(Target::Bulkhead(b.clone().unbind()));
    }
    if let Ok(k) = obj.downcast::<KeyedPolicy>() {
        return Ok(Target::Keyed(k.clone().unbind()));
    }
    let _ = py;
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "expected a Policy, KeyedPolicy, CircuitBreaker, RateLimiter or Bulkhead, not {}",
        obj.get_type().name()?
    )))
}

/// `_acquire(wait, priority)` shared by every guard: a `Permit` or the rejection.
pub(crate) fn acquire_permit(
    py: Python<'_>,
    target: Target,
    wait: bool,
    priority: i32,
) -> PyResult<Permit> {
    let ticket = target.acquire(py, wait, priority);
    permit_of(py, target, ticket)
}

/// The `Permit` of an acquire's answer, or its rejection as an exception.
pub(crate) fn permit_of(
    py: Python<'_>,
    target: Target,
    ticket: Result<Ticket, Refusal>,
) -> PyResult<Permit> {
    match ticket {
        Ok(ticket) => Ok(Permit::new(target, ticket)),
        Err(Refusal::Rejected(code, after)) => Err(target.rejection(py, code, after)),
        Err(Refusal::Error(e)) => Err(e),
    }
}

/// A permit and what the asyncio glue reads before the call.
pub(crate) fn admit(
    py: Python<'_>,
    target: Target,
    wait: bool,
    priority: i32,
) -> PyResult<(Permit, f64, bool, Option<f64>)> {
    let timeout = target.timeout_ns();
    let permit = acquire_permit(py, target, wait, priority)?;
    let (failure, latency) = permit
        .ticket
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or((false, 0), Ticket::injected);
    let timeout = (timeout > 0).then(|| crate::convert::seconds(timeout));
    Ok((permit, crate::convert::seconds(latency), failure, timeout))
}

/// The one `#[pymethods]` block of a guard class: its own methods (after the `;`) and
/// the methods every guard class has: decorator, context managers, `_acquire`, `name`,
/// `close`/`closed` and `__repr__`; with `metrics = bw_*_get_metrics`, also `metrics()`
/// (the standalone breaker, limiter and bulkhead). One block per class, so the crate
/// needs no `multiple-pymethods`: with it, every method call's type check of `self`
/// builds (allocates) an inventory iterator, ~350 instructions a call.
///
/// The class must have the fields `handle` (a `Handle`), `name`, `stack` and `exclude`.
macro_rules! guard_methods {
    ($ty:ty, $variant:ident, $repr:literal, metrics = $getter:path, max_wait; $($own:tt)*) => {
        $crate::guard::guard_methods! {
            $ty, $variant, $repr, metrics = $getter;
            $($own)*

            /// How long a call waits for admission, in seconds (0.0: never).
            #[getter]
            fn max_wait(&self) -> f64 {
                $crate::convert::seconds(self.max_wait_ns)
            }

            #[getter]
            fn _may_wait(&self) -> bool {
                self.max_wait_ns > 0
            }
        }
    };
    ($ty:ty, $variant:ident, $repr:literal, metrics = $getter:path; $($own:tt)*) => {
        $crate::guard::guard_methods! {
            $ty, $variant, $repr;
            $($own)*

            /// Exact counters (`Metrics`; a bulkhead counts releases as `ignored`).
            fn metrics(&self, py: pyo3::Python<'_>) -> pyo3::PyResult<pyo3::PyObject> {
                let mut m: breakwater::ffi::metrics::bw_metrics = $crate::guard::zeroed();
                // SAFETY: live handle (`get` refuses a closed one), valid out-pointer.
                $crate::status::check(py, unsafe { $getter(self.handle.get()?, &mut m) })?;
                $crate::metrics::to_python(py, &self.guard.name, &m)
            }
        }
    };
    ($ty:ty, $variant:ident, $repr:literal; $($own:tt)*) => {
        #[pyo3::pymethods]
        impl $ty {
            $($own)*

            /// Decorates a function (`def` or `async def`): `@guard` or
            /// `@guard(exclude=..., fallback=...)`.
            #[pyo3(signature = (func = None, /, *, exclude = None, fallback = None, priority = None))]
            fn __call__(
                slf: &pyo3::Bound<'_, Self>,
                func: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                exclude: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                fallback: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                priority: Option<pyo3::Bound<'_, pyo3::PyAny>>,
            ) -> pyo3::PyResult<pyo3::PyObject> {
                let py = slf.py();
                $crate::guard::call_helper(py, "decorate", (slf, func, exclude, fallback, priority))
            }

            fn __enter__(slf: &pyo3::Bound<'_, Self>) -> pyo3::PyResult<pyo3::Py<$crate::guard::Permit>> {
                let py = slf.py();
                let target = $crate::guard::Target::$variant(slf.clone().unbind());
                $crate::guard::enter(py, target, &slf.get().guard.stack)
            }

            #[pyo3(signature = (_exc_type = None, exc = None, _tb = None))]
            fn __exit__(
                slf: &pyo3::Bound<'_, Self>,
                _exc_type: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                exc: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                _tb: Option<pyo3::Bound<'_, pyo3::PyAny>>,
            ) -> pyo3::PyResult<bool> {
                $crate::guard::exit(slf.py(), &slf.get().guard.stack, exc, &slf.get().guard.exclude)
            }

            fn __aenter__(slf: &pyo3::Bound<'_, Self>) -> pyo3::PyResult<pyo3::PyObject> {
                let py = slf.py();
                $crate::guard::call_helper(py, "aenter", (slf, &slf.get().guard.stack))
            }

            #[pyo3(signature = (_exc_type = None, exc = None, _tb = None))]
            fn __aexit__(
                slf: &pyo3::Bound<'_, Self>,
                _exc_type: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                exc: Option<pyo3::Bound<'_, pyo3::PyAny>>,
                _tb: Option<pyo3::Bound<'_, pyo3::PyAny>>,
            ) -> pyo3::PyResult<pyo3::PyObject> {
                $crate::guard::aexit(slf.py(), &slf.get().guard, exc)
            }

            /// A permit now, or the rejection. `wait`: blocking waits are allowed
            /// (the GIL is released while waiting).
            #[pyo3(signature = (wait = false, priority = 1))]
            fn _acquire(slf: &pyo3::Bound<'_, Self>, wait: bool, priority: i32) -> pyo3::PyResult<$crate::guard::Permit> {
                let py = slf.py();
                let target = $crate::guard::Target::$variant(slf.clone().unbind());
                $crate::guard::acquire_permit(py, target, wait, priority)
            }

            /// `_acquire` plus what the asyncio path needs, in one crossing:
            /// `(permit, injected latency s, injected failure, timeout s or None)`.
            #[pyo3(signature = (wait = false, priority = 1))]
            fn _admit(
                slf: &pyo3::Bound<'_, Self>,
                wait: bool,
                priority: i32,
            ) -> pyo3::PyResult<($crate::guard::Permit, f64, bool, Option<f64>)> {
                let py = slf.py();
                let target = $crate::guard::Target::$variant(slf.clone().unbind());
                $crate::guard::admit(py, target, wait, priority)
            }

            /// The `exclude` this guard was built with, as `(types, predicate)`.
            #[getter]
            fn _exclude(&self, py: pyo3::Python<'_>) -> $crate::guard::ExcludeParts {
                self.guard.exclude.parts(py)
            }

            /// The guard's name (for errors and metrics).
            #[getter]
            fn name(&self, py: pyo3::Python<'_>) -> pyo3::Py<pyo3::types::PyString> {
                self.guard.name.object().clone_ref(py)
            }

            /// No more use: later calls raise `ClosedError`; calls running and permits
            /// out still complete.
            fn close(&self) {
                self.handle.close();
            }

            /// Whether `close()` was called.
            #[getter]
            fn closed(&self) -> bool {
                self.handle.is_closed()
            }

            fn __repr__(&self, py: pyo3::Python<'_>) -> pyo3::PyResult<String> {
                use pyo3::types::PyAnyMethods;
                Ok(format!(concat!($repr, "({})"), self.guard.name.object().bind(py).repr()?))
            }
        }
    };
}
pub(crate) use guard_methods;

impl Exclude {
    pub(crate) fn parts(&self, py: Python<'_>) -> ExcludeParts {
        (
            self.types.as_ref().map(|t| t.clone_ref(py)),
            self.predicate.as_ref().map(|p| p.clone_ref(py)),
        )
    }
}

/// `(types, predicate)` of an `exclude=`.
pub(crate) type ExcludeParts = (Option<Py<PyTuple>>, Option<Py<PyAny>>);

/// `exclude=`: `None`, an exception type, a tuple or list of them, or a predicate
/// `exc -> bool`; as `(types, predicate)`.
#[pyfunction]
#[pyo3(signature = (exclude = None))]
pub(crate) fn normalize_exclude(
    py: Python<'_>,
    exclude: Option<&Bound<'_, PyAny>>,
) -> PyResult<ExcludeParts> {
    let Some(x) = exclude.filter(|x| !x.is_none()) else {
        return Ok((None, None));
    };
    let is_exception_type = |t: &Bound<'_, PyAny>| -> PyResult<bool> {
        Ok(t.is_instance_of::<PyType>()
            && t.downcast::<PyType>()?
                .is_subclass_of::<pyo3::exceptions::PyBaseException>()?)
    };
    if is_exception_type(x)? {
        return Ok((Some(PyTuple::new(py, [x])?.unbind()), None));
    }
    if x.is_instance_of::<PyTuple>() || x.is_instance_of::<pyo3::types::PyList>() {
        let items: Vec<Bound<'_, PyAny>> = x.try_iter()?.collect::<PyResult<_>>()?;
        for item in &items {
            if !is_exception_type(item)? {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "exclude: {} is not an exception type",
                    item.repr()?
                )));
            }
        }
        return Ok((Some(PyTuple::new(py, items)?.unbind()), None));
    }
    if x.is_callable() {
        return Ok((None, Some(x.clone().unbind())));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "exclude must be an exception type, a tuple of them, or a predicate, not {}",
        x.get_type().name()?
    )))
}
