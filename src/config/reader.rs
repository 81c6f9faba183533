//! A span-aware reader over a parsed TOML document.
//!
//! It reads typed values out of tables and inline tables alike, and turns every problem
//! (wrong type, out-of-range number, unknown key, bad duration) into a [`FieldError`]
//! that carries the policy, the full field path and the line. It keeps going after a
//! problem, so one run reports every error in a file.

use std::ops::Range;
use std::time::Duration;

use toml_edit::{Item, TableLike};

use super::duration::parse_duration;
use super::error::FieldError;
use crate::ConfigError;

pub(crate) struct Reader<'s> {
    source: &'s str,
    pub(crate) errors: Vec<FieldError>,
    policy: Option<String>,
}

/// Joins a path prefix and a key (`"" + "a"` = `"a"`, `"a" + "b"` = `"a.b"`).
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl<'s> Reader<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Self {
            source,
            errors: Vec::new(),
            policy: None,
        }
    }

    pub(crate) fn set_policy(&mut self, policy: Option<&str>) {
        self.policy = policy.map(str::to_string);
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.source.len());
        self.source.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn line_of(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| self.line_at(s.start))
    }

    pub(crate) fn error(
        &mut self,
        field: impl Into<String>,
        line: Option<usize>,
        reason: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            policy: self.policy.clone(),
            field: field.into(),
            line,
            reason: reason.into(),
        });
    }

    /// The line of `key` in `table` (the key's own span, else the value's).
    pub(crate) fn key_line(&self, table: &dyn TableLike, key: &str) -> Option<usize> {
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| table.get(key).and_then(Item::span));
        self.line_of(span)
    }

    /// Reports a primitive's validation error under `prefix`, at the line of the field
    /// it names (looked up in `table`, following dotted sub-tables), else `fallback`.
    pub(crate) fn config_error(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        error: ConfigError,
        fallback: Option<usize>,
    ) {
        let line = self.path_line(table, &error.field).or(fallback);
        self.error(join(prefix, &error.field), line, error.reason);
    }

    fn path_line(&self, table: &dyn TableLike, path: &str) -> Option<usize> {
        let mut current = table;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                return self.key_line(current, part);
            }
            current = current.get(part)?.as_table_like()?;
        }
        None
    }

    /// A sub-table (standard or inline) at `key`, or an error if it is something else.
    pub(crate) fn section<'d>(
        &mut self,
        table: &'d dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<&'d dyn TableLike> {
        let item = table.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                let line = self.key_line(table, key);
                self.error(
                    join(prefix, key),
                    line,
                    format!("must be a table, found {}", item.type_name()),
                );
                None
            }
        }
    }

    /// Reports every key of `table` not in `allowed` (typos must not pass silently).
    pub(crate) fn only_keys(&mut self, table: &dyn TableLike, prefix: &str, allowed: &[&str]) {
        let unknown: Vec<String> = table
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        for key in unknown {
            let line = self.key_line(table, &key);
            let hint = closest(&key, allowed)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            self.error(
                join(prefix, &key),
                line,
                format!(
                    "unknown field (expected one of: {}){hint}",
                    allowed.join(", ")
                ),
            );
        }
    }

    fn value<'d>(&self, table: &'d dyn TableLike, key: &str) -> Option<&'d Item> {
        table.get(key).filter(|item| !item.is_none())
    }

    fn wrong_type(&mut self, table: &dyn TableLike, prefix: &str, key: &str, expected: &str) {
        let found = table.get(key).map(Item::type_name).unwrap_or("nothing");
        let line = self.key_line(table, key);
        self.error(
            join(prefix, key),
            line,
            format!("must be {expected}, found {found}"),
        );
    }

    fn integer(&mut self, table: &dyn TableLike, prefix: &str, key: &str, max: u64) -> Option<u64> {
        let item = self.value(table, key)?;
        let Some(value) = item.as_integer() else {
            self.wrong_type(table, prefix, key, "an integer");
            return None;
        };
        if value < 0 || value as u64 > max {
            let line = self.key_line(table, key);
            self.error(
                join(prefix, key),
                line,
                format!("must be between 0 and {max}, got {value}"),
            );
            return None;
        }
        Some(value as u64)
    }

    pub(crate) fn u32(&mut self, table: &dyn TableLike, prefix: &str, key: &str) -> Option<u32> {
        self.integer(table, prefix, key, u32::MAX as u64)
            .map(|v| v as u32)
    }

    pub(crate) fn u64(&mut self, table: &dyn TableLike, prefix: &str, key: &str) -> Option<u64> {
        self.integer(table, prefix, key, i64::MAX as u64)
    }

    /// A number; integers are accepted where a float is expected (`50` for `50.0`).
    pub(crate) fn f64(&mut self, table: &dyn TableLike, prefix: &str, key: &str) -> Option<f64> {
        let item = self.value(table, key)?;
        if let Some(v) = item.as_float() {
            if !v.is_finite() {
                let line = self.key_line(table, key);
                self.error(
                    join(prefix, key),
                    line,
                    format!("must be a finite number, got {v}"),
                );
                return None;
            }
            return Some(v);
        }
        if let Some(v) = item.as_integer() {
            return Some(v as f64);
        }
        self.wrong_type(table, prefix, key, "a number");
        None
    }

    pub(crate) fn bool(&mut self, table: &dyn TableLike, prefix: &str, key: &str) -> Option<bool> {
        let item = self.value(table, key)?;
        match item.as_bool() {
            Some(v) => Some(v),
            None => {
                self.wrong_type(table, prefix, key, "true or false");
                None
            }
        }
    }

    pub(crate) fn string<'d>(
        &mut self,
        table: &'d dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<&'d str> {
        let item = table.get(key).filter(|item| !item.is_none())?;
        match item.as_str() {
            Some(v) => Some(v),
            None => {
                self.wrong_type(table, prefix, key, "a string");
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<Duration> {
        let item = self.value(table, key)?;
        let Some(text) = item.as_str() else {
            self.wrong_type(table, prefix, key, "a duration string like \"250ms\"");
            return None;
        };
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(reason) => {
                let line = self.key_line(table, key);
                self.error(join(prefix, key), line, reason);
                None
            }
        }
    }

    /// A string naming one of `choices`.
    pub(crate) fn choice<'c>(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        key: &str,
        choices: &[&'c str],
    ) -> Option<&'c str> {
        let text = self.string(table, prefix, key)?;
        match choices.iter().find(|c| **c == text) {
            Some(c) => Some(*c),
            None => {
                let line = self.key_line(table, key);
                self.error(
                    join(prefix, key),
                    line,
                    format!(
                        "unknown value \"{text}\" (expected one of: {})",
                        choices.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// An array of strings, each one of `choices`.
    pub(crate) fn choices<'c>(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        key: &str,
        choices: &[&'c str],
    ) -> Option<Vec<&'c str>> {
        let item = self.value(table, key)?;
        let Some(array) = item.as_array() else {
            self.wrong_type(table, prefix, key, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let line = self.key_line(table, key);
        for value in array.iter() {
            match value
                .as_str()
                .and_then(|s| choices.iter().find(|c| **c == s))
            {
                Some(c) => out.push(*c),
                None => {
                    self.error(
                        join(prefix, key),
                        line,
                        format!(
                            "unknown value {value} (expected any of: {})",
                            choices.join(", ")
                        ),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }
}

/// The allowed name closest to a typo (edit distance ≤ 3), for a "did you mean" hint.
fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(word, a), *a))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_finds_typos() {
        assert_eq!(edit_distance("burst", "burst"), 0);
        assert_eq!(edit_distance("brust", "burst"), 2);
        assert_eq!(
            closest("max_concurent", &["max_concurrent", "max_wait"]),
            Some("max_concurrent")
        );
        assert_eq!(closest("zzzzzzzz", &["rate"]), None);
    }
}
