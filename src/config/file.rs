//! [`PolicyFile`]: a parsed, validated policy file, and the parsing that makes one.

use std::path::Path;

use super::error::{FieldError, PolicyFileError};
use super::reader::Reader;
use super::schema;
use crate::policy::PolicyConfig;

/// A parsed, validated policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFile {
    /// The policies, in file order; names are unique.
    pub policies: Vec<PolicyConfig>,
}

impl PolicyFile {
    /// Parses and validates a policy file's text.
    pub fn parse(text: &str) -> Result<PolicyFile, PolicyFileError> {
        let document = toml_edit::ImDocument::parse(text).map_err(|e| syntax_error(text, &e))?;
        let mut r = Reader::new(text);
        let root = document.as_table();
        r.only_keys(root, "", &["policies"]);
        let mut policies = Vec::new();
        match root.get("policies") {
            None => r.error(
                "policies",
                None,
                "the file defines no policies: add a [policies.NAME] table",
            ),
            Some(item) => match item.as_table_like() {
                None => {
                    let line = r.key_line(root, "policies");
                    r.error(
                        "policies",
                        line,
                        format!("must be a table, found {}", item.type_name()),
                    );
                }
                Some(table) => {
                    if table.is_empty() {
                        let line = r.key_line(root, "policies");
                        r.error(
                            "policies",
                            line,
                            "the file defines no policies: add a [policies.NAME] table",
                        );
                    }
                    for (name, item) in table.iter() {
                        r.set_policy(Some(name));
                        if let Err(reason) = crate::policy::validate_policy_name(name) {
                            let line = r.key_line(table, name);
                            r.error("", line, reason);
                            continue;
                        }
                        match item.as_table_like() {
                            Some(policy) => {
                                policies.push(schema::read_policy(&mut r, name, policy))
                            }
                            None => {
                                let line = r.key_line(table, name);
                                r.error(
                                    "",
                                    line,
                                    format!("a policy must be a table, found {}", item.type_name()),
                                );
                            }
                        }
                    }
                    r.set_policy(None);
                }
            },
        }
        if r.errors.is_empty() {
            Ok(PolicyFile { policies })
        } else {
            r.errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(PolicyFileError { errors: r.errors })
        }
    }

    /// Parses a policy file's bytes; invalid UTF-8 is an error naming the line.
    pub fn from_bytes(bytes: &[u8]) -> Result<PolicyFile, PolicyFileError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text),
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                Err(PolicyFileError::single(FieldError {
                    policy: None,
                    field: String::new(),
                    line: Some(line),
                    reason: format!("the file is not valid UTF-8 (byte {})", e.valid_up_to()),
                }))
            }
        }
    }

    /// Reads and parses a policy file.
    pub fn load(path: impl AsRef<Path>) -> Result<PolicyFile, PolicyFileError> {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => Self::from_bytes(&bytes),
            Err(e) => Err(PolicyFileError::single(FieldError {
                policy: None,
                field: String::new(),
                line: None,
                reason: format!("cannot read {}: {e}", path.display()),
            })),
        }
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&PolicyConfig> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// Maps a TOML syntax error (including duplicate keys) to a field error with its line.
fn syntax_error(text: &str, error: &toml_edit::TomlError) -> PolicyFileError {
    let line = error.span().map(|s| {
        text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    let message = error.message().trim().replace('\n', ": ");
    // "duplicate key `max_concurrent` in table `policies.a.bulkhead`": name the policy
    // and the field, as for every other error.
    let (policy, field) = duplicate_key(&message).unwrap_or((None, String::new()));
    PolicyFileError::single(FieldError {
        policy,
        field,
        line,
        reason: format!("invalid TOML: {message}"),
    })
}

/// Splits toml_edit's duplicate-key message into (policy, field path within it).
fn duplicate_key(message: &str) -> Option<(Option<String>, String)> {
    let rest = &message[message.find("duplicate key `")? + "duplicate key `".len()..];
    let key = &rest[..rest.find('`')?];
    let table = rest
        .find("in table `")
        .map(|i| &rest[i + "in table `".len()..])
        .and_then(|t| t.find('`').map(|end| &t[..end]))
        .unwrap_or("");
    let mut parts = table.split('.');
    if parts.next() != Some("policies") {
        return Some((None, key.to_string()));
    }
    match parts.next() {
        None => Some((Some(key.to_string()), String::new())),
        Some(policy) => {
            let mut path: Vec<&str> = parts.collect();
            path.push(key);
            Some((Some(policy.to_string()), path.join(".")))
        }
    }
}
