//! The C ABI as sequences of operations against one engine (see
//! `breakwater_fuzz::invariants::ffi_ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| breakwater_fuzz::invariants::ffi_ops(data));
