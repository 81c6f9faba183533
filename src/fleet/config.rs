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
/// let config = FleetConfig::new("127.0.0.1:6379")
///     .with_password_env(Some("REDIS_PASSWORD".into()))
///     .with_on_unavailable(OnUnavailable::Deny);
/// assert!(config.validate().is_ok());
/// let config = config.with_local_share(0.0);
/// assert_eq!(config.validate().unwrap_err().field, "local_share");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FleetConfig {
    /// `host:port`, or a `redis://[user@]host:port[/db]` address (no password in it);
    /// `rediss://` for TLS.
    pub address: String,
    /// The ACL user name, if the server has users (`AUTH user password`).
    pub username: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// The file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// With `rediss://`: the PEM file of the CA certificates that sign the server's
    /// certificate (in place of the system's trusted CAs).
    pub ca_file: Option<PathBuf>,
    /// With `rediss://`: this client's PEM certificate chain, for a server that asks for
    /// one (`tls-auth-clients`); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// With `rediss://`: the PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
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
    /// In a policy: at most this many of its calls in flight across the fleet (a fleet
    /// concurrency limit on expiring leases, asked after the rate limiter); `None`: no
    /// such limit.
    pub max_concurrent: Option<u32>,
}

crate::builder::with_setters!(FleetConfig {
    address: String => with_address,
    username: Option<String> => with_username,
    password_env: Option<String> => with_password_env,
    password_file: Option<PathBuf> => with_password_file,
    ca_file: Option<PathBuf> => with_ca_file,
    cert_file: Option<PathBuf> => with_cert_file,
    key_file: Option<PathBuf> => with_key_file,
    namespace: String => with_namespace,
    on_unavailable: OnUnavailable => with_on_unavailable,
    local_share: f64 => with_local_share,
    timeout: Duration => with_timeout,
    lease_horizon: Duration => with_lease_horizon,
    max_batch: u64 => with_max_batch,
    lease_ttl: Duration => with_lease_ttl,
    max_backoff: Duration => with_max_backoff,
    max_concurrent: Option<u32> => with_max_concurrent,
});

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
            ca_file: None,
            cert_file: None,
            key_file: None,
            namespace: "breakwater".into(),
            on_unavailable: OnUnavailable::Local,
            local_share: 0.25,
            timeout: Duration::from_millis(50),
            lease_horizon: Duration::from_millis(100),
            max_batch: 1000,
            lease_ttl: Duration::from_secs(5),
            max_backoff: Duration::from_secs(1),
            max_concurrent: None,
        }
    }

    /// Checks every field; the error names it as the policy file spells it. The address
    /// must parse, at most one password source may be given, the TLS files need a
    /// `rediss://` address (and a client certificate its key), and the durations must be
    /// non-zero (`lease_ttl` at least 3 ms, so a third of it is a refresh period). The
    /// files themselves are read when a limit is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let address = parse_address(&self.address)?;
        if self.password_env.is_some() && self.password_file.is_some() {
            return Err(ConfigError::new(
                "password_env",
                "give the password in one place: `password_env` or `password_file`",
            ));
        }
        for (field, file) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            if file.is_some() && !address.tls {
                return Err(ConfigError::new(
                    field,
                    "TLS files need a TLS address: write `rediss://host:port`",
                ));
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "key_file",
                    "missing: a client certificate (`cert_file`) needs its private key",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "cert_file",
                    "missing: a private key (`key_file`) needs its client certificate",
                ))
            }
            _ => {}
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
        if self.max_concurrent == Some(0) {
            return Err(ConfigError::new("max_concurrent", "must be at least 1"));
        }
        #[cfg(not(all(feature = "fleet", not(loom))))]
        if self.max_concurrent.is_some() {
            return Err(ConfigError::new(
                "max_concurrent",
                "this build of breakwater has no fleet support (the cargo feature `fleet`)",
            ));
        }
        Ok(())
    }

    /// The password, read from its environment variable or file; `None` without one.
    /// A named variable that is unset, or a file that cannot be read, is an error.
    #[cfg_attr(not(all(feature = "fleet", not(loom))), allow(dead_code))]
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

/// An address taken apart: where, as whom, which database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// `rediss://`: the connection is TLS.
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) db: i64,
}

