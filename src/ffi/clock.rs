//! `bw_clock`: a manual clock for deterministic tests in every language.
//!
//! Every constructor that takes a `const bw_clock *` reads that clock; NULL means the
//! system clocks. A manual clock is shared: advancing it moves the time of every handle
//! built with it.

use super::boundary::{clone_or_null, ensure_non_null, ffi_status, release, value_or, ArcHandle};
use super::status::bw_status;
use crate::clock::{AnyClock, Clock, ManualClock};

/// A manual clock (opaque, shared, thread-safe).
#[derive(Debug)]
pub struct bw_clock {
    _private: [u8; 0],
}

impl ArcHandle for bw_clock {
    type Rust = ManualClock;
}

/// The clock a constructor should use: the manual clock behind `clock`, or the system
/// clocks when it is NULL.
///
/// # Safety
/// `clock` must be NULL or a live `bw_clock`.
pub(crate) unsafe fn clock_or_system(clock: *const bw_clock) -> AnyClock {
    if clock.is_null() {
        AnyClock::Coarse
    } else {
        // SAFETY: non-NULL and, by the caller's contract, a live `bw_clock`.
        AnyClock::Manual(unsafe { bw_clock::borrow(clock) }.clone())
    }
}

/// Creates a manual clock reading `start_ns` nanoseconds (0 is read as 1, since 0 means
/// "never" inside the library) and writes it to `*out`. Free it with `bw_clock_free`.
/// Returns `BW_NULL_POINTER` if `out` is NULL (nothing is written).
///
/// # Safety
/// `out` must be NULL or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_clock_new_manual(start_ns: u64, out: *mut *mut bw_clock) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let handle = bw_clock::into_handle(ManualClock::starting_at(start_ns));
        // SAFETY: `out` is non-NULL and, by contract, valid for a pointer write.
        unsafe { *out = handle };
        bw_status::BW_OK
    })
}

/// Adds a reference to `clock` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `clock` must be NULL or a live `bw_clock`.
#[no_mangle]
pub unsafe extern "C" fn bw_clock_clone(clock: *const bw_clock) -> *mut bw_clock {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(clock) }
}

/// Drops one reference to `clock`; NULL is a no-op. Handles built with the clock keep
/// their own reference. Must not be called twice with the same reference.
///
/// # Safety
/// `clock` must be NULL or a live `bw_clock` reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_clock_free(clock: *const bw_clock) {
    // SAFETY: NULL or a live, owned reference, by contract.
    unsafe { release(clock) }
}

/// Moves the clock forward by `delta_ns` (saturating). Thread-safe.
/// Returns `BW_NULL_POINTER` if `clock` is NULL.
///
/// # Safety
/// `clock` must be NULL or a live `bw_clock`.
#[no_mangle]
pub unsafe extern "C" fn bw_clock_advance(clock: *const bw_clock, delta_ns: u64) -> bw_status {
    ffi_status!({
        ensure_non_null!(clock);
        // SAFETY: non-NULL and live by contract.
        unsafe { bw_clock::borrow(clock) }.advance(std::time::Duration::from_nanos(delta_ns));
        bw_status::BW_OK
    })
}

/// Sets the clock to `now_ns` (0 is read as 1). Setting an earlier time models a
/// misbehaving clock, which every policy tolerates. Thread-safe.
/// Returns `BW_NULL_POINTER` if `clock` is NULL.
///
/// # Safety
/// `clock` must be NULL or a live `bw_clock`.
#[no_mangle]
pub unsafe extern "C" fn bw_clock_set(clock: *const bw_clock, now_ns: u64) -> bw_status {
    ffi_status!({
        ensure_non_null!(clock);
        // SAFETY: non-NULL and live by contract.
        unsafe { bw_clock::borrow(clock) }.set(now_ns);
        bw_status::BW_OK
    })
}

/// The clock's time in nanoseconds; 0 if `clock` is NULL. Thread-safe.
///
/// # Safety
/// `clock` must be NULL or a live `bw_clock`.
#[no_mangle]
pub unsafe extern "C" fn bw_clock_now(clock: *const bw_clock) -> u64 {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(clock, 0, |h| h.now()) }
}
