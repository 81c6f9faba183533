//! The policy file's schema: which sections and fields exist, and how each becomes a
//! primitive's configuration. Defaults come from the primitives' `Default`s, so a field
//! left out means exactly what the Rust API means by default.

use toml_edit::TableLike;

use super::reader::{join, Reader};
use crate::breaker::{BreakerConfig, WindowConfig};
use crate::bulkhead::BulkheadConfig;
use crate::limiter::RateLimiterConfig;
use crate::policy::{PolicyConfig, RetryOn, RetryPolicyConfig};
use crate::retry::{BudgetConfig, Jitter, RetryConfig};

/// The sections a policy may have.
pub(crate) const POLICY_KEYS: &[&str] = &[
    "timeout",
    "circuit_breaker",
    "rate_limiter",
    "bulkhead",
    "adaptive",
    "throttle",
    "retry",
    "chaos",
];

/// Reads one `[policies.NAME]` table.
pub(crate) fn read_policy(r: &mut Reader<'_>, name: &str, table: &dyn TableLike) -> PolicyConfig {
    r.only_keys(table, "", POLICY_KEYS);
    let mut policy = PolicyConfig::new(name);
    policy.timeout = r.duration(table, "", "timeout");
    if policy.timeout == Some(std::time::Duration::ZERO) {
        let line = r.key_line(table, "timeout");
        r.error(
            "timeout",
            line,
            "must be greater than 0 (leave it out for no timeout)",
        );
    }
    if let Some(t) = r.section(table, "", "circuit_breaker") {
        policy.circuit_breaker = read_breaker(r, t, "circuit_breaker");
    }
    if let Some(t) = r.section(table, "", "rate_limiter") {
        policy.rate_limiter = read_limiter(r, t, "rate_limiter");
    }
    if let Some(t) = r.section(table, "", "bulkhead") {
        policy.bulkhead = read_bulkhead(r, t, "bulkhead");
    }
    if let Some(t) = r.section(table, "", "retry") {
        policy.retry = read_retry(r, t, "retry");
    }
    super::schema_backpressure::read_backpressure(r, table, &mut policy);
    policy
}

/// Validates `config` with its own rules and reports any error at the field's line.
fn validated<T>(
    r: &mut Reader<'_>,
    table: &dyn TableLike,
    prefix: &str,
    config: T,
    validate: impl FnOnce(&T) -> Result<(), crate::ConfigError>,
    errors_before: usize,
) -> Option<T> {
    if r.errors.len() > errors_before {
        return None;
    }
    match validate(&config) {
        Ok(()) => Some(config),
        Err(e) => {
            let line = r.line_of(None);
            r.config_error(table, prefix, e, line);
            None
        }
    }
}

