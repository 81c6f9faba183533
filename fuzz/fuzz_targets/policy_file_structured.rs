//! The policy-file reader and `explain` on mostly-valid files built from the schema, so
//! the validators (not just the TOML parser) are searched (see
//! `breakwater_fuzz::invariants::policy_file_structured`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| breakwater_fuzz::invariants::policy_file_structured(data));
