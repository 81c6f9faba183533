//! `bw_limiter`: a standalone rate limiter (GCRA), built from a `bw_limiter_config`.
//!
//! Reservations are `bw_reservation` structs passed by value: no allocation per call.

use std::time::Duration;

use super::boundary::{
    check_permit, clone_or_null, config_error, ensure_non_null, ffi_status, ffi_value, handle_id,
    release, value_or, write_out, ArcHandle, BoxHandle, PERMIT_LIVE, PERMIT_USED,
};
use super::clock::{bw_clock, clock_or_system};
use super::metrics::{bw_metrics, write_metrics};
use super::status::{bw_status, fail, write_rejection};
use crate::clock::AnyClock;
use crate::limiter::{LimiterError, RateLimiter, RateLimiterConfig, RawReservation};
use crate::metrics::Metered;

/// The values a `bw_limiter_config` collects; `burst` defaults to `rate`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimiterBuilder {
    rate: u64,
    period_ns: u64,
    burst: Option<u64>,
}

impl LimiterBuilder {
    fn config(&self) -> RateLimiterConfig {
        let config = RateLimiterConfig::new(self.rate, Duration::from_nanos(self.period_ns));
        match self.burst {
            Some(burst) => config.with_burst(burst),
            None => config,
        }
    }
}

/// A rate-limiter configuration builder (opaque, single-threaded, owned by the
/// caller). `bw_limiter_config_set_rate` is required; `burst` defaults to `rate`.
#[derive(Debug)]
pub struct bw_limiter_config {
    _private: [u8; 0],
}

impl BoxHandle for bw_limiter_config {
    type Rust = LimiterBuilder;
}

/// A rate limiter (opaque, shared, thread-safe).
#[derive(Debug)]
pub struct bw_limiter {
    _private: [u8; 0],
}

impl ArcHandle for bw_limiter {
    type Rust = Metered<RateLimiter<AnyClock>>;
}

/// A reservation of a limiter, passed by value: plain data, no allocation. Filled by
/// `bw_limiter_reserve`: wait `wait_ns` before going ahead, or give the permits back
/// with `bw_limiter_cancel` (at most once). Dropping it keeps the slot. Callers read
/// `wait_ns` and `permits`; every field is the library's.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bw_reservation {
    /// The limiter the reservation belongs to.
    pub instance: u64,
    /// Nanoseconds to wait before going ahead (as of the reservation).
    pub wait_ns: u64,
    /// Permits reserved (0 for an empty reservation).
    pub permits: u64,
    /// The slot's identity inside the limiter.
    pub tat: u64,
    /// Live/used marker, owned by the library.
    pub state: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Creates a limiter configuration builder (rate unset) and writes it to `*out` (free
/// it with `bw_limiter_config_free`). `BW_NULL_POINTER` if `out` is NULL.
///
/// # Safety
/// `out` must be NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_config_new(out: *mut *mut bw_limiter_config) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let handle = bw_limiter_config::into_handle(LimiterBuilder {
            rate: 0,
            period_ns: 1_000_000_000,
            burst: None,
        });
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
pub unsafe extern "C" fn bw_limiter_config_free(config: *mut bw_limiter_config) {
    ffi_value!((), {
        // SAFETY: NULL or a live, owned builder, by contract.
        unsafe { bw_limiter_config::free_handle(config) }
    })
}

/// `rate` permits per `period_ns` (`rate`, `period`). Stored as given; `bw_limiter_new`
/// validates. `BW_OK` or `BW_NULL_POINTER`. Not thread-safe (builder).
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_config_set_rate(
    config: *mut bw_limiter_config,
    rate: u64,
    period_ns: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        let c = unsafe { bw_limiter_config::borrow_mut(config) };
        c.rate = rate;
        c.period_ns = period_ns;
        bw_status::BW_OK
    })
}

/// The most permits taken at once after an idle spell (`burst`; default `rate`).
/// `BW_OK` or `BW_NULL_POINTER`. Not thread-safe (builder).
///
/// # Safety
/// `config` must be NULL or a live builder not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_config_set_burst(
    config: *mut bw_limiter_config,
    burst: u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config);
        // SAFETY: non-NULL, live and unshared by contract.
        unsafe { bw_limiter_config::borrow_mut(config) }.burst = Some(burst);
        bw_status::BW_OK
    })
}

