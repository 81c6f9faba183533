//! The Rust conformance runner, shared by `tests/conformance.rs` and the fuzz target
//! `fuzz/fuzz_targets/conformance_scenario.rs` (both include it by `#[path]`).
//!
//! - `json.rs`: a strict JSON reader (no dependency for one test)
//! - `scenario.rs`: the scenario format of `tests/conformance/README.md`, as types
//! - `run.rs`: runs one scenario against the public API

#![allow(dead_code)]

pub mod json;
pub mod run;
pub mod scenario;

use std::path::{Path, PathBuf};

/// The scenario files in `dir`, in byte order of their names.
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    Ok(files)
}

/// Reads and runs the scenario in `path`: `Err` is the line to print after `FAIL name: `.
pub fn run_file(path: &Path) -> Result<(), String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let scenario = scenario::parse(&text, Some(stem))?;
    run::run(&scenario).map_err(|f| f.to_string())
}
