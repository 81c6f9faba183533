//! `bw_bulkhead`: a standalone bulkhead (at most `max_concurrent` calls at once).
//!
//! A bulkhead permit carries no data, so there is no permit struct: each successful
//! acquire is paired with exactly one `bw_bulkhead_release`.

use std::time::Duration;

use super::boundary::{
    clone_or_null, config_error, ensure_non_null, ffi_status, ffi_value, release, value_or,
    write_out, ArcHandle, BoxHandle,
};
use super::clock::{bw_clock, clock_or_system};
use super::metrics::{bw_metrics, write_metrics};
use super::status::{bw_status, fail};
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::metrics::Metered;
use crate::Rejection;

/// A bulkhead configuration builder (opaque, single-threaded, owned by the caller).
/// `bw_bulkhead_config_set_max_concurrent` is required; `max_wait` defaults to 0.
#[derive(Debug)]
pub struct bw_bulkhead_config {
    _private: [u8; 0],
}

impl BoxHandle for bw_bulkhead_config {
    type Rust = BulkheadConfig;
}

/// A bulkhead (opaque, shared, thread-safe).
#[derive(Debug)]
pub struct bw_bulkhead {
    _private: [u8; 0],
}

impl ArcHandle for bw_bulkhead {
    type Rust = Metered<Bulkhead>;
}

/// Creates a bulkhead configuration builder (`max_concurrent` unset) and writes it to
/// `*out` (free it with `bw_bulkhead_config_free`). `BW_NULL_POINTER` if `out` is NULL.
///
/// # Safety
/// `out` must be NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_config_new(out: *mut *mut bw_bulkhead_config) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let handle = bw_bulkhead_config::into_handle(BulkheadConfig::new(0));
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, handle) };
        bw_status::BW_OK
    })
}

/// Frees a builder; NULL is a no-op. Must not be called twice with the same value.
///
/// # Safety
/// `config` must be NULL or a live builder owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_config_free(config: *mut bw_bulkhead_config) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned builder, by contract.
        unsafe { bw_bulkhead_config::free_handle(config) }
    })
}

/// Permits that may be out at once (`max_concurrent`, at least 1). Stored as given;
/// `bw_bulkhead_new` validates. `BW_OK` or `BW_NULL_POINTER`. Not thread-safe.
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_config_set_max_concurrent(
    config: *mut bw_bulkhead_config,
    max_concurrent: u32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        unsafe { bw_bulkhead_config::borrow_mut(config) }.max_concurrent = max_concurrent;
        bw_status::BW_OK
    })
}

/// The default wait of `bw_bulkhead_acquire` when it is passed `BW_WAIT_DEFAULT`
/// (`max_wait`, ns). `BW_OK` or `BW_NULL_POINTER`. Not thread-safe.
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_config_set_max_wait(
    config: *mut bw_bulkhead_config,
    max_wait_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        unsafe { bw_bulkhead_config::borrow_mut(config) }.max_wait =
            Duration::from_nanos(max_wait_ns);
        bw_status::BW_OK
    })
}

/// Pass as `max_wait_ns` to `bw_bulkhead_acquire` to wait the configured `max_wait`.
pub const BW_WAIT_DEFAULT: u64 = u64::MAX;

