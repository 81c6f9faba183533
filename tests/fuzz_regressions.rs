//! Replays, against the fuzz targets' own invariants (`fuzz/src/invariants.rs`), every
//! committed seed and every input a fuzzer ever found a defect with
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`). A defect found by fuzzing gets a
//! named test here as well.

#[path = "../fuzz/src/generate.rs"]
mod generate;
#[path = "../fuzz/src/invariants.rs"]
mod invariants;

use std::fs;
use std::path::Path;
use std::sync::Mutex;

/// `shm_segment` writes its inputs to one segment of this process: one test at a time.
static SHM: Mutex<()> = Mutex::new(());

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

#[test]
fn policy_file_structured_inputs_replay() {
    assert!(replay("policy_file_structured", invariants::policy_file_structured) >= 3);
}

/// Removes the segment `shm_segment` writes to, also when a replay panics.
struct ShmCleanup;

impl Drop for ShmCleanup {
    fn drop(&mut self) {
        let _ = breakwater::shm::remove_segment(&invariants::shm_segment_name());
    }
}

#[test]
fn shm_segment_inputs_replay() {
    let _one = SHM.lock().unwrap_or_else(|e| e.into_inner());
    let _cleanup = ShmCleanup;
    assert!(replay("shm_segment", invariants::shm_segment) >= 3);
}

/// The fuzzer's first find: a valid header over state words whose timing word claims a
/// generation newer than the (unchanged) state word's. The breaker's slow path waited
/// for a state change that never came; it now repairs the timing word (and its retry
/// bound stops any other disagreement).
#[test]
fn shm_segment_timing_newer_than_state_does_not_hang() {
    let _one = SHM.lock().unwrap_or_else(|e| e.into_inner());
    let _cleanup = ShmCleanup;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/shm_segment");
    invariants::shm_segment(&fs::read(root.join("hang-timing-newer-than-state")).unwrap());
}

/// policy_file_structured's first find: host scope without `segment` names the segment
/// after the policy, and a policy's name may hold `:`, which a segment's may not. The
/// reader took the file, but `explain` wrote the segment out and the reader refused
/// that; the implicit name is now refused like the written one, on the `scope` line.
#[test]
fn a_host_policy_named_what_no_segment_may_be_is_refused() {
    use breakwater::config::PolicyFile;
    let error = PolicyFile::parse("[policies.\"a.b:c\"]\n\nscope = \"host\"\n").unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("line 3") && text.contains("`segment`"),
        "{text}"
    );
    let named = "[policies.\"a.b:c\"]\nscope = \"host\"\nsegment = \"a.b_c\"\n";
    PolicyFile::parse(named).expect("an explicit segment name serves such a policy");
    invariants::policy_file(named.as_bytes());
}
