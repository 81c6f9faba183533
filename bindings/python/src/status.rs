//! `bw_status` codes to Python exceptions.
//!
//! The exception classes live in `breakwater._errors` (Python: they subclass both
//! `BreakwaterError` and the built-in a user would catch); they are looked up once.

use breakwater::ffi::status::{bw_last_error_message, bw_status};
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyString, PyTuple};

/// Codes from 1 to 7 are decisions; `BW_OK` is 0.
pub(crate) const OK: i32 = bw_status::BW_OK as i32;
const FIRST_ERROR: i32 = bw_status::BW_INVALID_ARGUMENT as i32;

static ERRORS: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
/// `_errors.REJECTIONS`: the rejection class of each status code (index = code).
static REJECTIONS: GILOnceCell<Py<PyTuple>> = GILOnceCell::new();

fn errors(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || Ok(py.import("breakwater._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// This thread's last error message from the library.
pub(crate) fn last_error_message() -> String {
    // SAFETY: NULL with length 0 only asks for the length.
    let len = unsafe { bw_last_error_message(std::ptr::null_mut(), 0) };
    if len == 0 {
        return String::new();
    }
    let mut buf = vec![0u8; len + 1];
    // SAFETY: `buf` has `len + 1` writable bytes.
    unsafe { bw_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(len);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The exception for an error status (code ≥ 100), with the library's message.
#[cold]
pub(crate) fn error(py: Python<'_>, code: i32) -> PyErr {
    let message = last_error_message();
    error_with(py, code, &message)
}

/// The exception for an error status with a given message.
#[cold]
pub(crate) fn error_with(py: Python<'_>, code: i32, message: &str) -> PyErr {
    let made = errors(py).and_then(|m| m.getattr("from_status")?.call1((code, message)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// The exception for a rejection status (1–6), naming the policy; `retry_after_ns` 0
/// means unknown (`None`).
#[cold]
pub(crate) fn rejection(py: Python<'_>, code: i32, retry_after_ns: u64, name: &str) -> PyErr {
    rejection_named(py, code, retry_after_ns, &PyString::new(py, name))
}

/// `rejection` with the name as a Python string already made (the guards' own). Not
/// cold: an open breaker answers every call with it, so the exception is made by the
/// class's `tp_new` on a tuple built in place (the `RejectedError` classes have no
/// `__init__`, `BaseException_new` sets `args`): no call machinery, no message
/// formatted until `str()` asks.
pub(crate) fn rejection_named(
    py: Python<'_>,
    code: i32,
    retry_after_ns: u64,
    name: &Bound<'_, PyString>,
) -> PyErr {
    let classes = match REJECTIONS.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            errors(py)?
                .getattr("REJECTIONS")?
                .downcast_into::<PyTuple>()?
                .unbind(),
        )
    }) {
        Ok(c) => c.bind(py),
        Err(e) => return e,
    };
    let Ok(cls) = classes.get_item(code as usize) else {
        return status_internal_code(code);
    };
    // SAFETY: `cls` is one of `REJECTIONS`, Python subclasses of `Exception` (heap
    // types, so `PyType_GetSlot` may read them; their `tp_new` is `BaseException_new`,
    // a `newfunc`). The tuple is new and complete (both items set, each a reference
    // it owns) before anyone sees it; `tp_new` borrows it, and we drop ours after.
    let exc = unsafe {
        let args = ffi::PyTuple_New(2);
        if args.is_null() {
            return PyErr::fetch(py);
        }
        ffi::PyTuple_SetItem(args, 0, name.clone().into_ptr());
        let after = if retry_after_ns == 0 {
            py.None().into_ptr()
        } else {
            ffi::PyFloat_FromDouble(crate::convert::seconds(retry_after_ns))
        };
        if after.is_null() {
            ffi::Py_DecRef(args);
            return PyErr::fetch(py);
        }
        ffi::PyTuple_SetItem(args, 1, after);
        let tp = cls.as_ptr().cast::<ffi::PyTypeObject>();
        let new: Option<ffi::newfunc> =
            std::mem::transmute(ffi::PyType_GetSlot(tp, ffi::Py_tp_new));
        let exc = match new {
            Some(new) => new(tp, args, std::ptr::null_mut()),
            None => ffi::PyObject_Call(cls.as_ptr(), args, std::ptr::null_mut()),
        };
        ffi::Py_DecRef(args);
        Bound::from_owned_ptr_or_opt(py, exc)
    };
    match exc {
        Some(exc) => PyErr::from_value(exc),
        None => PyErr::fetch(py),
    }
}

#[cold]
fn status_internal_code(code: i32) -> PyErr {
    internal(&format!("no rejection class for status {code}"))
}

/// Whether `code` is a rejection (an answer, not an error).
#[inline]
pub(crate) fn is_rejection(code: i32) -> bool {
    code > OK && code < FIRST_ERROR
}

/// Any non-OK status: a rejection or an error.
#[cold]
pub(crate) fn status_err(py: Python<'_>, code: i32, retry_after_ns: u64, name: &str) -> PyErr {
    if is_rejection(code) {
        rejection(py, code, retry_after_ns, name)
    } else {
        error(py, code)
    }
}

/// `Ok(())` for `BW_OK`, else the error.
#[inline]
pub(crate) fn check(py: Python<'_>, status: bw_status) -> PyResult<()> {
    let code = status as i32;
    if code == OK {
        Ok(())
    } else {
        Err(status_err(py, code, 0, ""))
    }
}

/// The pointer a `bw_*` call writes through its out-parameter, once it returned
/// `BW_OK` (the out-parameter starts NULL).
#[inline]
pub(crate) fn out_ptr<T>(
    py: Python<'_>,
    call: impl FnOnce(&mut *mut T) -> bw_status,
) -> PyResult<*mut T> {
    let mut out = std::ptr::null_mut();
    check(py, call(&mut out))?;
    Ok(out)
}

/// Use after `close()`.
#[cold]
pub(crate) fn closed(what: &str) -> PyErr {
    Python::with_gil(|py| {
        let made = errors(py).and_then(|m| {
            m.getattr("ClosedError")?
                .call1((format!("this {what} is closed"),))
        });
        match made {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    })
}

/// A class from `breakwater._errors` (cold paths: injected faults, timeouts).
pub(crate) fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    errors(py)?.getattr(name)
}

pub(crate) fn internal(message: &str) -> PyErr {
    PyRuntimeError::new_err(message.to_string())
}
