//! Replays, against the fuzz targets' own invariants (`fuzz/src/invariants.rs`), every
//! committed seed and every input a fuzzer ever found a defect with
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`). A defect found by fuzzing gets a
//! named test here as well.

#[path = "../fuzz/src/invariants.rs"]
mod invariants;

use std::fs;
use std::path::Path;

/// Runs `check` on every file under `fuzz/{corpus,regressions}/target`; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory").path();
            let data = fs::read(&path).expect("readable input");
            eprintln!("replaying {}", path.display());
            check(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn policy_file_inputs_replay() {
    assert!(replay("policy_file", invariants::policy_file) >= 1);
}

#[cfg(feature = "capi")]
#[test]
fn ffi_ops_inputs_replay() {
    assert!(replay("ffi_ops", invariants::ffi_ops) >= 1);
}
