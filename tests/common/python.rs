//! Running a Python script as a real reference parser in a Rust test: the script reads
//! stdin and prints hex-encoded fields, so any byte survives the round trip.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `script` with `python`, feeding `input` on stdin; panics with Python's stderr
/// and `what` if the script fails. Returns its stdout.
pub fn run(python: &str, script: &str, input: &str, what: &str) -> String {
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}:\n{}\n---\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Decodes a field the script printed with `s.encode("utf-8").hex() or "-"`.
pub fn unhex(s: &str) -> String {
    if s == "-" {
        return String::new();
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}
