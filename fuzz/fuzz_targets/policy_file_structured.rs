//! The policy-file reader and `explain` on mostly-valid files built from the schema, so
//! the validators (not just the TOML parser) are searched.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(text) = breakwater_fuzz::generate::policy_file(&mut u) {
        breakwater_fuzz::invariants::policy_file(text.as_bytes());
    }
});
