//! How a process reaches the fleet's Redis and what it does when it cannot.

use std::path::PathBuf;
use std::time::Duration;

use crate::ConfigError;

/// What a fleet limit does while Redis is unreachable, slow or refusing.
///
/// Tokens already leased are spent first in every mode (they were debited in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnUnavailable {
    /// Each process enforces `local_share` of the fleet quota (or concurrency) on its own.
    #[default]
    Local,
    /// Nothing more is admitted until Redis answers again.
    Deny,
    /// Everything is admitted (fail open): no bound while Redis is down.
    Allow,
}

impl OnUnavailable {
    /// Every mode, in the order of [`OnUnavailable::NAMES`].
    pub const ALL: [OnUnavailable; 3] = [
        OnUnavailable::Local,
        OnUnavailable::Deny,
        OnUnavailable::Allow,
    ];
    /// The policy-file names.
    pub const NAMES: &'static [&'static str] = &["local", "deny", "allow"];

    /// The policy-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Local => "local",
            OnUnavailable::Deny => "deny",
            OnUnavailable::Allow => "allow",
        }
    }

    /// The mode named `name`, if any.
    pub fn from_name(name: &str) -> Option<OnUnavailable> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// The connection to the fleet's Redis and the fleet limits' tuning.
///
/// Credentials never appear in the configuration itself: `password_env` names an
/// environment variable and `password_file` a file that holds the password (its first
/// line), read when the limit is built.
///
/// ```
/// use breakwater::fleet::{FleetConfig, OnUnavailable};
///
/// let mut config = FleetConfig::new("127.0.0.1:6379");
/// config.on_unavailable = OnUnavailable::Deny;
/// assert!(config.validate().is_ok());
/// config.local_share = 0.0;
/// assert_eq!(config.validate().unwrap_err().field, "local_share");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// `host:port`, or a `redis://[user@]host:port[/db]` address (no password in it).
    pub address: String,
    /// The ACL user name, if the server has users (`AUTH user password`).
    pub username: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// The file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// Prefix of every key this process writes (`NAMESPACE:LIMIT:…`).
    pub namespace: String,
    /// What a limit does while Redis is unavailable.
    pub on_unavailable: OnUnavailable,
    /// The fraction of the fleet quota (or concurrency) one process enforces on its own
    /// with `on_unavailable = "local"`; `1 / instances` keeps the fleet within its quota.
    pub local_share: f64,
    /// The longest any one Redis call (connect, script, refresh) may take.
    pub timeout: Duration,
    /// How long a batch of leased tokens should last at the current local rate: the
    /// batch size adapts to `local rate × lease_horizon`.
    pub lease_horizon: Duration,
    /// The largest batch of tokens one process leases at once (also capped by `burst`).
    pub max_batch: u64,
    /// A fleet concurrency slot's lease: a crashed process's slots return after this.
    /// Held slots are refreshed every third of it.
    pub lease_ttl: Duration,
    /// The longest pause between reconnection attempts (the backoff doubles from
    /// `timeout` up to this).
    pub max_backoff: Duration,
}

impl FleetConfig {
    /// A configuration for the Redis at `address`, with the defaults: namespace
    /// `breakwater`, `on_unavailable = local` with a share of 0.25, a 50 ms timeout, a
    /// 100 ms lease horizon, batches of at most 1000, 5 s concurrency leases, a 1 s
    /// backoff cap.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            username: None,
            password_env: None,
            password_file: None,
            namespace: "breakwater".into(),
            on_unavailable: OnUnavailable::Local,
            local_share: 0.25,
            timeout: Duration::from_millis(50),
            lease_horizon: Duration::from_millis(100),
            max_batch: 1000,
            lease_ttl: Duration::from_secs(5),
            max_backoff: Duration::from_secs(1),
        }
    }

    /// Checks every field; the error names it as the policy file spells it. The address
    /// must parse, at most one password source may be given, and the durations must be
    /// non-zero (`lease_ttl` at least 3 ms, so a third of it is a refresh period).
    pub fn validate(&self) -> Result<(), ConfigError> {
        super::link::parse_address(&self.address)?;
        if self.password_env.is_some() && self.password_file.is_some() {
            return Err(ConfigError::new(
                "password_env",
                "give the password in one place: `password_env` or `password_file`",
            ));
        }
        if self.namespace.is_empty() || self.namespace.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "namespace",
                "must be a non-empty name without spaces",
            ));
        }
        if !(self.local_share > 0.0 && self.local_share <= 1.0) {
            return Err(ConfigError::new("local_share", "must be in (0, 1]"));
        }
        for (field, d) in [
            ("timeout", self.timeout),
            ("lease_horizon", self.lease_horizon),
            ("max_backoff", self.max_backoff),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(field, "must be longer than zero"));
            }
        }
        if self.lease_ttl < Duration::from_millis(3) {
            return Err(ConfigError::new("lease_ttl", "must be at least 3 ms"));
        }
        if self.max_batch == 0 {
            return Err(ConfigError::new("max_batch", "must be at least 1"));
        }
        Ok(())
    }

    /// The password, read from its environment variable or file; `None` without one.
    /// A named variable that is unset, or a file that cannot be read, is an error.
    pub(crate) fn password(&self) -> Result<Option<String>, ConfigError> {
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(p) => Ok(Some(p)),
                Err(_) => Err(ConfigError::new(
                    "password_env",
                    format!("the environment variable `{var}` is not set (or not UTF-8)"),
                )),
            };
        }
        if let Some(path) = &self.password_file {
            return match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(text.lines().next().unwrap_or("").to_string())),
                Err(e) => Err(ConfigError::new(
                    "password_file",
                    format!("cannot read `{}`: {e}", path.display()),
                )),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in OnUnavailable::ALL {
            assert_eq!(OnUnavailable::from_name(m.as_str()), Some(m));
        }
        assert_eq!(OnUnavailable::NAMES, OnUnavailable::ALL.map(|m| m.as_str()));
    }

    #[test]
    fn both_password_sources_are_refused() {
        let mut c = FleetConfig::new("127.0.0.1:6379");
        c.password_env = Some("X".into());
        c.password_file = Some("/nonexistent".into());
        assert_eq!(c.validate().unwrap_err().field, "password_env");
    }

    #[test]
    fn an_unset_password_variable_is_a_config_error() {
        let mut c = FleetConfig::new("127.0.0.1:6379");
        c.password_env = Some("BREAKWATER_TEST_SURELY_UNSET_VARIABLE".into());
        let e = c.password().unwrap_err();
        assert_eq!(e.field, "password_env");
        assert!(e.reason.contains("not set"), "{e}");
    }

    #[test]
    fn zero_durations_and_shares_are_refused() {
        let base = FleetConfig::new("127.0.0.1:6379");
        let mut c = base.clone();
        c.timeout = Duration::ZERO;
        assert_eq!(c.validate().unwrap_err().field, "timeout");
        let mut c = base.clone();
        c.local_share = 1.5;
        assert_eq!(c.validate().unwrap_err().field, "local_share");
        let mut c = base;
        c.max_batch = 0;
        assert_eq!(c.validate().unwrap_err().field, "max_batch");
    }
}
