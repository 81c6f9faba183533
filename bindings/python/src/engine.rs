//! `Engine`: named policies from a policy file (`bw_engine_*`).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use breakwater::ffi::engine::{
    bw_engine, bw_engine_free, bw_engine_from_path, bw_engine_from_toml, bw_engine_global,
    bw_engine_health, bw_engine_policy, bw_engine_policy_names, bw_engine_prometheus,
    bw_engine_reload_path, bw_engine_reload_toml,
};
use breakwater::ffi::events::bw_engine_set_listener;
use breakwater::ffi::policy::{bw_policy, bw_policy_is_superseded};
use breakwater::ffi::status::bw_status;
use breakwater::ffi::strings::bw_string_free;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyType;

use crate::clock::{clock_ptr, ManualClock};
use crate::handle::Handle;
use crate::policy::Policy;
use crate::status;

const INVALID_ARGUMENT: i32 = bw_status::BW_INVALID_ARGUMENT as i32;
const NOT_FOUND: i32 = bw_status::BW_NOT_FOUND as i32;

/// A registry of named policies loaded from a policy file. `engine["payments"]` gives
/// a `Policy`. Thread-safe; `close()` (or `with engine:`) ends its use.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct Engine {
    handle: Handle<bw_engine>,
    /// Policies already looked up, so `engine[name]` is cheap and shares one object.
    policies: Mutex<HashMap<String, Py<Policy>>>,
    /// Successful reloads through this object; its policies re-read what they cache of
    /// their configuration when it moves (`Policy::settings`).
    reloads: Arc<AtomicU64>,
    listeners: crate::events::Listeners,
}

static GLOBAL: GILOnceCell<Py<Engine>> = GILOnceCell::new();

fn c_string(py: Python<'_>, text: &str, what: &str) -> PyResult<CString> {
    CString::new(text).map_err(|_| {
        status::error_with(
            py,
            INVALID_ARGUMENT,
            &format!("{what} contains a NUL character"),
        )
    })
}

fn path_c_string(py: Python<'_>, path: PathBuf) -> PyResult<CString> {
    let text = path
        .to_str()
        .ok_or_else(|| status::error_with(py, INVALID_ARGUMENT, "the path is not valid UTF-8"))?;
    c_string(py, text, "the path")
}

/// Takes a library-owned string, copies it and frees it.
fn take_string(ptr: *mut c_char) -> String {
    // SAFETY: a NUL-terminated string returned by the library, freed once here.
    let text = unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: as above.
    unsafe { bw_string_free(ptr) };
    text
}

impl Engine {
    /// The engine a `bw_engine_*` constructor writes through its out-parameter.
    fn made(
        py: Python<'_>,
        make: impl FnOnce(&mut *mut bw_engine) -> bw_status,
    ) -> PyResult<Engine> {
        Ok(Engine {
            handle: Handle::new(status::out_ptr(py, make)?, bw_engine_free, "engine"),
            policies: Mutex::new(HashMap::new()),
            reloads: Arc::new(AtomicU64::new(0)),
            listeners: Default::default(),
        })
    }

    fn names_vec(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let ptr = self.handle.get()?;
        // SAFETY: live handle, valid out-pointer.
        let out = status::out_ptr(py, |out| unsafe { bw_engine_policy_names(ptr, out) })?;
        let text = take_string(out);
        Ok(if text.is_empty() {
            Vec::new()
        } else {
            text.split('\n').map(str::to_string).collect()
        })
    }

