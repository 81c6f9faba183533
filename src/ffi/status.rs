//! Status codes and the thread-local last-error message.

use std::cell::RefCell;
use std::os::raw::c_char;

use crate::{RejectReason, Rejection};

/// The result of every fallible `bw_` function.
///
/// `BW_OK` is 0. Codes 1–7 are decisions, not errors: 1–6 are rejections (the call was
/// answered "not now"; see `retry_after_ns`), 7 is "stop retrying". Codes from 100 are
/// errors: nothing was done and outputs were left untouched; `bw_last_error_message`
/// says why. Values are explicit and never reused.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum bw_status {
    /// Success.
    BW_OK = 0,
    /// Rejected: the circuit breaker is open.
    BW_CIRCUIT_OPEN = 1,
    /// Rejected: the rate limiter has no token now.
    BW_RATE_LIMITED = 2,
    /// Rejected: the bulkhead is full.
    BW_BULKHEAD_FULL = 3,
    /// Rejected: shed by the adaptive limit or the client-side throttle.
    BW_LOAD_SHED = 4,
    /// Rejected: the retry budget is spent.
    BW_RETRY_BUDGET_EXHAUSTED = 5,
    /// Rejected: fault injection forced a rejection.
    BW_INJECTED_REJECTION = 6,
    /// A decision, not an error: stop retrying (`bw_retry_state_next_delay`); the reason
    /// code (`BW_GIVE_UP_*`) says why.
    BW_RETRY_GIVE_UP = 7,
    /// An argument is invalid: an unknown enum code, invalid UTF-8, a value out of range.
    BW_INVALID_ARGUMENT = 100,
    /// A required pointer argument was NULL.
    BW_NULL_POINTER = 101,
    /// A configuration (builder values or policy file) is invalid; the message names
    /// the policy, field and reason.
    BW_INVALID_CONFIG = 102,
    /// No policy has that name.
    BW_NOT_FOUND = 103,
    /// The request can never pass (e.g. a weight above the limiter's burst).
    BW_NEVER_PASSES = 104,
    /// The permit was already completed or released.
    BW_PERMIT_ALREADY_USED = 105,
    /// A file could not be read.
    BW_IO_ERROR = 106,
    /// The permit belongs to another handle.
    BW_WRONG_HANDLE = 107,
    /// The policy has no such stage (e.g. no `chaos` or no `circuit_breaker` section).
    BW_NO_STAGE = 108,
    /// Something that can be set once (an event listener) is already set.
    BW_ALREADY_SET = 109,
    /// A host-wide segment (`scope = "host"`) could not be used. The message starts with
    /// the cause (`config_mismatch`, `version_mismatch`, `wrong_magic`, `truncated`,
    /// `layout_mismatch`, `corrupt_state`, `not_owner`, `permissions`, `invalid_name`,
    /// `process_table_full`, `unsupported`, `io`) and names both values of a mismatch.
    BW_HOST_SEGMENT = 110,
    /// A panic was caught at the boundary; the handle may be in an unspecified (but
    /// memory-safe) state.
    BW_PANIC = 199,
}

impl bw_status {
    /// The status of a rejection.
    pub(crate) fn of_rejection(reason: RejectReason) -> bw_status {
        match reason {
            RejectReason::CircuitOpen => bw_status::BW_CIRCUIT_OPEN,
            RejectReason::RateLimited => bw_status::BW_RATE_LIMITED,
            RejectReason::BulkheadFull => bw_status::BW_BULKHEAD_FULL,
            RejectReason::LoadShed => bw_status::BW_LOAD_SHED,
            RejectReason::RetryBudgetExhausted => bw_status::BW_RETRY_BUDGET_EXHAUSTED,
            RejectReason::Injected => bw_status::BW_INJECTED_REJECTION,
        }
    }
}

/// The status of `rejection`, with its `retry_after` (0 for none) written to
/// `*out_retry_after_ns` when that is not NULL: what every acquire of the C ABI returns
/// when a stage refuses.
///
/// # Safety
/// `out_retry_after_ns` must be NULL or valid for a write.
pub(crate) unsafe fn write_rejection(
    rejection: &Rejection,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    if !out_retry_after_ns.is_null() {
        let after = rejection
            .retry_after
            .map_or(0, crate::clock::duration_to_nanos);
        // SAFETY: non-NULL, so valid for a write by this function's contract.
        unsafe { super::boundary::write_out(out_retry_after_ns, after) };
    }
    bw_status::of_rejection(rejection.reason)
}

