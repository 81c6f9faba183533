//! `KeyedPolicy`: a policy's calls for one key (`policy.key(b"tenant-1")`), so the
//! policy's `per_key` limits (`bw_policy_acquire_keyed`) apply to them. A guard like the
//! policy itself: decorator, `with` and `async with`.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::guard::{self, Permit, Target};
use crate::policy::Policy;
use crate::retry::RetryRun;

/// Calls `f` with the bytes of `key`: a `bytes` as it is, a `str` as its UTF-8
/// encoding (so `"tenant-1"` and `b"tenant-1"` are one key). Anything else is a
/// `TypeError`. Keys have no length bound (the C ABI takes any bytes).
pub(crate) fn with_key<R>(key: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(bytes) = key.downcast::<PyBytes>() {
        return Ok(f(bytes.as_bytes()));
    }
    if let Ok(text) = key.downcast::<PyString>() {
        return Ok(f(text.to_cow()?.as_bytes()));
    }
    Err(PyTypeError::new_err(format!(
        "a key is bytes or str, not {}",
        key.get_type().name()?
    )))
}

/// A policy's calls for one key: each asks the key's `per_key` limits (rate, burst,
/// `max_concurrent`) before the policy's stages. Rejections are the policy's
/// exceptions (`RateLimitedError` for the key's quota, `BulkheadFullError` for its
/// `max_concurrent`, `LoadShedError` when the key's bucket of the table is full of
/// keys holding permits). Cheap to make; thread-safe.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct KeyedPolicy {
    policy: Py<Policy>,
    key: Box<[u8]>,
}

impl KeyedPolicy {
    pub(crate) fn new(policy: &Bound<'_, Policy>, key: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(KeyedPolicy {
            policy: policy.clone().unbind(),
            key: with_key(key, |k| Box::<[u8]>::from(k))?,
        })
    }

    pub(crate) fn policy(&self) -> &Policy {
        self.policy.get()
    }

    pub(crate) fn policy_object(&self) -> &Py<Policy> {
        &self.policy
    }

    pub(crate) fn key_bytes(&self) -> &[u8] {
        &self.key
    }

    fn target(slf: &Bound<'_, Self>) -> Target {
        Target::Keyed(slf.clone().unbind())
    }
}

#[pymethods]
impl KeyedPolicy {
    /// Decorates a function (`def` or `async def`) whose calls all use this key:
    /// `@policy.key(b"k")` or `@policy.key(b"k")(exclude=..., fallback=...)`.
    #[pyo3(signature = (func = None, /, *, exclude = None, fallback = None, priority = None))]
    fn __call__(
        slf: &Bound<'_, Self>,
        func: Option<Bound<'_, PyAny>>,
        exclude: Option<Bound<'_, PyAny>>,
        fallback: Option<Bound<'_, PyAny>>,
        priority: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        guard::call_helper(
            slf.py(),
            "decorate",
            (slf, func, exclude, fallback, priority),
        )
    }

    /// The permit goes on the policy's own `with` stack: blocks of the policy, keyed
    /// or not, nest in one context.
    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Permit>> {
        guard::enter(slf.py(), Self::target(slf), &slf.get().policy().guard.stack)
    }

    #[pyo3(signature = (_exc_type = None, exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let policy = self.policy();
        guard::exit(py, &policy.guard.stack, exc, &policy.guard.exclude)
    }

    fn __aenter__(slf: &Bound<'_, Self>) -> PyResult<PyObject> {
        let py = slf.py();
        guard::call_helper(py, "aenter", (slf, &slf.get().policy().guard.stack))
    }

    #[pyo3(signature = (_exc_type = None, exc = None, _tb = None))]
    fn __aexit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        guard::aexit(py, &self.policy().guard, exc)
    }

    /// A permit now, or the rejection (what `with` and the decorators use).
    #[pyo3(signature = (wait = false, priority = 1))]
    fn _acquire(slf: &Bound<'_, Self>, wait: bool, priority: i32) -> PyResult<Permit> {
        guard::acquire_permit(slf.py(), Self::target(slf), wait, priority)
    }

    /// `_acquire` plus what the asyncio path needs, in one crossing.
    #[pyo3(signature = (wait = false, priority = 1))]
    fn _admit(
        slf: &Bound<'_, Self>,
        wait: bool,
        priority: i32,
    ) -> PyResult<(Permit, f64, bool, Option<f64>)> {
        guard::admit(slf.py(), Self::target(slf), wait, priority)
    }

    /// The two-step form: a `Permit` for this key now, or the rejection.
    #[pyo3(signature = (*, priority = "default"))]
    fn acquire(slf: &Bound<'_, Self>, priority: &str) -> PyResult<Permit> {
        let py = slf.py();
        let code = crate::policy::priority_code(py, priority)?;
        guard::acquire_permit(py, Self::target(slf), true, code)
    }

    #[getter]
    fn _exclude(&self, py: Python<'_>) -> guard::ExcludeParts {
        self.policy().guard.exclude.parts(py)
    }

    #[getter]
    fn _may_wait(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.policy().settings(py)?.may_wait())
    }

    fn _retry_begin(&self, py: Python<'_>) -> PyResult<Option<RetryRun>> {
        self.policy().begin_retry(py, self.policy.clone_ref(py))
    }

    /// The policy's name.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.policy().guard.name.object().clone_ref(py)
    }

    /// The key, as bytes.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key)
    }

    /// The policy the key's calls go through.
    #[getter(policy)]
    fn policy_handle(&self, py: Python<'_>) -> Py<Policy> {
        self.policy.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "KeyedPolicy({}, {})",
            self.policy().guard.name.object().bind(py).repr()?,
            PyBytes::new(py, &self.key).repr()?
        ))
    }
}