fn read_breaker(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<BreakerConfig> {
    let before = r.errors.len();
    r.only_keys(
        t,
        p,
        &[
            "failure_rate_threshold",
            "slow_call_rate_threshold",
            "slow_call_duration",
            "consecutive_failures",
            "window",
            "minimum_calls",
            "open_duration",
            "open_backoff_multiplier",
            "open_jitter",
            "max_open_duration",
            "half_open_permits",
            "half_open_max_wait",
            "seed",
        ],
    );
    let mut c = BreakerConfig::default();
    if let Some(v) = r.f64(t, p, "failure_rate_threshold") {
        c.failure_rate_threshold = v;
    }
    if let Some(v) = r.f64(t, p, "slow_call_rate_threshold") {
        c.slow_call_rate_threshold = Some(v);
    }
    if let Some(v) = r.duration(t, p, "slow_call_duration") {
        c.slow_call_duration = v;
    }
    if let Some(v) = r.u32(t, p, "consecutive_failures") {
        c.consecutive_failures = Some(v);
    }
    if let Some(w) = r.section(t, p, "window") {
        let wp = join(p, "window");
        r.only_keys(w, &wp, &["type", "size", "duration", "buckets"]);
        match r.choice(w, &wp, "type", &["count", "time"]) {
            Some("count") => {
                let size = match r.u32(w, &wp, "size") {
                    Some(size) => size,
                    None => match WindowConfig::default() {
                        WindowConfig::Count { size } => size,
                        WindowConfig::Time { .. } => 100,
                    },
                };
                for key in ["duration", "buckets"] {
                    if w.contains_key(key) {
                        let line = r.key_line(w, key);
                        r.error(join(&wp, key), line, "only a time window has this field");
                    }
                }
                c.window = WindowConfig::Count { size };
            }
            Some(_) => {
                let duration = r
                    .duration(w, &wp, "duration")
                    .unwrap_or(std::time::Duration::from_secs(10));
                let buckets = r.u32(w, &wp, "buckets").unwrap_or(10);
                if w.contains_key("size") {
                    let line = r.key_line(w, "size");
                    r.error(
                        join(&wp, "size"),
                        line,
                        "only a count window has this field",
                    );
                }
                c.window = WindowConfig::Time { duration, buckets };
            }
            None => {
                if !w.contains_key("type") {
                    let line = r.key_line(t, "window");
                    r.error(
                        join(&wp, "type"),
                        line,
                        "missing: write type = \"count\" or \"time\"",
                    );
                }
            }
        }
    }
    if let Some(v) = r.u32(t, p, "minimum_calls") {
        c.minimum_calls = v;
    }
    if let Some(v) = r.duration(t, p, "open_duration") {
        c.open_duration = v;
    }
    if let Some(v) = r.f64(t, p, "open_backoff_multiplier") {
        c.open_backoff_multiplier = v;
    }
    if let Some(v) = r.f64(t, p, "open_jitter") {
        c.open_jitter = v;
    }
    if let Some(v) = r.duration(t, p, "max_open_duration") {
        c.max_open_duration = v;
    }
    if let Some(v) = r.u32(t, p, "half_open_permits") {
        c.half_open_permits = v;
    }
    if let Some(v) = r.duration(t, p, "half_open_max_wait") {
        c.half_open_max_wait = v;
    }
    if let Some(v) = r.u64(t, p, "seed") {
        c.jitter_seed = v;
    }
    validated(r, t, p, c, BreakerConfig::validate, before)
}

fn read_limiter(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<RateLimiterConfig> {
    let before = r.errors.len();
    r.only_keys(t, p, &["rate", "period", "burst"]);
    let rate = r.u64(t, p, "rate");
    if rate.is_none() && !t.contains_key("rate") {
        let line = r.line_of(None);
        r.error(
            join(p, "rate"),
            line,
            "missing: a rate limiter needs `rate` (permits per period)",
        );
    }
    let period = r
        .duration(t, p, "period")
        .unwrap_or(std::time::Duration::from_secs(1));
    let mut c = RateLimiterConfig::new(rate.unwrap_or(1), period);
    if let Some(burst) = r.u64(t, p, "burst") {
        c = c.with_burst(burst);
    }
    validated(r, t, p, c, RateLimiterConfig::validate, before)
}

fn read_bulkhead(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<BulkheadConfig> {
    let before = r.errors.len();
    r.only_keys(t, p, &["max_concurrent", "max_wait"]);
    let max = r.u32(t, p, "max_concurrent");
    if max.is_none() && !t.contains_key("max_concurrent") {
        r.error(
            join(p, "max_concurrent"),
            None,
            "missing: a bulkhead needs `max_concurrent`",
        );
    }
    let mut c = BulkheadConfig::new(max.unwrap_or(1));
    if let Some(wait) = r.duration(t, p, "max_wait") {
        c = c.with_max_wait(wait);
    }
    validated(r, t, p, c, BulkheadConfig::validate, before)
}

fn read_retry(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<RetryPolicyConfig> {
    let before = r.errors.len();
    r.only_keys(
        t,
        p,
        &[
            "max_attempts",
            "max_elapsed",
            "backoff",
            "budget",
            "retry_on",
        ],
    );
    let mut c = RetryConfig::default();
    if let Some(v) = r.u32(t, p, "max_attempts") {
        c.max_attempts = v;
    }
    c.max_elapsed = r.duration(t, p, "max_elapsed");
    if let Some(b) = r.section(t, p, "backoff") {
        let bp = join(p, "backoff");
        r.only_keys(b, &bp, &["initial", "multiplier", "max", "jitter"]);
        if let Some(v) = r.duration(b, &bp, "initial") {
            c.backoff.initial = v;
        }
        if let Some(v) = r.f64(b, &bp, "multiplier") {
            c.backoff.multiplier = v;
        }
        if let Some(v) = r.duration(b, &bp, "max") {
            c.backoff.max = v;
        }
        if let Some(v) = r.choice(b, &bp, "jitter", &["none", "full", "equal", "decorrelated"]) {
            c.backoff.jitter = match v {
                "none" => Jitter::None,
                "full" => Jitter::Full,
                "equal" => Jitter::Equal,
                _ => Jitter::Decorrelated,
            };
        }
    }
    if let Some(b) = r.section(t, p, "budget") {
        let bp = join(p, "budget");
        r.only_keys(b, &bp, &["ratio", "min_per_second", "window"]);
        let mut budget = BudgetConfig::default();
        if let Some(v) = r.f64(b, &bp, "ratio") {
            budget.ratio = v;
        }
        if let Some(v) = r.u32(b, &bp, "min_per_second") {
            budget.min_per_second = v;
        }
        if let Some(v) = r.duration(b, &bp, "window") {
            budget.window = v;
        }
        c.budget = Some(budget);
    }
    let mut retry_on = RetryOn::default();
    if let Some(names) = r.choices(t, p, "retry_on", RetryOn::NAMES) {
        retry_on = RetryOn::from_names(&names);
    }
    let config = validated(r, t, p, c, RetryConfig::validate, before)?;
    Some(RetryPolicyConfig {
        retry: config,
        retry_on,
    })
}
