//! The C boundary: panic catching, pointer checks, and handle ownership.
//!
//! Every exported function body runs inside [`ffi_status!`] (or [`ffi_value!`] for
//! functions without a status), so no panic ever unwinds into C. Handles are of two
//! kinds, marked in the type system (as in rustls-ffi): [`BoxHandle`] for single-owner
//! builders freed with `Box`, and [`ArcHandle`] for shared runtime objects (`_clone`
//! adds a reference, `_free` drops one), so an `Arc` handle cannot be freed as a `Box`.

use std::sync::Arc;

use super::status::{bw_status, fail};

/// Runs `$body` (an expression of type `bw_status`), turning a panic into `BW_PANIC`
/// with a last-error message.
macro_rules! ffi_status {
    ($body:expr) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::ffi::status::bw_status { $body },
        )) {
            Ok(status) => status,
            Err(payload) => $crate::ffi::boundary::panicked(payload),
        }
    }};
}

/// Runs `$body` (any expression), returning `$on_panic` if it panics.
macro_rules! ffi_value {
    ($on_panic:expr, $body:expr) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(payload) => {
                let _ = $crate::ffi::boundary::panicked(payload);
                $on_panic
            }
        }
    }};
}

/// Returns `BW_NULL_POINTER` from the enclosing closure if a pointer is NULL.
macro_rules! ensure_non_null {
    ($($ptr:ident),+ $(,)?) => {
        $(
            if $ptr.is_null() {
                return $crate::ffi::status::fail(
                    $crate::ffi::status::bw_status::BW_NULL_POINTER,
                    concat!("`", stringify!($ptr), "` is NULL"),
                );
            }
        )+
    };
}

pub(crate) use {ensure_non_null, ffi_status, ffi_value};

/// Records a caught panic as the last error.
#[cold]
pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> bw_status {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    fail(
        bw_status::BW_PANIC,
        format_args!("panic caught at the C boundary: {what}"),
    )
}

/// A C handle type that stands for a shared, thread-safe `Arc<Self::Rust>`.
pub(crate) trait ArcHandle: Sized {
    /// The Rust object behind the handle.
    type Rust: Send + Sync;

    /// Moves `value` into a new handle (one reference).
    fn into_handle(value: Self::Rust) -> *mut Self {
        Self::from_arc(Arc::new(value))
    }

    /// Turns one reference to a shared object into a handle (for objects the core
    /// already shares, such as an engine's policies).
    fn from_arc(value: Arc<Self::Rust>) -> *mut Self {
        Arc::into_raw(value) as *mut Self
    }

    /// Borrows the object behind a non-NULL handle.
    ///
    /// # Safety
    /// `handle` must come from [`ArcHandle::into_handle`] (or `clone`) of this type and
    /// must not have been freed by all its owners.
    unsafe fn borrow<'a>(handle: *const Self) -> &'a Self::Rust {
        // SAFETY: the caller guarantees `handle` is a live `Arc<Self::Rust>` pointer,
        // which stays valid while the caller holds its reference.
        unsafe { &*(handle as *const Self::Rust) }
    }

    /// Adds a reference and returns the same handle value; NULL gives NULL.
    ///
    /// # Safety
    /// `handle` must be NULL or as for [`ArcHandle::borrow`].
    unsafe fn clone_handle(handle: *const Self) -> *mut Self {
        if !handle.is_null() {
            // SAFETY: non-NULL, and the caller guarantees a live `Arc` pointer of this
            // type.
            unsafe { Arc::increment_strong_count(handle as *const Self::Rust) };
        }
        handle as *mut Self
    }

    /// Drops one reference; NULL is a no-op.
    ///
    /// # Safety
    /// `handle` must be NULL or a live handle of this type; each reference is dropped
    /// at most once.
    unsafe fn free_handle(handle: *const Self) {
        if !handle.is_null() {
            // SAFETY: the caller guarantees a live `Arc` pointer whose reference it owns
            // and gives up here.
            drop(unsafe { Arc::from_raw(handle as *const Self::Rust) });
        }
    }

    /// A new `Arc` to the object behind a live handle (for handles that keep others).
    ///
    /// # Safety
    /// As for [`ArcHandle::borrow`].
    unsafe fn to_arc(handle: *const Self) -> Arc<Self::Rust> {
        // SAFETY: the caller guarantees a live `Arc` pointer; we add a reference before
        // materialising the second `Arc`, so the counts stay balanced.
        unsafe {
            Arc::increment_strong_count(handle as *const Self::Rust);
            Arc::from_raw(handle as *const Self::Rust)
        }
    }
}

