//! `breakwater._breakwater`: the native half of the Python package.
//!
//! - `handle`: owned C handles (`bw_*` pointers) with a closed flag.
//! - `status`: `bw_status` codes to Python exceptions (classes from `breakwater._errors`).
//! - `convert`: seconds / `timedelta` to nanoseconds, with typed errors.
//! - `clock`: `ManualClock`.
//! - `engine`: `Engine` (policy files, lookups, reload, exposition, health).
//! - `events`: listeners: C callbacks that hand events to a Python dispatcher.
//! - `policy`, `breaker`, `limiter`, `bulkhead`: the hot objects.
//! - `keyed`: `KeyedPolicy`, a policy's calls for one key (its `per_key` limits).
//! - `retry`: `RetrySchedule` (a standalone retry's schedule and budget).
//! - `guard`: what every guard shares: `Permit`, the decorator `Guarded`, and the
//!   context-manager stack.
//!
//! Every call into the engine goes through `breakwater::ffi::bw_*` and the ABI's
//! `#[repr(C)]` types only: Python runs exactly the contract that C and Go run.

mod breaker;
mod bulkhead;
mod clock;
mod convert;
mod engine;
mod events;
mod guard;
mod handle;
mod keyed;
mod limiter;
mod metrics;
mod policy;
mod retry;
mod status;
mod trace;

use pyo3::prelude::*;

/// The ABI version this module was built against (`BW_ABI_VERSION`).
const BUILT_ABI_VERSION: u32 = breakwater::ffi::version::BW_ABI_VERSION;

/// `(built_against, linked)`: the package compares them at import.
#[pyfunction]
fn abi_versions() -> (u32, u32) {
    (
        BUILT_ABI_VERSION,
        breakwater::ffi::version::bw_abi_version(),
    )
}

/// The engine's version string.
#[pyfunction]
fn engine_version() -> String {
    let ptr = breakwater::ffi::version::bw_version();
    // SAFETY: `bw_version` returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

#[pymodule(gil_used = false)]
fn _breakwater(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(abi_versions, m)?)?;
    m.add_function(wrap_pyfunction!(engine_version, m)?)?;
    m.add_function(wrap_pyfunction!(trace::_set_telemetry_hooks, m)?)?;
    m.add_class::<clock::ManualClock>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<policy::Policy>()?;
    m.add_class::<keyed::KeyedPolicy>()?;
    m.add_class::<breaker::CircuitBreaker>()?;
    m.add_class::<limiter::RateLimiter>()?;
    m.add_class::<bulkhead::Bulkhead>()?;
    m.add_class::<retry::RetrySchedule>()?;
    m.add_class::<retry::RetryBudget>()?;
    m.add_class::<retry::RetryRun>()?;
    m.add_class::<limiter::Reservation>()?;
    m.add_function(wrap_pyfunction!(guard::normalize_exclude, m)?)?;
    m.add_class::<guard::Permit>()?;
    m.add_class::<guard::Guarded>()?;
    Ok(())
}