/// Builds a limiter from `config` (copied) reading `clock` (a manual clock, or NULL
/// for the system clock the library picks for the quota), with a full bucket, and
/// writes it to `*out` (free it with `bw_limiter_free`).
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` naming the field (`rate`,
/// `period`, `burst`). Nothing is written on failure.
///
/// # Safety
/// `config` must be NULL or a live builder not mutated during the call; `clock` NULL
/// or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_new(
    config: *const bw_limiter_config,
    clock: *const bw_clock,
    out: *mut *mut bw_limiter,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(config, out);
        // SAFETY: non-NULL and live by contract.
        let config = unsafe { bw_limiter_config::borrow(config) }.config();
        let built = if clock.is_null() {
            RateLimiter::new(config)
        } else {
            // SAFETY: non-NULL and live by contract.
            RateLimiter::with_clock(config, unsafe { clock_or_system(clock) })
        };
        match built {
            Ok(limiter) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out, bw_limiter::into_handle(Metered::new(limiter))) };
                bw_status::BW_OK
            }
            Err(e) => config_error("rate limiter", &e),
        }
    })
}

/// Adds a reference to `limiter` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `limiter` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_clone(limiter: *const bw_limiter) -> *mut bw_limiter {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(limiter) }
}

/// Drops one reference to `limiter`; NULL is a no-op. Must not be called twice with
/// the same reference.
///
/// # Safety
/// `limiter` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_free(limiter: *const bw_limiter) {
    // SAFETY: NULL or a live, owned reference, by contract.
    unsafe { release(limiter) }
}

/// Maps a limiter error to its status: a rejection writes `retry_after_ns` (if the
/// pointer is not NULL); "exceeds burst" is `BW_NEVER_PASSES`, an error in the request
/// rather than an answer.
///
/// # Safety
/// `out_retry_after_ns` must be NULL or valid for a write.
unsafe fn limiter_error(error: LimiterError, out_retry_after_ns: *mut u64) -> bw_status {
    match error {
        LimiterError::Rejected(rejection) => {
            // SAFETY: NULL or writable by this function's contract.
            unsafe { write_rejection(&rejection, out_retry_after_ns) }
        }
        e @ LimiterError::ExceedsBurst { .. } => fail(bw_status::BW_NEVER_PASSES, e),
    }
}

/// Takes `n` permits at once, or none; never blocks. `n` = 0 passes.
///
/// - `BW_OK`: taken.
/// - `BW_RATE_LIMITED`: a rejection (no message, no allocation); `*out_retry_after_ns`
///   (if not NULL) gets the exact wait after which the same request would pass.
/// - `BW_NEVER_PASSES`: `n` > burst; it can never pass.
/// - `BW_NULL_POINTER`.
///
/// Thread-safe, lock-free, allocation-free.
///
/// # Safety
/// `limiter` must be NULL or live; `out_retry_after_ns` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_try_acquire(
    limiter: *const bw_limiter,
    n: u64,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(limiter);
        // SAFETY: non-NULL and live by contract.
        let l = unsafe { bw_limiter::borrow(limiter) };
        match l.try_acquire_n(n) {
            Ok(()) => bw_status::BW_OK,
            // SAFETY: NULL or writable by contract.
            Err(e) => unsafe { limiter_error(e, out_retry_after_ns) },
        }
    })
}

/// Commits `n` permits that fall due within `max_wait_ns` and fills `*out_reservation`
/// (its `wait_ns` says how long to wait before going ahead). Never blocks.
///
/// Returns `BW_OK`; `BW_RATE_LIMITED` if they would fall due later (nothing committed;
/// `*out_retry_after_ns`, if not NULL, gets when the same reservation would pass);
/// `BW_NEVER_PASSES` (`n` > burst); `BW_NULL_POINTER`. `*out_reservation` is written
/// only on `BW_OK`. Thread-safe, allocation-free.
///
/// # Safety
/// `limiter` must be NULL or live; the out-pointers NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_reserve(
    limiter: *const bw_limiter,
    n: u64,
    max_wait_ns: u64,
    out_reservation: *mut bw_reservation,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(limiter, out_reservation);
        // SAFETY: non-NULL and live by contract.
        let l = unsafe { bw_limiter::borrow(limiter) };
        match l.reserve(n, Duration::from_nanos(max_wait_ns)) {
            Ok(reservation) => {
                let raw = reservation.into_raw();
                let r = bw_reservation {
                    instance: handle_id(limiter),
                    wait_ns: raw.wait_ns,
                    permits: raw.permits,
                    tat: raw.tat,
                    state: PERMIT_LIVE,
                    reserved: 0,
                };
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out_reservation, r) };
                bw_status::BW_OK
            }
            // SAFETY: NULL or writable by contract.
            Err(e) => unsafe { limiter_error(e, out_retry_after_ns) },
        }
    })
}

/// Gives a reservation's permits back as far as their slot has not elapsed (later
/// reservations move up, never to before now), and marks the reservation used.
/// `*out_cancelled` (if not NULL) says whether anything went back.
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_PERMIT_ALREADY_USED` (cancelled before);
/// `BW_WRONG_HANDLE` (another limiter's; it stays live); `BW_INVALID_ARGUMENT` (not
/// filled by `bw_limiter_reserve`). Thread-safe.
///
/// # Safety
/// `limiter` must be NULL or live; `reservation` NULL or valid for reads and writes
/// and not accessed by another thread during the call; `out_cancelled` NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_cancel(
    limiter: *const bw_limiter,
    reservation: *mut bw_reservation,
    out_cancelled: *mut bool,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(limiter, reservation);
        // SAFETY: non-NULL, valid and unshared by contract.
        let r = unsafe { &mut *reservation };
        if let Err(status) = check_permit(r.state, r.instance, handle_id(limiter), "reservation") {
            return status;
        }
        // SAFETY: non-NULL and live by contract.
        let l = unsafe { bw_limiter::borrow(limiter) };
        r.state = PERMIT_USED;
        // bw_reservation has no room yet for the refund ledger and the reading: 0 is
        // the safe default (the refund gives back less, never more; see cancel_raw).
        let cancelled = l.inner().cancel_raw(RawReservation {
            wait_ns: r.wait_ns,
            permits: r.permits,
            tat: r.tat,
            refunds_seen: 0,
            taken_at: 0,
        });
        if !out_cancelled.is_null() {
            // SAFETY: non-NULL and writable by contract.
            unsafe { write_out(out_cancelled, cancelled) };
        }
        bw_status::BW_OK
    })
}