/// A C handle type that stands for a single-owner `Box<Self::Rust>` (config builders).
pub(crate) trait BoxHandle: Sized {
    /// The Rust object behind the handle.
    type Rust;

    /// Moves `value` into a new handle.
    fn into_handle(value: Self::Rust) -> *mut Self {
        Box::into_raw(Box::new(value)) as *mut Self
    }

    /// Borrows the object behind a non-NULL handle mutably.
    ///
    /// # Safety
    /// `handle` must come from [`BoxHandle::into_handle`] of this type, not be freed,
    /// and not be used from another thread at the same time (builders are
    /// single-threaded).
    unsafe fn borrow_mut<'a>(handle: *mut Self) -> &'a mut Self::Rust {
        // SAFETY: the caller guarantees a live, exclusively used box pointer.
        unsafe { &mut *(handle as *mut Self::Rust) }
    }

    /// Borrows the object behind a non-NULL handle.
    ///
    /// # Safety
    /// As for [`BoxHandle::borrow_mut`].
    unsafe fn borrow<'a>(handle: *const Self) -> &'a Self::Rust {
        // SAFETY: the caller guarantees a live box pointer not mutated concurrently.
        unsafe { &*(handle as *const Self::Rust) }
    }

    /// Frees the handle; NULL is a no-op.
    ///
    /// # Safety
    /// `handle` must be NULL or a live handle of this type, freed at most once.
    unsafe fn free_handle(handle: *mut Self) {
        if !handle.is_null() {
            // SAFETY: the caller guarantees a live box pointer it owns and gives up.
            drop(unsafe { Box::from_raw(handle as *mut Self::Rust) });
        }
    }
}

/// The body of every value-returning function that takes a runtime handle: `default`
/// when `handle` is NULL or `read` panics, `read`'s answer otherwise. One helper, so
/// every such function treats NULL and panics alike.
///
/// # Safety
/// `handle` must be NULL or live (as for [`ArcHandle::borrow`]).
#[inline]
pub(crate) unsafe fn value_or<H: ArcHandle, T: Copy>(
    handle: *const H,
    default: T,
    read: impl FnOnce(&H::Rust) -> T,
) -> T {
    non_null_or(handle, default, |h| {
        // SAFETY: `non_null_or` passes only a non-NULL `handle`, live by this
        // function's contract.
        read(unsafe { H::borrow(h) })
    })
}

/// [`value_or`] for a single-owner handle (a retry state): `default` when `handle` is
/// NULL or `read` panics.
///
/// # Safety
/// `handle` must be NULL or live (as for [`BoxHandle::borrow`]).
#[inline]
pub(crate) unsafe fn box_value_or<H: BoxHandle, T: Copy>(
    handle: *const H,
    default: T,
    read: impl FnOnce(&H::Rust) -> T,
) -> T {
    non_null_or(handle, default, |h| {
        // SAFETY: `non_null_or` passes only a non-NULL `handle`, live and not mutated
        // during the call by this function's contract.
        read(unsafe { H::borrow(h) })
    })
}

/// The NULL check and panic catch that [`value_or`] and [`box_value_or`] share:
/// `read` sees only a non-NULL `handle`.
#[inline]
fn non_null_or<H, T: Copy>(handle: *const H, default: T, read: impl FnOnce(*const H) -> T) -> T {
    ffi_value!(default, {
        if handle.is_null() {
            return default;
        }
        read(handle)
    })
}

/// The body of every `_clone` of a runtime handle: a new reference, NULL for NULL.
///
/// # Safety
/// `handle` must be NULL or live.
pub(crate) unsafe fn clone_or_null<H: ArcHandle>(handle: *const H) -> *mut H {
    // SAFETY: NULL or live by this function's contract.
    ffi_value!(std::ptr::null_mut(), unsafe { H::clone_handle(handle) })
}

/// The body of every `_free` of a runtime handle: drops one reference; NULL is a no-op.
///
/// # Safety
/// `handle` must be NULL or a live reference owned by the caller, given up here.
pub(crate) unsafe fn release<H: ArcHandle>(handle: *const H) {
    // SAFETY: NULL or a live, owned reference, by this function's contract.
    ffi_value!((), unsafe { H::free_handle(handle) })
}

