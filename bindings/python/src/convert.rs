//! Python values to the ABI's units: seconds (`float`, `int`) or `timedelta` to
//! nanoseconds, counts to integers, with clear errors for the wrong type or range.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDelta, PyFloat, PyInt};

use crate::status;

const INVALID_CONFIG: i32 = breakwater::ffi::status::bw_status::BW_INVALID_CONFIG as i32;

/// Nanoseconds to seconds.
#[inline]
pub(crate) fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// An `InvalidConfigError` naming `field`.
pub(crate) fn invalid(py: Python<'_>, field: &str, reason: &str) -> PyErr {
    status::error_with(py, INVALID_CONFIG, &format!("`{field}`: {reason}"))
}

/// A duration in seconds (`int`, `float`) or a `timedelta`, as nanoseconds; it must be
/// finite and not negative (`allow_zero` says whether 0 is accepted).
pub(crate) fn duration_ns(
    value: &Bound<'_, PyAny>,
    field: &str,
    allow_zero: bool,
) -> PyResult<u64> {
    let py = value.py();
    let secs: f64 = if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "`{field}` must be seconds (int or float) or a timedelta, not bool"
        )));
    } else if let Ok(delta) = value.downcast::<PyDelta>() {
        delta.call_method0("total_seconds")?.extract()?
    } else if value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() {
        value.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "`{field}` must be seconds (int or float) or a timedelta, not {}",
            value.get_type().name()?
        )));
    };
    if secs.is_nan() {
        return Err(invalid(py, field, "must be a number of seconds, not NaN"));
    }
    if secs < 0.0 {
        return Err(invalid(
            py,
            field,
            &format!("must not be negative (got {secs} s)"),
        ));
    }
    if !allow_zero && secs == 0.0 {
        return Err(invalid(py, field, "must be greater than 0"));
    }
    let ns = secs * 1e9;
    if !ns.is_finite() || ns >= u64::MAX as f64 {
        return Err(invalid(py, field, &format!("is too long ({secs} s)")));
    }
    Ok(ns.round() as u64)
}

/// An optional duration: `None` gives `None`.
pub(crate) fn opt_duration_ns(
    value: Option<&Bound<'_, PyAny>>,
    field: &str,
    allow_zero: bool,
) -> PyResult<Option<u64>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => duration_ns(v, field, allow_zero).map(Some),
    }
}

/// A whole number in `min..=max` (not a bool, not a float).
pub(crate) fn count(value: &Bound<'_, PyAny>, field: &str, min: u64, max: u64) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "`{field}` must be an int, not {}",
            value.get_type().name()?
        )));
    }
    let n: i128 = value
        .extract()
        .map_err(|_| invalid(value.py(), field, "is out of range"))?;
    if n < i128::from(min) || n > i128::from(max) {
        return Err(invalid(
            value.py(),
            field,
            &format!("must be between {min} and {max} (got {n})"),
        ));
    }
    Ok(n as u64)
}

/// A real number (int or float, not bool), finite.
pub(crate) fn real(value: &Bound<'_, PyAny>, field: &str) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "`{field}` must be a number, not {}",
            value.get_type().name()?
        )));
    }
    let x: f64 = value.extract()?;
    if !x.is_finite() {
        return Err(invalid(
            value.py(),
            field,
            &format!("must be finite (got {x})"),
        ));
    }
    Ok(x)
}
