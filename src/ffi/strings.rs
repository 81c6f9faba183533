//! Strings the library hands to C (Prometheus text, health JSON, explanations).

use std::os::raw::c_char;

use super::boundary::ffi_value;

/// Frees a string returned by the library (`bw_engine_prometheus`, …); NULL is a no-op.
/// Must not be called twice with the same pointer, nor with a string not from the
/// library.
///
/// # Safety
/// `text` must be NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn bw_string_free(text: *mut c_char) {
    ffi_value!((), {
        if !text.is_null() {
            // SAFETY: by contract `text` came from `CString::into_raw` in this library
            // and is freed once.
            drop(unsafe { std::ffi::CString::from_raw(text) });
        }
    })
}