/// Reads a NUL-terminated string argument as bytes; NULL → `BW_NULL_POINTER` with a
/// message naming the argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid and
/// unmodified for `'a`.
pub(crate) unsafe fn c_bytes<'a>(
    ptr: *const std::os::raw::c_char,
    name: &str,
) -> Result<&'a [u8], bw_status> {
    if ptr.is_null() {
        return Err(fail(
            bw_status::BW_NULL_POINTER,
            format_args!("`{name}` is NULL"),
        ));
    }
    // SAFETY: non-NULL, and by contract NUL-terminated and valid for 'a.
    Ok(unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes())
}

/// Reads a NUL-terminated UTF-8 string argument; NULL → `BW_NULL_POINTER`, invalid
/// UTF-8 → `BW_INVALID_ARGUMENT`, each with a message naming the argument.
///
/// # Safety
/// As for [`c_bytes`].
pub(crate) unsafe fn c_str<'a>(
    ptr: *const std::os::raw::c_char,
    name: &str,
) -> Result<&'a str, bw_status> {
    // SAFETY: as this function's contract.
    let bytes = unsafe { c_bytes(ptr, name) }?;
    std::str::from_utf8(bytes).map_err(|e| {
        fail(
            bw_status::BW_INVALID_ARGUMENT,
            format_args!("`{name}` is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// Reads a NUL-terminated path argument. On Unix a path is bytes, so any bytes are a
/// path; elsewhere it must be UTF-8 (`BW_INVALID_ARGUMENT`).
///
/// # Safety
/// As for [`c_bytes`].
pub(crate) unsafe fn c_path<'a>(
    ptr: *const std::os::raw::c_char,
    name: &str,
) -> Result<&'a std::path::Path, bw_status> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: as this function's contract.
        let bytes = unsafe { c_bytes(ptr, name) }?;
        Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as this function's contract.
        unsafe { c_str(ptr, name) }.map(std::path::Path::new)
    }
}

/// Moves a Rust string to C as a NUL-terminated, heap-allocated copy, freed with
/// `bw_string_free`. Interior NULs (never produced by the library's text) are dropped.
pub(crate) fn into_c_string(text: String) -> *mut std::os::raw::c_char {
    let bytes: Vec<u8> = text.into_bytes().into_iter().filter(|&b| b != 0).collect();
    match std::ffi::CString::new(bytes) {
        Ok(s) => s.into_raw(),
        Err(_) => std::ptr::null_mut(),
    }
}

/// Writes `value` through `out` after a NULL check already done by the caller.
///
/// # Safety
/// `out` must be non-NULL and valid for one write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: the caller guarantees `out` is non-NULL and writable.
    unsafe { out.write(value) }
}

/// Records an invalid configuration as the last error (`BW_INVALID_CONFIG`), naming
/// what was being built and the field.
#[cold]
pub(crate) fn config_error(what: &str, error: &crate::ConfigError) -> bw_status {
    fail(
        bw_status::BW_INVALID_CONFIG,
        format_args!("invalid {what} configuration: {error}"),
    )
}

/// The identity of a live handle, stored in permits so a permit given to another
/// handle is refused with `BW_WRONG_HANDLE`.
#[inline]
pub(crate) fn handle_id<T>(handle: *const T) -> u64 {
    handle as usize as u64
}

/// The live/used marker (16 bits) of a permit or reservation: written by the acquire
/// that filled it ("lv"), replaced on completion or cancellation ("us"). Any other
/// value (a zeroed or forged struct) is refused.
pub(crate) const PERMIT_LIVE: u32 = 0x6c76;
/// Marks a completed permit or cancelled reservation.
pub(crate) const PERMIT_USED: u32 = 0x7573;

/// Checks a permit's live/used marker and owner, for every completion path
/// (`bw_policy_complete`, `bw_breaker_complete`, `bw_limiter_cancel`); `what` names the
/// permit kind for the message. The owner is checked only for a live marker, so a
/// forged struct is `BW_INVALID_ARGUMENT` whatever its identity word holds.
#[inline]
pub(crate) fn check_permit(
    marker: u32,
    instance: u64,
    owner: u64,
    what: &str,
) -> Result<(), bw_status> {
    match marker {
        PERMIT_LIVE if instance == owner => Ok(()),
        PERMIT_LIVE => Err(fail(
            bw_status::BW_WRONG_HANDLE,
            format_args!("the {what} belongs to another handle"),
        )),
        PERMIT_USED => Err(fail(
            bw_status::BW_PERMIT_ALREADY_USED,
            format_args!("the {what} was already used"),
        )),
        _ => Err(fail(
            bw_status::BW_INVALID_ARGUMENT,
            format_args!("the {what} was not filled by the library"),
        )),
    }
}