/// Builds a bulkhead from `config` (copied) and writes it to `*out` (free it with
/// `bw_bulkhead_free`). Waits are timed on `clock` (a manual clock: a waiter gives up
/// when either the real wait passes or the clock reaches its deadline at a wake-up), or
/// on the monotonic system clock when NULL.
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` naming the field
/// (`max_concurrent`, `max_wait`). Nothing is written on failure.
///
/// # Safety
/// `config` must be NULL or a live builder not mutated during the call; `clock` NULL
/// or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_new(
    config: *const bw_bulkhead_config,
    clock: *const bw_clock,
    out: *mut *mut bw_bulkhead,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config, out);
        // SAFETY: non-NULL and live by contract.
        let config = *unsafe { bw_bulkhead_config::borrow(config) };
        let built = if clock.is_null() {
            Bulkhead::new(config)
        } else {
            // SAFETY: non-NULL and live by contract.
            Bulkhead::with_clock(config, unsafe { clock_or_system(clock) })
        };
        match built {
            Ok(bulkhead) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out, bw_bulkhead::into_handle(Metered::new(bulkhead))) };
                bw_status::BW_OK
            }
            Err(e) => config_error("bulkhead", &e),
        }
    })
}

/// Adds a reference to `bulkhead` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `bulkhead` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_clone(bulkhead: *const bw_bulkhead) -> *mut bw_bulkhead {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(bulkhead) }
}

/// Drops one reference to `bulkhead`; NULL is a no-op. Must not be called twice with
/// the same reference.
///
/// # Safety
/// `bulkhead` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_free(bulkhead: *const bw_bulkhead) {
    // SAFETY: NULL or a live, owned reference, by contract.
    unsafe { release(bulkhead) }
}

/// An acquire's answer as its status.
fn status_of(answer: Result<(), Rejection>) -> bw_status {
    match answer {
        Ok(()) => bw_status::BW_OK,
        Err(rejection) => bw_status::of_rejection(rejection.reason),
    }
}

/// Takes a permit if one is free and nobody is queued; never blocks. Returns `BW_OK`
/// (release it once with `bw_bulkhead_release`), `BW_BULKHEAD_FULL` (a rejection: no
/// message, no allocation) or `BW_NULL_POINTER`. Thread-safe, lock-free.
///
/// # Safety
/// `bulkhead` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_try_acquire(bulkhead: *const bw_bulkhead) -> bw_status {
    ffi_status!({
        ensure_non_null!(bulkhead);
        // SAFETY: non-NULL and live by contract.
        let b = unsafe { bw_bulkhead::borrow(bulkhead) };
        status_of(b.try_acquire_raw())
    })
}

/// Takes a permit, blocking the calling thread up to `max_wait_ns` for one (waiters
/// are served in arrival order); `BW_WAIT_DEFAULT` waits the configured `max_wait`, 0
/// does not wait. Returns `BW_OK`, `BW_BULKHEAD_FULL` (none freed in time) or
/// `BW_NULL_POINTER`. Thread-safe; holds its own reference to the bulkhead while it
/// waits.
///
/// # Safety
/// `bulkhead` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_acquire(
    bulkhead: *const bw_bulkhead,
    max_wait_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(bulkhead);
        // SAFETY: non-NULL and live by contract; the wait keeps its own reference.
        let b = unsafe { bw_bulkhead::to_arc(bulkhead) };
        let wait = if max_wait_ns == BW_WAIT_DEFAULT {
            b.inner().config().max_wait
        } else {
            Duration::from_nanos(max_wait_ns)
        };
        status_of(b.try_acquire_raw_for(wait))
    })
}

/// Returns one permit (handing it to the longest waiter, if any). Returns `BW_OK`,
/// `BW_NULL_POINTER`, or `BW_PERMIT_ALREADY_USED` when no permit is out (nothing
/// changes; the count never underflows). Release each permit exactly once: with
/// permits out the bulkhead cannot tell whose is returned. Thread-safe.
///
/// # Safety
/// `bulkhead` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_release(bulkhead: *const bw_bulkhead) -> bw_status {
    ffi_status!({
        ensure_non_null!(bulkhead);
        // SAFETY: non-NULL and live by contract.
        let b = unsafe { bw_bulkhead::borrow(bulkhead) };
        if b.release_raw() {
            bw_status::BW_OK
        } else {
            fail(
                bw_status::BW_PERMIT_ALREADY_USED,
                "no bulkhead permit is out to release",
            )
        }
    })
}

/// Permits out now; 0 if `bulkhead` is NULL. Thread-safe.
///
/// # Safety
/// `bulkhead` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_in_flight(bulkhead: *const bw_bulkhead) -> u32 {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(bulkhead, 0, |h| h.inner().in_flight()) }
}

/// Permits free now; 0 if `bulkhead` is NULL. Thread-safe.
///
/// # Safety
/// `bulkhead` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_available(bulkhead: *const bw_bulkhead) -> u32 {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(bulkhead, 0, |h| h.inner().available()) }
}

/// Fills `*out` with the bulkhead's exact counters: permits handed out, rejections,
/// and releases (counted as completions with outcome ignored; see `bw_metrics`).
///
/// Returns `BW_OK`, or `BW_NULL_POINTER` (nothing written). Thread-safe, also while
/// other threads use the bulkhead.
///
/// # Safety
/// `bulkhead` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_bulkhead_get_metrics(
    bulkhead: *const bw_bulkhead,
    out: *mut bw_metrics,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(bulkhead, out);
        // SAFETY: non-NULL here; live and writable by contract.
        unsafe { write_metrics(bulkhead, out) }
    })
}
