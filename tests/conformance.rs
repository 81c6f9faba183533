//! The conformance suite's Rust runner: every scenario of `tests/conformance/scenarios/`
//! through the public Rust API (format: `tests/conformance/README.md`). The C, Go and
//! Python runners read the same files and must pass the same number
//! (`scripts/conformance.sh`).
//!
//! A plain `main` (`harness = false`), so the summary line is printed as is:
//! `conformance: N scenarios passed` (`, M failed` and exit status 1 otherwise).

#[path = "conformance/runner/mod.rs"]
mod runner;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = runner::json::self_check() {
        println!("conformance: the JSON reader is wrong: {e}");
        return ExitCode::FAILURE;
    }
    // `BW_CONFORMANCE_DIR` runs another directory of scenarios (a mutation check, a
    // fuzz corpus); the suite's own is the default.
    let dir = std::env::var_os("BW_CONFORMANCE_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/scenarios"),
        std::path::PathBuf::from,
    );
    let files = match runner::scenario_files(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("conformance: cannot list {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut passed = 0usize;
    let mut failed = 0usize;
    for path in &files {
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        match runner::run_file(path) {
            Ok(()) => passed += 1,
            Err(message) => {
                failed += 1;
                println!("FAIL {name}: {message}");
            }
        }
    }
    if failed == 0 {
        println!("conformance: {passed} scenarios passed");
    } else {
        println!("conformance: {passed} scenarios passed, {failed} failed");
    }
    if failed > 0 || files.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