    /// The policy `name`, or `None` when there is none.
    fn lookup(&self, py: Python<'_>, name: &str) -> PyResult<Option<Py<Policy>>> {
        let ptr = self.handle.get()?;
        {
            let cache = self.policies.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = cache.get(name) {
                // SAFETY: live policy handle.
                if !p.get().closed_flag() && !unsafe { bw_policy_is_superseded(p.get().raw()) } {
                    return Ok(Some(p.clone_ref(py)));
                }
            }
        }
        let c_name = c_string(py, name, "the policy name")?;
        let mut out: *mut bw_policy = std::ptr::null_mut();
        // SAFETY: live handle, NUL-terminated name, valid out-pointer.
        let code = unsafe { bw_engine_policy(ptr, c_name.as_ptr(), &mut out) } as i32;
        if code == NOT_FOUND {
            return Ok(None);
        }
        if code != status::OK {
            return Err(status::error(py, code));
        }
        let policy = Py::new(
            py,
            Policy::from_raw(py, out, name.to_string(), self.reloads.clone())?,
        )?;
        self.policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), policy.clone_ref(py));
        Ok(Some(policy))
    }
}

/// `Policy.from_toml`: the policy `name` (or the only one) of a new engine built from
/// `text`. The engine is kept alive by the policy (`policy.engine`), and not the other
/// way round: the engine's cache does not hold this policy object, so the two form no
/// reference cycle.
pub(crate) fn standalone_policy(
    py: Python<'_>,
    text: &str,
    name: Option<&str>,
    clock: Option<&Bound<'_, ManualClock>>,
) -> PyResult<Py<Policy>> {
    let engine = Py::new(py, Engine::from_toml(py, text, clock)?)?;
    let e = engine.get();
    let name = match name {
        Some(name) => name.to_string(),
        None => {
            let mut names = e.names_vec(py)?;
            if names.len() != 1 {
                let listed = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                return Err(status::error_with(
                    py,
                    INVALID_ARGUMENT,
                    &format!(
                        "Policy.from_toml: the text has {} policies ({listed}); name the one to use",
                        names.len()
                    ),
                ));
            }
            names.remove(0)
        }
    };
    let policy = e.policy(py, &name)?;
    e.policies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    policy.get().set_owner(engine);
    Ok(policy)
}

#[pymethods]
impl Engine {
    /// An engine from the text of a policy file. `clock`: a `ManualClock` for every
    /// policy (tests), else the system clock.
    #[staticmethod]
    #[pyo3(signature = (text, /, *, clock = None))]
    fn from_toml(
        py: Python<'_>,
        text: &str,
        clock: Option<&Bound<'_, ManualClock>>,
    ) -> PyResult<Engine> {
        let text = c_string(py, text, "the policy text")?;
        let clock = clock_ptr(clock)?;
        // SAFETY: NUL-terminated text, clock NULL or live, valid out-pointer.
        Engine::made(py, |out| unsafe {
            bw_engine_from_toml(text.as_ptr(), clock, out)
        })
    }

    /// An engine from the policy file at `path` (`str` or `os.PathLike`).
    #[staticmethod]
    #[pyo3(signature = (path, /, *, clock = None))]
    fn from_file(
        py: Python<'_>,
        path: PathBuf,
        clock: Option<&Bound<'_, ManualClock>>,
    ) -> PyResult<Engine> {
        let path = path_c_string(py, path)?;
        let clock = clock_ptr(clock)?;
        // SAFETY: NUL-terminated path, clock NULL or live, valid out-pointer.
        Engine::made(py, |out| unsafe {
            bw_engine_from_path(path.as_ptr(), clock, out)
        })
    }

    /// The process-wide engine (no policies until it is reloaded); always the same
    /// object.
    #[staticmethod]
    fn global_engine(py: Python<'_>) -> PyResult<Py<Engine>> {
        GLOBAL
            .get_or_try_init(py, || {
                // SAFETY: valid out-pointer.
                Py::new(
                    py,
                    Engine::made(py, |out| unsafe { bw_engine_global(out) })?,
                )
            })
            .map(|e| e.clone_ref(py))
    }

