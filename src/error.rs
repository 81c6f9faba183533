//! Configuration errors.
//!
//! Every invalid value is reported, at construction, as a [`ConfigError`] that names the
//! field and says why; nothing is clamped or defaulted silently.

use std::borrow::Cow;
use std::fmt;

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, as it is spelled in the policy file (`failure_rate_threshold`,
    /// `window.buckets`, …).
    pub field: Cow<'static, str>,
    /// Why the value is invalid, for a human.
    pub reason: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put before the field name (`circuit_breaker.` …).
    pub fn within(self, prefix: &str) -> Self {
        Self {
            field: Cow::Owned(format!("{prefix}.{}", self.field)),
            reason: self.reason,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}
