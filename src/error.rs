//! Configuration errors.
//!
//! Every invalid value is reported, at construction, as a [`ConfigError`] that names the
//! field and says why; nothing is clamped or defaulted silently.

use crate::shm::HostError;
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
    /// The typed cause when a host-wide segment could not be used.
    host: Option<Box<HostError>>,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
            host: None,
        }
    }

    /// The same error carrying `error` as its typed cause.
    pub fn with_host_error(self, error: HostError) -> Self {
        Self {
            host: Some(Box::new(error)),
            ..self
        }
    }

    /// The typed cause, when the error is about a host-wide segment (a mismatched
    /// configuration, version or magic, a truncated segment, another user's, …).
    pub fn host_error(&self) -> Option<&HostError> {
        self.host.as_deref()
    }

    /// The same error with `prefix.` put before the field name (`circuit_breaker.` …).
    pub fn within(self, prefix: &str) -> Self {
        Self {
            field: Cow::Owned(format!("{prefix}.{}", self.field)),
            reason: self.reason,
            host: self.host,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.host
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