/// The one table of status texts. Its `match` is exhaustive, so a variant added to
/// [`bw_status`] without a text does not compile, and [`bw_status::ALL`] (which
/// `bw_status_str` decodes through) comes from the same rows. The enum itself stays
/// written out above because cbindgen reads declarations, not macro expansions.
macro_rules! status_table {
    ($($status:ident => $text:literal,)+) => {
        impl bw_status {
            /// Every status, in code order.
            pub(crate) const ALL: [bw_status; [$(stringify!($status)),+].len()] =
                [$(bw_status::$status),+];

            fn text(self) -> &'static [u8] {
                match self {
                    $(bw_status::$status => concat!($text, "\0").as_bytes(),)+
                }
            }
        }
    };
}

status_table! {
    BW_OK => "ok",
    BW_CIRCUIT_OPEN => "rejected: circuit open",
    BW_RATE_LIMITED => "rejected: rate limited",
    BW_BULKHEAD_FULL => "rejected: bulkhead full",
    BW_LOAD_SHED => "rejected: load shed",
    BW_RETRY_BUDGET_EXHAUSTED => "rejected: retry budget exhausted",
    BW_INJECTED_REJECTION => "rejected: injected fault",
    BW_RETRY_GIVE_UP => "give up retrying",
    BW_INVALID_ARGUMENT => "invalid argument",
    BW_NULL_POINTER => "null pointer",
    BW_INVALID_CONFIG => "invalid configuration",
    BW_NOT_FOUND => "not found",
    BW_NEVER_PASSES => "request can never pass",
    BW_PERMIT_ALREADY_USED => "permit already used",
    BW_IO_ERROR => "i/o error",
    BW_WRONG_HANDLE => "permit belongs to another handle",
    BW_NO_STAGE => "the policy has no such stage",
    BW_ALREADY_SET => "already set",
    BW_HOST_SEGMENT => "host-wide segment unusable",
    BW_PANIC => "internal panic caught at the C boundary",
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `message` as this thread's last error and returns `status`, so error paths
/// read `return fail(BW_…, "why")`. Only error paths allocate; rejections never do.
#[cold]
pub(crate) fn fail(status: bw_status, message: impl std::fmt::Display) -> bw_status {
    set_last_error(message);
    status
}

/// Records `message` as this thread's last error.
#[cold]
pub(crate) fn set_last_error(message: impl std::fmt::Display) {
    use std::fmt::Write;
    LAST_ERROR.with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            slot.clear();
            let _ = write!(slot, "{message}");
        }
    });
}

/// Static text for a status code; unknown codes get "unknown status". The returned
/// string is NUL-terminated, static, and must not be freed. Thread-safe.
#[no_mangle]
pub extern "C" fn bw_status_str(status: i32) -> *const c_char {
    let text: &'static [u8] = match status_from_code(status) {
        Some(status) => status.text(),
        None => b"unknown status\0",
    };
    text.as_ptr().cast()
}

fn status_from_code(code: i32) -> Option<bw_status> {
    bw_status::ALL.into_iter().find(|s| *s as i32 == code)
}

/// Copies this thread's last error message into `buf` (at most `len` bytes including
/// the terminating NUL; truncated if needed) and returns the message's full length in
/// bytes, without the NUL — like `snprintf`, so a caller can size a buffer with
/// `bw_last_error_message(NULL, 0) + 1`. With `buf` NULL or `len` 0 nothing is written.
/// Returns 0 when no error was recorded on this thread. Thread-safe (per thread).
///
/// # Safety
/// `buf`, when not NULL, must point to at least `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn bw_last_error_message(buf: *mut c_char, len: usize) -> usize {
    LAST_ERROR.with(|slot| {
        let Ok(message) = slot.try_borrow() else {
            return 0;
        };
        let bytes = message.as_bytes();
        if !buf.is_null() && len > 0 {
            let n = bytes.len().min(len - 1);
            // SAFETY:
            // - the caller guarantees `buf` points to `len` writable bytes, and
            //   `n + 1 <= len`;
            // - `bytes` is a live Rust string that cannot overlap caller memory.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        bytes.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_status_decodes_and_has_its_own_text() {
        let mut texts = std::collections::HashSet::new();
        let mut last = -1;
        for status in bw_status::ALL {
            let code = status as i32;
            assert!(code > last, "ALL is in code order");
            last = code;
            assert_eq!(status_from_code(code), Some(status));
            // SAFETY: bw_status_str returns a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(bw_status_str(code)) };
            assert_ne!(text.to_bytes(), b"unknown status");
            assert!(texts.insert(text.to_owned()), "{status:?} repeats a text");
        }
        assert_eq!(status_from_code(8), None);
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(bw_status_str(8)) };
        assert_eq!(unknown.to_bytes(), b"unknown status");
    }
}
