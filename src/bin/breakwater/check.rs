//! `breakwater check FILE` and `breakwater explain FILE [POLICY]`.

use std::path::Path;

use breakwater::config::{explain as render, FieldError, PolicyFile, PolicyFileError};
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::ConfigError;

use crate::exit;
use crate::shorten::{shorten, shorten_part};

/// One diagnostic line: `FILE:LINE: policy `NAME`: `field`: reason` (the line part is
/// left out when unknown). A huge key or value echoed back is shortened where it stands,
/// so the rest of the reason (the keys or values expected, a "did you mean") is kept.
pub(crate) fn diagnostic(file: &Path, error: &FieldError) -> String {
    let mut out = file.display().to_string();
    if let Some(line) = error.line {
        out.push_str(&format!(":{line}"));
    }
    out.push_str(": ");
    if let Some(policy) = &error.policy {
        out.push_str(&format!("policy `{}`: ", shorten_part(policy)));
    }
    if !error.field.is_empty() {
        out.push_str(&format!("`{}`: ", shorten_part(&error.field)));
    }
    out.push_str(&shorten(&error.reason));
    out
}

/// Builds `config` as an engine would, without its side effects: a host-scoped policy
/// is built process-scoped and its segment's layout checked, so no segment is created
/// (or attached) by a command that only reads the file.
fn build_check(config: &PolicyConfig) -> Result<(), ConfigError> {
    if config.host.is_none() {
        return Policy::new(config.clone()).map(drop);
    }
    breakwater::shm::layout_for(config)?;
    let mut local = config.clone();
    local.host = None;
    Policy::new(local).map(drop)
}

/// Reads and parses `file`; on failure prints why and returns the exit code.
pub(crate) fn load(file: &Path) -> Result<PolicyFile, i32> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("breakwater: cannot read {}: {e}", file.display());
            return Err(exit::IO);
        }
    };
    let parsed = PolicyFile::from_bytes(&bytes).and_then(|parsed| {
        // The file reader validates every stage; building each policy is the last word
        // (it is exactly what an engine does on load).
        let errors: Vec<FieldError> = parsed
            .policies
            .iter()
            .filter_map(|config| build_check(config).err().map(|e| (config, e)))
            .map(|(config, e)| FieldError {
                policy: Some(config.name.clone()),
                field: e.field.to_string(),
                line: None,
                reason: e.reason,
            })
            .collect();
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(PolicyFileError { errors })
        }
    });
    parsed.map_err(|error| {
        for e in &error.errors {
            println!("{}", diagnostic(file, e));
        }
        let n = error.errors.len();
        println!(
            "{}: {n} error{}",
            file.display(),
            if n == 1 { "" } else { "s" }
        );
        exit::ERRORS
    })
}

/// `breakwater check FILE`.
pub(crate) fn check(file: &Path) -> i32 {
    match load(file) {
        Ok(parsed) => {
            let names: Vec<&str> = parsed.policies.iter().map(|p| p.name.as_str()).collect();
            let n = names.len();
            println!(
                "{}: ok, {n} polic{} ({})",
                file.display(),
                if n == 1 { "y" } else { "ies" },
                names.join(", ")
            );
            exit::OK
        }
        Err(code) => code,
    }
}

/// `breakwater explain FILE [POLICY]`.
pub(crate) fn explain(file: &Path, policy: Option<&str>) -> i32 {
    let parsed = match load(file) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match policy {
        None => print!("{}", render(&parsed.policies)),
        Some(name) => match parsed.policy(name) {
            Some(config) => print!("{}", render(std::slice::from_ref(config))),
            None => {
                let names: Vec<&str> = parsed.policies.iter().map(|p| p.name.as_str()).collect();
                eprintln!(
                    "breakwater: {}: no policy `{name}` (the file defines: {})",
                    file.display(),
                    names.join(", ")
                );
                return exit::ERRORS;
            }
        },
    }
    exit::OK
}
