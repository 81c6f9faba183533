//! The effective configuration of policies as TOML, with every default filled in, so
//! a user sees exactly what a policy file means (`breakwater explain`), and the
//! reference of every key (`docs/policy-file.md`). Both walk the schema's tables.
//!
//! The explanation is itself a valid policy file that loads to the same configuration.

use std::fmt::Write;

use super::fields::{reference_section, write_fields, Section};
use super::schema::{POLICY_FIELDS, STAGES};
use crate::policy::PolicyConfig;

fn key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

/// Renders `policies` as a policy file with every field written out.
pub fn explain(policies: &[PolicyConfig]) -> String {
    let mut out = String::new();
    for (i, p) in policies.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_policy(&mut out, p);
    }
    out
}

fn render_policy(out: &mut String, p: &PolicyConfig) {
    let name = key(&p.name);
    let _ = writeln!(out, "[policies.{name}]");
    write_fields(out, POLICY_FIELDS, p);
    let mut tables = String::new();
    let mut absent = Vec::new();
    for stage in STAGES {
        let mut body = String::new();
        if (stage.write)(p, &mut body) {
            let _ = write!(tables, "\n[policies.{name}.{}]\n{body}", stage.key);
        } else {
            absent.push(stage.key);
        }
    }
    if !absent.is_empty() {
        let _ = writeln!(out, "# stages not configured: {}", absent.join(", "));
    }
    out.push_str(&tables);
}

/// The reference of the policy file: every section and key with its default and
/// meaning, as Markdown. `docs/policy-file.md` is this text (a test keeps it so).
pub fn reference() -> String {
    let mut out = String::from(
        "# The policy file\n\n\
         Generated from the schema in `src/config/schema.rs` (the same tables the reader and \
         `breakwater explain` use); `BW_BLESS=1 cargo test --lib config` rewrites it.\n\n\
         One TOML file describes named policies: `[policies.NAME]` with the keys below, and \
         one sub-table per stage. Every key is optional unless marked required; a key left \
         out takes the default shown. Unknown keys are errors. Durations are strings such as \
         `\"250ms\"`, `\"3s\"`, `\"1m30s\"`.\n\n",
    );
    let policy = Section {
        doc: "A policy: a pipeline of the stages below, outermost first: circuit breaker, \
              rate limiter and throttle, bulkhead and adaptive limit, chaos; retry wraps it.",
        fields: POLICY_FIELDS,
        start: || PolicyConfig::new("NAME"),
        required: &[],
        finish: super::fields::no_finish,
        validate: |_| Ok(()),
    };
    reference_section(&mut out, "policies.NAME", &policy);
    for stage in STAGES {
        (stage.reference)(&mut out);
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference is what the schema says.
    #[test]
    fn docs_policy_file_md_is_generated_from_the_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy-file.md");
        let fresh = reference();
        if std::env::var_os("BW_BLESS").is_some() {
            std::fs::write(path, &fresh).expect("write docs/policy-file.md");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == fresh,
            "docs/policy-file.md is stale: run `BW_BLESS=1 cargo test --lib config` and commit it"
        );
    }
}