/// Parses `host:port` or `redis[s]://[user@]host:port[/db]`. A password in the address
/// is a configuration error naming why.
pub(crate) fn parse_address(address: &str) -> Result<Address, ConfigError> {
    let bad = |why: String| ConfigError::new("address", why);
    let (rest, url, tls) = match address.split_once("://") {
        Some(("redis", rest)) => (rest, true, false),
        Some(("rediss", rest)) => (rest, true, true),
        Some((scheme, _)) => {
            return Err(bad(format!(
                "unknown scheme `{scheme}://`: write `host:port`, `redis://host:port` or \
                 `rediss://host:port` (TLS)"
            )))
        }
        None => (address, false, false),
    };
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((u, r)) if url => (Some(u), r),
        Some(_) => return Err(bad(format!("`{address}` is not `host:port`"))),
        None => (None, rest),
    };
    let username = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((_, password)) if !password.is_empty() => {
            return Err(bad(
                "the address must not carry a password: use `password_env` or `password_file`"
                    .into(),
            ))
        }
        Some((user, _)) if !user.is_empty() => Some(user.to_string()),
        _ => None,
    };
    let (hostport, db) = match rest.split_once('/') {
        Some((hp, "")) => (hp, 0),
        Some((hp, db)) if url => (
            hp,
            db.parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| bad(format!("`{db}` is not a database number")))?,
        ),
        _ => (rest, 0),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| bad(format!("`{address}` is not `host:port`")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(format!("`{port}` is not a port (1..=65535)")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(bad(format!("`{address}` has no valid host")));
    }
    Ok(Address {
        tls,
        host: host.to_string(),
        port,
        username,
        db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_name_what_is_wrong() {
        let a = parse_address("redis://svc@cache.internal:6380/2").unwrap();
        assert_eq!(
            a,
            Address {
                tls: false,
                host: "cache.internal".into(),
                port: 6380,
                username: Some("svc".into()),
                db: 2
            }
        );
        assert_eq!(parse_address("127.0.0.1:6379").unwrap().port, 6379);
        assert_eq!(parse_address("[::1]:6379").unwrap().host, "::1");
        let tls = parse_address("rediss://cache.internal:6380").unwrap();
        assert!(tls.tls && tls.port == 6380, "{tls:?}");
        for (bad, says) in [
            ("127.0.0.1", "host:port"),
            ("127.0.0.1:0", "port"),
            ("127.0.0.1:99999", "port"),
            (":6379", "no valid host"),
            ("rediss://:secret@h:6379", "password"),
            ("unix:///tmp/r.sock", "scheme"),
            ("redis://:secret@h:6379", "password"),
            ("redis://h:6379/x", "database"),
        ] {
            let e = parse_address(bad).unwrap_err();
            assert_eq!(e.field, "address");
            assert!(e.reason.contains(says), "{bad}: {e}");
        }
    }

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
    fn tls_files_need_a_tls_address_and_a_certificate_its_key() {
        let plain = FleetConfig::new("127.0.0.1:6379").with_ca_file(Some("ca.pem".into()));
        let e = plain.validate().unwrap_err();
        assert_eq!(e.field, "ca_file");
        assert!(e.reason.contains("rediss://"), "{e}");
        let tls = FleetConfig::new("rediss://127.0.0.1:6379").with_ca_file(Some("ca.pem".into()));
        assert!(tls.validate().is_ok());
        let e = tls
            .clone()
            .with_cert_file(Some("c.pem".into()))
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "key_file");
        let e = tls
            .with_key_file(Some("k.pem".into()))
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "cert_file");
    }

    #[test]
    fn a_fleet_concurrency_limit_is_at_least_one_and_needs_the_feature() {
        let c = FleetConfig::new("127.0.0.1:6379").with_max_concurrent(Some(0));
        assert_eq!(c.validate().unwrap_err().field, "max_concurrent");
        let c = c.with_max_concurrent(Some(8));
        if cfg!(all(feature = "fleet", not(loom))) {
            assert!(c.validate().is_ok());
        } else {
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, "max_concurrent");
            assert!(e.reason.contains("feature"), "{e}");
        }
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
