//! A host-wide segment with arbitrary bytes (see
//! `breakwater_fuzz::invariants::shm_segment`). Its segment,
//! `/dev/shm/breakwater.fuzz-PID`, is removed by `scripts/fuzz.sh` (libFuzzer exits
//! without cleanup).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| breakwater_fuzz::invariants::shm_segment(data));