/// Reserves `n` permits due within `max_wait_ns` and sleeps the calling thread (real
/// time) until they are due. Statuses as for `bw_limiter_reserve`. Holds no lock while
/// it sleeps, and its own reference to the limiter. Thread-safe.
///
/// # Safety
/// `limiter` must be NULL or live; `out_retry_after_ns` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_acquire(
    limiter: *const bw_limiter,
    n: u64,
    max_wait_ns: u64,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(limiter);
        // SAFETY: non-NULL and live by contract; the sleep below keeps its own reference.
        let l = unsafe { bw_limiter::to_arc(limiter) };
        match l.try_acquire_n_for(n, Duration::from_nanos(max_wait_ns)) {
            Ok(()) => bw_status::BW_OK,
            // SAFETY: NULL or writable by contract.
            Err(e) => unsafe { limiter_error(e, out_retry_after_ns) },
        }
    })
}

/// Permits that would pass now; 0 if `limiter` is NULL. Thread-safe.
///
/// # Safety
/// `limiter` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_available(limiter: *const bw_limiter) -> u64 {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(limiter, 0, |h| h.inner().available()) }
}

/// Fills `*out` with the limiter's exact counters: calls let through and rejected (see
/// `bw_metrics`; a limiter has no completions).
///
/// Returns `BW_OK`, or `BW_NULL_POINTER` (nothing written). Thread-safe, also while
/// other threads use the limiter.
///
/// # Safety
/// `limiter` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_limiter_get_metrics(
    limiter: *const bw_limiter,
    out: *mut bw_metrics,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(limiter, out);
        // SAFETY: non-NULL here; live and writable by contract.
        unsafe { write_metrics(limiter, out) }
    })
}
