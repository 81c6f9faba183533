//! `bw_policy_acquire_keyed` / `bw_policy_complete_keyed`: a policy's calls with a key,
//! so its per-key limits (the `per_key` section) apply. The permit is a `bw_permit`
//! plus the two words of the key's slot, by value: no allocation per call.

use super::boundary::{ensure_non_null, ffi_status, write_out, ArcHandle};
use super::codes::parse_priority;
use super::policy::{bw_permit, bw_policy, completion, words::KEYED};
use super::status::{bw_status, fail, write_rejection};
use crate::keyed::KeySlot;
use crate::policy::RawPolicyPermit;

/// A permit of a keyed call: the policy permit, and the key's slot in the policy's
/// per-key table. Filled by `bw_policy_acquire_keyed`; give it back exactly once to
/// `bw_policy_complete_keyed` of the same policy. Read `permit.flags` and
/// `permit.injected_latency_ns` as for `bw_policy_acquire`; never write `key_opaque`
/// or `permit.opaque`. `bw_policy_complete` refuses the inner permit of one that holds
/// a key's slot (`BW_INVALID_ARGUMENT`, the permit stays live), so the slot cannot be
/// lost; a copy of the struct cannot be told from the original, so never complete a
/// copy.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bw_keyed_permit {
    /// The policy permit.
    pub permit: bw_permit,
    /// The library's words for the key's slot (identity, place). Never change them.
    pub key_opaque: [u64; 2],
}

impl bw_keyed_permit {
    /// The keyed permit C receives for `raw`: the policy permit, marked as holding a
    /// key's slot when it does.
    pub(super) fn issue(raw: RawPolicyPermit) -> bw_keyed_permit {
        let slot = raw.key_slot();
        let mut permit = bw_permit::issue(raw);
        let key_opaque = match slot {
            Some(slot) => {
                permit.opaque[5] |= KEYED;
                slot.to_parts()
            }
            None => [0; 2],
        };
        bw_keyed_permit { permit, key_opaque }
    }
}

/// Asks the per-key limits of `key` (`key_len` bytes, any bytes; the empty key is a
/// key), then every stage of `policy`, at `priority` (`BW_PRIORITY_*`). A later stage
/// refusing gives back what the key's limits granted. On a policy without a `per_key`
/// section the key is not looked at (the same as `bw_policy_acquire`).
///
/// - `BW_OK`: `*out_permit` is filled; complete it exactly once with
///   `bw_policy_complete_keyed`.
/// - a rejection status, as `bw_policy_acquire`: the key's own limits give
///   `BW_RATE_LIMITED` (its quota, with the wait), `BW_BULKHEAD_FULL` (its
///   `max_concurrent`) or `BW_LOAD_SHED` (the table's bucket for the key is full of
///   keys holding permits). `*out_permit` is untouched; `*out_retry_after_ns`, when
///   not NULL, receives the wait (0 when unknown). Nothing is allocated.
/// - `BW_NULL_POINTER` (policy or out_permit NULL, or key NULL with `key_len` > 0),
///   `BW_INVALID_ARGUMENT` (unknown priority): nothing written.
///
/// Thread-safe; may block only if the policy's bulkhead has a `max_wait`.
///
/// # Safety
/// `policy` must be NULL or live; `key` NULL or valid for reads of `key_len` bytes;
/// `out_permit` and `out_retry_after_ns` NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_acquire_keyed(
    policy: *const bw_policy,
    key: *const u8,
    key_len: usize,
    priority: i32,
    out_permit: *mut bw_keyed_permit,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_permit);
        // SAFETY: `key` is valid for reads of `key_len` bytes by contract.
        let key = match unsafe { key_bytes(key, key_len) } {
            Ok(key) => key,
            Err(status) => return status,
        };
        let priority = match parse_priority(priority) {
            Ok(p) => p,
            Err(status) => return status,
        };
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match policy.acquire_keyed_raw(key, priority) {
            Ok(raw) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out_permit, bw_keyed_permit::issue(raw)) };
                bw_status::BW_OK
            }
            // SAFETY: NULL or writable by contract.
            Err(rejection) => unsafe { write_rejection(&rejection, out_retry_after_ns) },
        }
    })
}

