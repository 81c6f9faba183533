//! Library and ABI versions.
//!
//! The header carries `BW_VERSION_MAJOR`/`MINOR`/`PATCH` and `BW_VERSION_STRING`,
//! written by `build.rs` from the crate version, and `BW_ABI_VERSION`, set here by
//! hand and held to the header by a test (`header_tests`): any change of the header's
//! declarations fails it until the ABI version is bumped and the new fingerprint
//! recorded. These functions give the same values at run time so a binding can check
//! the library it loaded.

use std::os::raw::c_char;

/// The ABI version: bumped on every change of the header's declarations (types,
/// fields, constants, signatures). Bindings compare it with the `BW_ABI_VERSION` they
/// were built against and refuse to load otherwise.
pub const BW_ABI_VERSION: u32 = 8;

/// The library version as a static NUL-terminated string ("0.1.0"); never free it.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn bw_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of this library (see `BW_ABI_VERSION`). Thread-safe.
#[no_mangle]
pub extern "C" fn bw_abi_version() -> u32 {
    BW_ABI_VERSION
}
