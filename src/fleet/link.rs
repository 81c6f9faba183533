//! The connections to the fleet's Redis: address and credentials, a timeout on every
//! call, scripts run by their SHA-1 with `NOSCRIPT` handled, failures reported to the
//! limit's [`FleetStatus`].

use std::time::Duration;

use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult};

use super::config::{parse_address, FleetConfig};
use super::status::FleetStatus;
use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::sync::{Arc, Mutex, Ordering};
use crate::ConfigError;

/// Idle connections kept for reuse; more callers at once open (and then drop) their own.
const MAX_IDLE: usize = 4;

/// A Lua script known by its SHA-1.
pub(crate) struct LuaScript {
    code: &'static str,
    sha: String,
}

impl LuaScript {
    pub(crate) fn new(code: &'static str) -> Self {
        Self {
            code,
            sha: redis::Script::new(code).get_hash().to_string(),
        }
    }
}

/// A pool of connections to one Redis, shared by a limit's callers and its thread.
pub(crate) struct Link {
    client: Client,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    pub(crate) status: Arc<FleetStatus>,
    clock: AnyClock,
}

impl Link {
    /// Resolves the address, the credentials and the TLS files (a configuration error if
    /// any is wrong); connects only on the first call.
    pub(crate) fn new(config: &FleetConfig, clock: AnyClock) -> Result<Self, ConfigError> {
        config.validate()?;
        let address = parse_address(&config.address)?;
        let addr = if address.tls {
            ConnectionAddr::TcpTls {
                host: address.host,
                port: address.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(address.host, address.port)
        };
        let info = addr
            .into_connection_info()
            .map_err(|e| ConfigError::new("address", e.to_string()))?;
        let mut redis = info
            .redis_settings()
            .clone()
            .set_skip_set_lib_name()
            .set_db(address.db);
        if let Some(user) = config.username.as_ref().or(address.username.as_ref()) {
            redis = redis.set_username(user);
        }
        if let Some(password) = config.password()? {
            redis = redis.set_password(password);
        }
        let info = info.set_redis_settings(redis);
        let client = if address.tls {
            Client::build_with_tls(info, super::tls::certificates(config)?)
                .map_err(|e| ConfigError::new("ca_file", format!("TLS: {e}")))?
        } else {
            Client::open(info).map_err(|e| ConfigError::new("address", e.to_string()))?
        };
        Ok(Self {
            client,
            timeout: config.timeout,
            idle: Mutex::new(Vec::new()),
            status: Arc::new(FleetStatus::new(config.timeout, config.max_backoff)),
            clock,
        })
    }

    /// Closes the idle connections (a retired limit's thread, as it exits); a later
    /// call opens one again.
    pub(crate) fn close_idle(&self) {
        self.idle.lock().clear();
    }

    /// Whether a call may be tried now (see [`FleetStatus::may_attempt`]).
    #[inline]
    pub(crate) fn may_attempt(&self) -> bool {
        self.status.may_attempt(self.clock.now())
    }

    /// The injected-clock time by which a call that starts now must be over.
    fn deadline(&self) -> u64 {
        self.clock
            .now()
            .saturating_add(duration_to_nanos(self.timeout))
    }

    /// Gives `con`'s next command what is left until `deadline` as its read and write
    /// timeout, or fails as timed out if nothing is left: so a call's connect, its
    /// command and a `NOSCRIPT` retry share one `timeout` rather than one each.
    fn fit(&self, con: &mut Connection, deadline: u64) -> RedisResult<()> {
        let left = deadline.saturating_sub(self.clock.now());
        if left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the call's timeout was spent",
            )
            .into());
        }
        let left = Some(Duration::from_nanos(left));
        con.set_read_timeout(left)?;
        con.set_write_timeout(left)
    }

    /// Runs `f` on a connection (opened if none is idle); the connect and every command
    /// `f` sends share one `timeout` (see [`fit`](Self::fit); the name lookup before a
    /// connect is not under it, see `docs/design.md`). A failure drops the connection
    /// and is reported to the status with its message; success clears it.
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection, u64) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let deadline = self.deadline();
        let idle = self.idle.lock().pop();
        let result = match idle {
            Some(con) => Ok(con),
            None => self.client.get_connection_with_timeout(self.timeout),
        }
        .and_then(|mut con| {
            self.fit(&mut con, deadline)?;
            f(&mut con, deadline).map(|v| (v, con))
        });
        match result {
            Ok((value, con)) => {
                self.status.succeeded();
                let mut idle = self.idle.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(con);
                }
                Ok(value)
            }
            Err(e) => {
                self.status.failed(
                    describe(&e, self.client.get_connection_info()),
                    self.clock.now(),
                );
                Err(e)
            }
        }
    }

    /// Runs `script` (EVALSHA; on `NOSCRIPT`, after a Redis restart or flush, EVAL
    /// once, which also caches it again).
    pub(crate) fn eval<T: redis::FromRedisValue>(
        &self,
        script: &LuaScript,
        keys: &[&str],
        args: impl redis::ToRedisArgs,
    ) -> RedisResult<T> {
        let status = self.status.clone();
        self.run(|con, deadline| {
            let call = |verb: &str, body: &str, con: &mut Connection| {
                status.round_trips.fetch_add(1, Ordering::Relaxed);
                let mut cmd = redis::cmd(verb);
                cmd.arg(body).arg(keys.len()).arg(keys).arg(&args);
                cmd.query::<T>(con)
            };
            match call("EVALSHA", &script.sha, con) {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    self.fit(con, deadline)?;
                    call("EVAL", script.code, con)
                }
                other => other,
            }
        })
    }
}

/// A failure in words for health: what went wrong and where.
fn describe(e: &redis::RedisError, info: &ConnectionInfo) -> String {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connection_refusal() {
        format!("connection refused ({e})")
    } else if e.kind() == redis::ErrorKind::AuthenticationFailed
        || e.to_string().contains("WRONGPASS")
        || e.to_string().contains("NOAUTH")
    {
        format!("authentication failed ({e})")
    } else if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) && is_tls_failure(e) {
        format!("TLS handshake failed ({e})")
    } else {
        e.to_string()
    };
    format!("redis at {} unavailable: {what}", info.addr())
}

/// Whether a TLS connection's failure came from the handshake: rustls reports a
/// certificate the CA does not vouch for, a name it does not cover, or the server's alert
/// as an I/O error whose text says so, and those need a different fix (the CA or
/// certificate files) than an unreachable server.
fn is_tls_failure(e: &redis::RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    ["certificate", "handshake", "alert", "tls"]
        .iter()
        .any(|word| text.contains(word))
}