/// Reports how the call of a keyed `permit` went (`outcome`: `BW_OUTCOME_*`), frees
/// what the policy permit holds and gives back the key's slot. `duration_ns` as for
/// `bw_policy_complete`.
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_ARGUMENT` for an unknown outcome
/// (the permit stays live) or a struct `bw_policy_acquire_keyed` did not fill (zeroed,
/// or its words changed); `BW_PERMIT_ALREADY_USED` if completed before;
/// `BW_WRONG_HANDLE` if it came from another policy. On any error nothing is
/// completed. Thread-safe, allocation-free on success.
///
/// # Safety
/// `policy` must be NULL or live; `permit` NULL or a permit filled by
/// `bw_policy_acquire_keyed`, not accessed by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_complete_keyed(
    policy: *const bw_policy,
    permit: *mut bw_keyed_permit,
    outcome: i32,
    duration_ns: u64,
) -> bw_status {
    ffi_status!({
        // SAFETY: the caller's contract is `completion`'s.
        let (policy, keyed, outcome, duration) =
            match unsafe { completion(policy, permit, outcome, duration_ns) } {
                Ok(args) => args,
                Err(status) => return status,
            };
        let holds_slot = keyed.permit.opaque[5] & KEYED != 0;
        let slot = if holds_slot {
            match KeySlot::from_parts(keyed.key_opaque) {
                Some(slot) => Some(slot),
                None => {
                    return fail(
                        bw_status::BW_INVALID_ARGUMENT,
                        "the permit's key words were changed after bw_policy_acquire_keyed",
                    )
                }
            }
        } else {
            None
        };
        // The inner permit is redeemed as a plain one (the bit set back whatever
        // happens, so a second completion still knows it for a keyed permit).
        keyed.permit.opaque[5] &= !KEYED;
        let redeemed = keyed.permit.redeem(policy);
        if holds_slot {
            keyed.permit.opaque[5] |= KEYED;
        }
        let mut raw = match redeemed {
            Ok(raw) => raw,
            Err(status) => return status,
        };
        raw.keyed = slot;
        policy.complete_raw(raw, outcome, duration);
        bw_status::BW_OK
    })
}

/// The key a caller passed as a pointer and a length: empty for a length of 0 (the
/// pointer may then be NULL), `BW_NULL_POINTER` (reported) for a NULL pointer with a
/// length.
///
/// # Safety
/// When `key` is not NULL, it must be valid for reads of `key_len` bytes for `'a`.
pub(crate) unsafe fn key_bytes<'a>(key: *const u8, key_len: usize) -> Result<&'a [u8], bw_status> {
    if key_len == 0 {
        return Ok(&[]);
    }
    if key.is_null() {
        return Err(fail(
            bw_status::BW_NULL_POINTER,
            "`key` is NULL and `key_len` > 0",
        ));
    }
    // SAFETY: non-NULL (checked) and valid for reads of `key_len` bytes (the caller's
    // promise); the bytes are only read while the borrow lives.
    Ok(unsafe { std::slice::from_raw_parts(key, key_len) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{AnyClock, ManualClock};
    use crate::ffi::codes::{BW_OUTCOME_SUCCESS, BW_PRIORITY_DEFAULT};
    use crate::keyed::PerKeyConfig;
    use crate::policy::{Policy, PolicyConfig};
    use std::time::Duration;

    fn policy() -> *const bw_policy {
        let policy = Policy::with_clock(
            PolicyConfig::new("api").with_per_key(
                PerKeyConfig::new(100, Duration::from_secs(1)).with_max_concurrent(1),
            ),
            AnyClock::Manual(ManualClock::new()),
        )
        .unwrap();
        bw_policy::into_handle(policy)
    }

    /// A zeroed permit, as a C caller would declare one.
    fn blank() -> bw_keyed_permit {
        bw_keyed_permit {
            permit: bw_permit {
                opaque: [0; 6],
                injected_latency_ns: 0,
                flags: 0,
                reserved: 0,
            },
            key_opaque: [0; 2],
        }
    }

    fn acquire(p: *const bw_policy, key: &[u8]) -> (bw_status, bw_keyed_permit) {
        let mut permit: bw_keyed_permit = blank();
        let mut after = 0;
        // SAFETY: a live policy, a valid key slice and valid out-pointers.
        let status = unsafe {
            bw_policy_acquire_keyed(
                p,
                key.as_ptr(),
                key.len(),
                BW_PRIORITY_DEFAULT,
                &mut permit,
                &mut after,
            )
        };
        (status, permit)
    }

    #[test]
    fn a_keyed_permit_round_trips_and_frees_the_keys_slot() {
        let p = policy();
        let (status, mut permit) = acquire(p, b"tenant");
        assert_eq!(status, bw_status::BW_OK);
        assert_eq!(acquire(p, b"tenant").0, bw_status::BW_BULKHEAD_FULL);
        // The plain completion refuses it and leaves it live.
        // SAFETY: live policy, valid permit.
        let plain = unsafe {
            crate::ffi::policy::bw_policy_complete(p, &mut permit.permit, BW_OUTCOME_SUCCESS, 0)
        };
        assert_eq!(plain, bw_status::BW_INVALID_ARGUMENT);
        // SAFETY: as above.
        let done = unsafe { bw_policy_complete_keyed(p, &mut permit, BW_OUTCOME_SUCCESS, 0) };
        assert_eq!(done, bw_status::BW_OK);
        // SAFETY: as above.
        let again = unsafe { bw_policy_complete_keyed(p, &mut permit, BW_OUTCOME_SUCCESS, 0) };
        assert_eq!(again, bw_status::BW_PERMIT_ALREADY_USED);
        assert_eq!(
            acquire(p, b"tenant").0,
            bw_status::BW_OK,
            "the slot came back"
        );
        // SAFETY: the reference made by `policy()`.
        unsafe { crate::ffi::policy::bw_policy_free(p) };
    }

    #[test]
    fn bad_arguments_get_statuses() {
        let p = policy();
        let mut permit: bw_keyed_permit = blank();
        // SAFETY: NULL key with a length is refused before any read.
        let status = unsafe {
            bw_policy_acquire_keyed(p, std::ptr::null(), 3, 0, &mut permit, std::ptr::null_mut())
        };
        assert_eq!(status, bw_status::BW_NULL_POINTER);
        // SAFETY: the empty key may be NULL.
        let status = unsafe {
            bw_policy_acquire_keyed(p, std::ptr::null(), 0, 0, &mut permit, std::ptr::null_mut())
        };
        assert_eq!(status, bw_status::BW_OK);
        let mut forged = permit;
        forged.key_opaque = [0, 0];
        // SAFETY: live policy, valid (forged) permit struct.
        let status = unsafe { bw_policy_complete_keyed(p, &mut forged, BW_OUTCOME_SUCCESS, 0) };
        assert_eq!(status, bw_status::BW_INVALID_ARGUMENT);
        let mut zeroed: bw_keyed_permit = blank();
        // SAFETY: as above.
        let status = unsafe { bw_policy_complete_keyed(p, &mut zeroed, BW_OUTCOME_SUCCESS, 0) };
        assert_eq!(status, bw_status::BW_INVALID_ARGUMENT);
        // SAFETY: as above; the real permit still completes.
        let status = unsafe { bw_policy_complete_keyed(p, &mut permit, BW_OUTCOME_SUCCESS, 0) };
        assert_eq!(status, bw_status::BW_OK);
        // SAFETY: the reference made by `policy()`.
        unsafe { crate::ffi::policy::bw_policy_free(p) };
    }
}
