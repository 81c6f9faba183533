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
    /// The library's check word over the other words (written by `bw_limiter_reserve`,
    /// verified by `bw_limiter_cancel`). Never change it.
    pub reserved: u32,
}

/// The check word of a reservation's words (`bw_reservation::reserved`): a keyed hash
/// (SipHash, with a key drawn at random once per process) of everything
/// `bw_limiter_cancel` trusts. A cancel gives back as much as its words say (up to a
/// whole burst for a slot that claims to end far ahead), so words no reservation had
/// must not reach the limiter: forging them means guessing 32 bits of a keyed hash.
/// (A byte-for-byte copy of a live reservation is still one: cancel each at most once.)
fn check_word(instance: u64, wait_ns: u64, permits: u64, tat: u64) -> u32 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(RandomState::new).build_hasher();
    for word in [instance, wait_ns, permits, tat] {
        hasher.write_u64(word);
    }
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

/// Whether `r` carries the check word of its own words. The words are compared through
/// their difference, so the expected word itself never takes part in a comparison (a
/// fuzzer's comparison tracing would otherwise hand it to the next input, and forge).
fn checked(r: &bw_reservation) -> bool {
    let expected = check_word(r.instance, r.wait_ns, r.permits, r.tat);
    std::hint::black_box(r.reserved ^ expected) == 0
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
                let instance = handle_id(limiter);
                let r = bw_reservation {
                    instance,
                    wait_ns: raw.wait_ns,
                    permits: raw.permits,
                    tat: raw.tat,
                    state: PERMIT_LIVE,
                    reserved: check_word(instance, raw.wait_ns, raw.permits, raw.tat),
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
/// filled by `bw_limiter_reserve`, or its words changed since; nothing goes back).
/// Thread-safe.
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
        if !checked(r) {
            return fail(
                bw_status::BW_INVALID_ARGUMENT,
                "the reservation's words were changed after bw_limiter_reserve",
            );
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ffi::clock::{bw_clock_advance, bw_clock_free, bw_clock_new_manual};
    use std::ptr;

    /// A limiter of 10 a second, burst 10, on a manual clock (freed by the caller).
    fn limiter() -> (*mut bw_limiter, *mut bw_clock) {
        let (mut config, mut clock, mut limiter) =
            (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: valid out-pointers, live handles, each builder freed once.
        unsafe {
            assert_eq!(bw_clock_new_manual(1, &mut clock), bw_status::BW_OK);
            assert_eq!(bw_limiter_config_new(&mut config), bw_status::BW_OK);
            bw_limiter_config_set_rate(config, 10, 1_000_000_000);
            assert_eq!(
                bw_limiter_new(config, clock, &mut limiter),
                bw_status::BW_OK
            );
            bw_limiter_config_free(config);
        }
        (limiter, clock)
    }

    fn reserve(limiter: *mut bw_limiter, n: u64) -> bw_reservation {
        // SAFETY: bw_reservation is plain integers: all zeroes is a value.
        let mut r: bw_reservation = unsafe { std::mem::zeroed() };
        // SAFETY: live limiter, valid out-pointers.
        let status = unsafe { bw_limiter_reserve(limiter, n, 0, &mut r, ptr::null_mut()) };
        assert_eq!(status, bw_status::BW_OK);
        r
    }

    fn cancel(limiter: *mut bw_limiter, r: &mut bw_reservation) -> bw_status {
        // SAFETY: live limiter, a reservation valid for reads and writes.
        unsafe { bw_limiter_cancel(limiter, r, ptr::null_mut()) }
    }

    fn try_acquire(limiter: *mut bw_limiter, n: u64) -> bw_status {
        // SAFETY: live limiter.
        unsafe { bw_limiter_try_acquire(limiter, n, ptr::null_mut()) }
    }

    /// A reservation whose words no reserve wrote (a forged slot far ahead, or a real
    /// one's permit count raised) is refused: before the check word, its cancel gave
    /// back a whole burst, and the limiter admitted a second burst at once.
    #[test]
    fn forged_reservations_give_nothing_back() {
        let (limiter, clock) = limiter();
        let mut real = reserve(limiter, 10);
        assert_eq!(try_acquire(limiter, 1), bw_status::BW_RATE_LIMITED);
        let far_ahead = bw_reservation {
            tat: u64::MAX,
            ..real
        };
        let raised = bw_reservation {
            permits: 10,
            ..reserve_after(limiter, clock)
        };
        for mut forged in [
            far_ahead,
            raised,
            bw_reservation {
                reserved: 0,
                ..real
            },
        ] {
            let status = cancel(limiter, &mut forged);
            assert_eq!(
                try_acquire(limiter, 1),
                bw_status::BW_RATE_LIMITED,
                "{forged:?}"
            );
            assert_eq!(status, bw_status::BW_INVALID_ARGUMENT);
        }
        // The real one still goes back, once.
        let mut copy = real;
        assert_eq!(cancel(limiter, &mut real), bw_status::BW_OK);
        assert_eq!(
            cancel(limiter, &mut real),
            bw_status::BW_PERMIT_ALREADY_USED
        );
        assert_eq!(try_acquire(limiter, 9), bw_status::BW_OK);
        copy.state = PERMIT_USED;
        assert_eq!(
            cancel(limiter, &mut copy),
            bw_status::BW_PERMIT_ALREADY_USED
        );
        // SAFETY: the handles made above, freed once.
        unsafe {
            bw_limiter_free(limiter);
            bw_clock_free(clock);
        }
    }

    /// One permit reserved after 100 ms (the burst spent, one permit back).
    fn reserve_after(limiter: *mut bw_limiter, clock: *mut bw_clock) -> bw_reservation {
        // SAFETY: live clock.
        unsafe { bw_clock_advance(clock, 100_000_000) };
        reserve(limiter, 1)
    }
}
