//! Errors of a policy file: every problem, each naming policy, field and line.

use std::fmt;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The policy the problem is in, when it is inside one.
    pub policy: Option<String>,
    /// The field's path inside the policy (`circuit_breaker.window.buckets`), or the
    /// top-level key; empty for a syntax error that has no field.
    pub field: String,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// Why it is wrong.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(policy) = &self.policy {
            write!(f, "policy `{policy}`: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        f.write_str(&self.reason)
    }
}

/// A policy file that could not be loaded, with every problem found (at least one).
/// Nothing of a file with errors is ever applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFileError {
    /// The problems, in file order.
    pub errors: Vec<FieldError>,
}

impl PolicyFileError {
    /// An error with one problem.
    pub fn single(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// The first problem.
    pub fn first(&self) -> &FieldError {
        &self.errors[0]
    }
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyFileError {}
