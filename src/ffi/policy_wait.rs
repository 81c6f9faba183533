//! `bw_policy_acquire_within` / `bw_policy_bulkhead_max_wait`: a policy's acquire for a
//! binding that can cancel a call (Go `context`, Python `asyncio`) while it waits for a
//! full bulkhead. `bw_policy_acquire` blocks the thread for the bulkhead's whole
//! `max_wait` and cannot be interrupted; here the caller waits in slices it chooses,
//! looks at its cancellation between them, and the call is counted once.

use std::time::Duration;

use super::boundary::{ensure_non_null, ffi_status, write_out, ArcHandle};
use super::codes::parse_priority;
use super::keyed::{bw_keyed_permit, key_bytes};
use super::policy::bw_policy;
use super::status::{bw_status, write_rejection};
use super::trace::{bw_trace_context, with_cause};
use crate::policy::NoWait;

/// Writes the `max_wait` of the policy's bulkhead (nanoseconds; 0 when it has no
/// bulkhead or its bulkhead never waits) to `*out_max_wait_ns`: whether
/// `bw_policy_acquire` can block, so a binding that can cancel a call uses
/// `bw_policy_acquire_within` instead. A held handle reads the configuration it
/// follows now. Returns `BW_OK` or `BW_NULL_POINTER` (nothing written). Thread-safe,
/// allocation-free.
///
/// # Safety
/// `policy` must be NULL or live; `out_max_wait_ns` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_bulkhead_max_wait(
    policy: *const bw_policy,
    out_max_wait_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_max_wait_ns);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        let max_wait = policy
            .config()
            .bulkhead
            .map_or(0, |b| crate::clock::duration_to_nanos(b.max_wait));
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out_max_wait_ns, max_wait) };
        bw_status::BW_OK
    })
}

/// Asks every stage of `policy` for a permit, as `bw_policy_acquire_keyed_traced` when
/// `keyed` (`key`, `key_len` as there) and as `bw_policy_acquire_traced` otherwise
/// (`key` ignored), with `trace` NULL for an untraced call — but a full bulkhead waits
/// at most `wait_ns` (and never past its configured `max_wait`; 0: no wait), so the
/// caller can look at its cancellation between slices of the wait.
///
/// - `BW_OK`: `*out_permit` is filled. Complete it exactly once: with
///   `bw_policy_complete_keyed(_traced)` when `keyed`, otherwise its `permit` with
///   `bw_policy_complete(_traced)`.
/// - `BW_BULKHEAD_FULL` with `*out_max_wait_ns` (when not NULL) set to the bulkhead's
///   configured `max_wait` (> 0): the policy's bulkhead is full, and since
///   `count_full` is false the refusal was not counted. Nothing is held: ask again
///   (the next slice), or give up. A call given up because it was cancelled is not
///   counted at all; one whose `max_wait` has passed is counted by one last call with
///   `count_full` true (which may still get a permit).
/// - any other rejection status (a key's own `BW_BULKHEAD_FULL` among them), and a
///   bulkhead's refusal when `count_full` is true or its `max_wait` is 0: counted, as
///   `bw_policy_acquire` counts it, with `*out_max_wait_ns` set to 0.
///   `*out_retry_after_ns` as for `bw_policy_acquire`.
/// - `BW_NULL_POINTER` (policy or out_permit NULL, or key NULL with `key_len` > 0 when
///   `keyed`), `BW_INVALID_ARGUMENT` (unknown priority, invalid `trace`): nothing
///   written.
///
/// Thread-safe; blocks for at most `wait_ns`. `*out_permit` is written only on
/// `BW_OK`.
///
/// # Safety
/// `policy` must be NULL or live; `key` NULL or valid for reads of `key_len` bytes;
/// `trace` NULL or valid for reads; `out_permit`, `out_retry_after_ns` and
/// `out_max_wait_ns` NULL or valid for writes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn bw_policy_acquire_within(
    policy: *const bw_policy,
    key: *const u8,
    key_len: usize,
    keyed: bool,
    priority: i32,
    trace: *const bw_trace_context,
    wait_ns: u64,
    count_full: bool,
    out_permit: *mut bw_keyed_permit,
    out_retry_after_ns: *mut u64,
    out_max_wait_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_permit);
        let key = match keyed {
            false => None,
            // SAFETY: `key` is valid for reads of `key_len` bytes by contract.
            true => match unsafe { key_bytes(key, key_len) } {
                Ok(key) => Some(key),
                Err(status) => return status,
            },
        };
        let priority = match parse_priority(priority) {
            Ok(p) => p,
            Err(status) => return status,
        };
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        let call = || {
            let answer =
                policy.acquire_raw_within(key, priority, Duration::from_nanos(wait_ns), count_full);
            let max_wait = match &answer {
                Err(NoWait::BulkheadFull { max_wait }) => {
                    crate::clock::duration_to_nanos(*max_wait)
                }
                _ => 0,
            };
            if !out_max_wait_ns.is_null() {
                // SAFETY: non-NULL, so writable by contract.
                unsafe { write_out(out_max_wait_ns, max_wait) };
            }
            match answer {
                Ok(raw) => {
                    // SAFETY: non-NULL and writable by contract.
                    unsafe { write_out(out_permit, bw_keyed_permit::issue(raw)) };
                    bw_status::BW_OK
                }
                Err(NoWait::BulkheadFull { .. }) => {
                    if !out_retry_after_ns.is_null() {
                        // SAFETY: non-NULL, so writable by contract.
                        unsafe { write_out(out_retry_after_ns, 0) };
                    }
                    bw_status::BW_BULKHEAD_FULL
                }
                // SAFETY: NULL or writable by contract.
                Err(NoWait::Rejected(rejection)) => unsafe {
                    write_rejection(&rejection, out_retry_after_ns)
                },
            }
        };
        if trace.is_null() {
            // Untraced, as `bw_policy_acquire`: no cause scope to enter and leave (a
            // thread-local write and restore, ~100 instructions).
            return call();
        }
        // SAFETY: `trace` is non-NULL and readable by contract.
        unsafe { with_cause(trace, call) }
    })
}