    /// Replaces the policies atomically with those of `toml` (text) or `path` (a
    /// file): on any error nothing changes. Unchanged policies keep their state.
    #[pyo3(signature = (toml = None, /, *, path = None))]
    fn reload(&self, py: Python<'_>, toml: Option<&str>, path: Option<PathBuf>) -> PyResult<()> {
        let ptr = self.handle.get()?;
        let status = match (toml, path) {
            (Some(text), None) => {
                let text = c_string(py, text, "the policy text")?;
                // SAFETY: live handle, NUL-terminated text.
                unsafe { bw_engine_reload_toml(ptr, text.as_ptr()) }
            }
            (None, Some(path)) => {
                let path = path_c_string(py, path)?;
                // SAFETY: live handle, NUL-terminated path.
                unsafe { bw_engine_reload_path(ptr, path.as_ptr()) }
            }
            _ => {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "reload() takes the policy text or path=..., exactly one",
                ))
            }
        };
        status::check(py, status)?;
        // Release: after the engine published the new configuration (see
        // `Policy::settings`, whose Acquire load pairs with this).
        self.reloads.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The policy `name`; `KeyError` (`PolicyNotFoundError`) listing the names.
    fn policy(&self, py: Python<'_>, name: &str) -> PyResult<Py<Policy>> {
        match self.lookup(py, name)? {
            Some(p) => Ok(p),
            None => {
                let names = self.names_vec(py)?;
                let listed = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                Err(status::error_with(
                    py,
                    NOT_FOUND,
                    &format!("no policy named {name:?} (policies: {listed})"),
                ))
            }
        }
    }

    fn __getitem__(&self, py: Python<'_>, name: &str) -> PyResult<Py<Policy>> {
        self.policy(py, name)
    }

    fn __contains__(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        Ok(self.lookup(py, name)?.is_some())
    }

    /// The policy `name`, or `default`.
    #[pyo3(signature = (name, default = None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<PyObject>) -> PyResult<PyObject> {
        match self.lookup(py, name)? {
            Some(p) => Ok(p.into_any()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// The policies' names, in file order.
    fn names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names_vec(py)
    }

    /// The Prometheus text exposition of every policy.
    fn prometheus(&self, py: Python<'_>) -> PyResult<String> {
        let ptr = self.handle.get()?;
        // SAFETY: live handle, valid out-pointer.
        let out = status::out_ptr(py, |out| unsafe { bw_engine_prometheus(ptr, out) })?;
        Ok(take_string(out))
    }

    /// The engine's health as JSON (`{"status": ..., "reasons": [...]}`).
    fn health_json(&self, py: Python<'_>) -> PyResult<String> {
        let mut out: *mut c_char = std::ptr::null_mut();
        let mut code = 0i32;
        // SAFETY: live handle, valid out-pointers.
        status::check(py, unsafe {
            bw_engine_health(self.handle.get()?, &mut out, &mut code)
        })?;
        Ok(take_string(out))
    }

    /// Calls `listener(event)` for every event of the engine and its policies. Returns
    /// the listener, so it can be used as a decorator. Exceptions in it are logged.
    fn on_event(&self, py: Python<'_>, listener: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let ptr = self.handle.get()?;
        self.listeners.add(py, listener, |callback, data| {
            // SAFETY: live handle; the callback and its leaked data live forever.
            unsafe { bw_engine_set_listener(ptr, callback, data) }
        })
    }

    /// No more use of the engine (and of policies looked up from it through this
    /// object); the global engine cannot be closed.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        if let Some(global) = GLOBAL.get(py) {
            if global.bind(py).is(slf) {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "the global engine cannot be closed",
                ));
            }
        }
        let me = slf.get();
        me.handle.close();
        for policy in me
            .policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            policy.1.get().close_flag();
        }
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.handle.is_closed()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(slf: &Bound<'_, Self>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        Engine::close(slf)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.names_vec(py) {
            Ok(names) => format!("Engine({names:?})"),
            Err(_) => "Engine(<closed>)".to_string(),
        }
    }

    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, PyType>, _item: &Bound<'_, PyAny>) -> Py<PyType> {
        cls.clone().unbind()
    }
}
