//! The policy-file reader and `explain` on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| breakwater_fuzz::invariants::policy_file(data));
