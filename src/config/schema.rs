//! The policy file's schema: every section and every field, described once.
//!
//! Each section is a [`Section`] table of [`Field`]s; the reader, `explain` and the
//! generated reference (`docs/policy-file.md`) all walk these tables. Defaults come from
//! the primitives' `Default`s (a section's `start`), so a field left out means exactly
//! what the Rust API means by default.

use std::time::Duration;

use toml_edit::TableLike;

use super::fields::{
    duration_value, inline_table, no_finish, read_nested, read_section, Field, Kind, Rendered,
    Section,
};
use super::reader::{join, Reader};
use crate::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AimdConfig, Gradient2Config, ThrottleConfig,
};
use crate::breaker::{BreakerConfig, BreakerState, WindowConfig, STARTING_STATES};
use crate::bulkhead::BulkheadConfig;
use crate::chaos::{ChaosConfig, LatencyFault};
use crate::fleet::{FleetConfig, OnUnavailable, Scope};
use crate::keyed::PerKeyConfig;
use crate::limiter::RateLimiterConfig;
use crate::policy::{PolicyConfig, RetryOn, RetryPolicyConfig};
use crate::retry::{BackoffConfig, BudgetConfig, Jitter};
use crate::shm::HostScope;

/// The tuning table `key` of one adaptive algorithm (named `algorithm` in the file,
/// `variant` of `AdaptiveAlgorithm`), read and written only when that algorithm is the
/// chosen one.
macro_rules! tuning_field {
    ($key:literal, $algorithm:literal, $variant:ident, $fields:ident, $doc:literal) => {
        Field {
            key: $key,
            doc: $doc,
            kind: Kind::Custom {
                read: |r, t, p, c| {
                    let tuning = match &mut c.algorithm {
                        AdaptiveAlgorithm::$variant(tuning) => Some(tuning),
                        _ => None,
                    };
                    read_tuning(r, t, p, ($key, $algorithm), $fields, tuning);
                },
                write: |c| match &c.algorithm {
                    AdaptiveAlgorithm::$variant(tuning) => {
                        Rendered::Value(inline_table($fields, tuning))
                    }
                    _ => Rendered::Skip,
                },
            },
        }
    };
}

/// A field stored directly in a struct field (or a path of them) of the section's type.
macro_rules! field {
    ($key:literal, $kind:ident, $($path:ident).+, $doc:literal) => {
        Field {
            key: $key,
            doc: $doc,
            kind: Kind::$kind(|c| c.$($path).+, |c, v| c.$($path).+ = v),
        }
    };
}

/// A rule that is off unless written (`Option<_>` in the struct).
macro_rules! maybe {
    ($key:literal, $kind:ident, $($path:ident).+, off = $off:literal, $doc:literal) => {
        Field {
            key: $key,
            doc: $doc,
            kind: Kind::$kind {
                get: |c| c.$($path).+,
                set: |c, v| c.$($path).+ = Some(v),
                off: $off,
            },
        }
    };
}

/// A policy's stage: a sub-table of `[policies.NAME]` with its own section.
pub(crate) struct Stage {
    pub(crate) key: &'static str,
    /// Reads the stage's table, if the policy has one, into the policy.
    pub(crate) read: fn(&mut Reader<'_>, &dyn TableLike, &mut PolicyConfig),
    /// Writes the stage's fields (`explain`), or returns false when it is not configured.
    pub(crate) write: fn(&PolicyConfig, &mut String) -> bool,
    /// Writes the stage's reference section.
    pub(crate) reference: fn(&mut String),
}

macro_rules! stage {
    ($key:literal, $field:ident, $section:ident) => {
        stage!(
            $key,
            $field,
            $section,
            std::convert::identity,
            std::convert::identity
        )
    };
    // A rarely configured stage kept behind a `Box` in `PolicyConfig`, so an idle policy
    // does not pay for its size.
    ($key:literal, $field:ident, $section:ident, boxed) => {
        stage!($key, $field, $section, Box::new, Box::as_ref)
    };
    ($key:literal, $field:ident, $section:ident, $wrap:expr, $unwrap:expr) => {
        Stage {
            key: $key,
            read: |r, t, policy| {
                if let Some(s) = r.section(t, "", $key) {
                    policy.$field = read_section(r, s, $key, &$section).map($wrap);
                }
            },
            write: |policy, out| match &policy.$field {
                Some(c) => {
                    let c = $unwrap(c);
                    super::fields::write_fields(out, $section.fields, c);
                    true
                }
                None => false,
            },
            reference: |out| {
                super::fields::reference_section(out, concat!("policies.NAME.", $key), &$section)
            },
        }
    };
}

/// The stages, in the order `explain` writes them (the pipeline's, retry last).
pub(crate) static STAGES: &[Stage] = &[
    stage!("circuit_breaker", circuit_breaker, BREAKER),
    stage!("rate_limiter", rate_limiter, LIMITER),
    stage!("throttle", throttle, THROTTLE),
    stage!("bulkhead", bulkhead, BULKHEAD),
    stage!("adaptive", adaptive, ADAPTIVE),
    stage!("chaos", chaos, CHAOS),
    stage!("retry", retry, RETRY),
    stage!("fleet", fleet, FLEET, boxed),
    stage!("per_key", per_key, PER_KEY, boxed),
];

/// The fields of `[policies.NAME]` itself (its stages are [`STAGES`]).
pub(crate) static POLICY_FIELDS: &[Field<PolicyConfig>] = &[TIMEOUT, SCOPE, SEGMENT];

/// `scope = "process" | "host"` (host scope: see `shm`).
const SCOPE: Field<PolicyConfig> = Field {
    key: "scope",
    doc: "`\"process\"` (this process's own state) or `\"host\"`: the breaker, limiter and \
          bulkhead are shared by every process on the machine that loads this policy with the \
          same `segment` and the same settings of those stages (see the README, \"Pre-fork \
          servers\").",
    kind: Kind::Custom {
        read: |r, t, p, policy| {
            if let Some(scope) = r.choice(t, p, "scope", &["process", "host"]) {
                policy.host = (scope == "host").then(|| HostScope::new(policy.name.clone()));
            }
        },
        // Process scope, the default, is left out so `explain` stays as it was for every
        // policy that does not use host scope.
        write: |policy| match policy.host {
            Some(_) => Rendered::Value("\"host\"".into()),
            None => Rendered::Skip,
        },
    },
};

/// `segment = "NAME"`, only with `scope = "host"`.
const SEGMENT: Field<PolicyConfig> = Field {
    key: "segment",
    doc: "With `scope = \"host\"`: the shared segment's name (`/dev/shm/breakwater.NAME`), \
          1-200 characters of `A-Z a-z 0-9 . _ -` [the policy's name]. Another configuration \
          under the same name is refused.",
    kind: Kind::Custom {
        read: |r, t, p, policy| {
            if t.get("segment").is_none() {
                // Host scope without `segment` names the segment after the policy, and a
                // policy's name may hold what a segment's may not (`:`): refused here as
                // the same name written out is (`explain` writes it out).
                if let Some(host) = &policy.host {
                    if let Err(e) = crate::shm::check_name(&host.segment) {
                        let line = r.key_line(t, "scope");
                        let why = format!("{e} (the policy's name: set `segment`)");
                        r.error(join(p, "segment"), line, why);
                    }
                }
                return;
            }
            let Some(segment) = r.string(t, p, "segment") else {
                return;
            };
            let line = r.key_line(t, "segment");
            match (&mut policy.host, crate::shm::check_name(segment)) {
                (None, _) => r.error(join(p, "segment"), line, "only with `scope = \"host\"`"),
                (Some(_), Err(e)) => r.error(join(p, "segment"), line, e.to_string()),
                (Some(host), Ok(())) => host.segment = segment.to_string(),
            }
        },
        write: |policy| match &policy.host {
            Some(host) => Rendered::Value(format!("\"{}\"", host.segment)),
            None => Rendered::Skip,
        },
    },
};

/// `timeout = "3s"`.
const TIMEOUT: Field<PolicyConfig> = Field {
    key: "timeout",
    doc: "The attempt deadline: a call that completes later is recorded as `timeout` \
          (bindings that can cancel, cancel). Greater than 0.",
    kind: Kind::Custom {
        read: |r, t, p, policy| {
            if let Some(timeout) = r.duration(t, p, "timeout") {
                if timeout.is_zero() {
                    let line = r.key_line(t, "timeout");
                    r.error(
                        join(p, "timeout"),
                        line,
                        "must be greater than 0 (leave it out for no timeout)",
                    );
                } else {
                    policy.timeout = Some(timeout);
                }
            }
        },
        write: |policy| match policy.timeout {
            Some(t) => Rendered::Value(duration_value(t)),
            None => Rendered::Off("none".into()),
        },
    },
};

/// Every key of `[policies.NAME]`: its own fields, then its stages.
pub(crate) fn policy_keys() -> Vec<&'static str> {
    POLICY_FIELDS
        .iter()
        .map(|f| f.key)
        .chain(STAGES.iter().map(|s| s.key))
        .collect()
}

/// Reads one `[policies.NAME]` table.
pub(crate) fn read_policy(r: &mut Reader<'_>, name: &str, table: &dyn TableLike) -> PolicyConfig {
    r.only_keys(table, "", &policy_keys());
    let mut policy = PolicyConfig::new(name);
    for field in POLICY_FIELDS {
        if let Kind::Custom { read, .. } = field.kind {
            read(r, table, "", &mut policy);
        }
    }
    for stage in STAGES {
        (stage.read)(r, table, &mut policy);
    }
    policy
}

const STARTING_STATE_NAMES: [&str; 3] = [
    STARTING_STATES[0].as_str(),
    STARTING_STATES[1].as_str(),
    STARTING_STATES[2].as_str(),
];

static BREAKER: Section<BreakerConfig> = Section {
    doc: "Stage 1: rejects calls while the dependency fails (states closed, open, half-open).",
    fields: &[
        field!("failure_rate_threshold", F64, failure_rate_threshold,
            "Failure rate (percent of the window's calls; `timeout` counts as failure) that trips the breaker. `(0, 100]`."),
        maybe!("slow_call_rate_threshold", MaybeF64, slow_call_rate_threshold, off = "off",
            "Slow-call rate (percent) that trips the breaker. `(0, 100]`."),
        field!("slow_call_duration", Duration, slow_call_duration,
            "A call longer than this is slow (used with `slow_call_rate_threshold`)."),
        maybe!("consecutive_failures", MaybeU32, consecutive_failures, off = "off",
            "Trip after this many failures in a row, whatever `minimum_calls` says. `>= 1`."),
        Field {
            key: "window",
            doc: "The sliding window: `{ type = \"count\", size = N }` (last N outcomes) or \
                  `{ type = \"time\", duration = \"10s\", buckets = B }`.",
            kind: Kind::Custom { read: read_window, write: write_window },
        },
        field!("minimum_calls", U32, minimum_calls,
            "Outcomes the window must hold before the rate rules can trip it. `>= 1`."),
        field!("open_duration", Duration, open_duration,
            "How long the breaker stays open after its first trip."),
        field!("open_backoff_multiplier", F64, open_backoff_multiplier,
            "Each trip after a failed half-open trial multiplies the open duration by this (`1` = off)."),
        field!("open_jitter", F64, open_jitter,
            "Shortens each open period by a random fraction of at most this. `0..=1`."),
        field!("max_open_duration", Duration, max_open_duration,
            "The cap of the grown open duration."),
        field!("half_open_permits", U32, half_open_permits,
            "Probe calls admitted in half-open; the trial is decided when all have completed."),
        field!("half_open_max_wait", Duration, half_open_max_wait,
            "The longest the breaker waits in half-open for its probes."),
        field!("seed", U64, jitter_seed, "Seeds the open-duration jitter, so runs replay exactly."),
        Field {
            key: "initial_state",
            doc: "The state a new (or reloaded-with-changes) breaker starts in: `\"closed\"`, \
                  `\"disabled\"` (observe only: records, never trips) or `\"forced_open\"`.",
            kind: Kind::Choice {
                choices: &STARTING_STATE_NAMES,
                get: |c| c.initial_state.as_str(),
                set: |c, name| {
                    if let Some(state) = BreakerState::from_name(name) {
                        c.initial_state = state;
                    }
                },
            },
        },
    ],
    start: BreakerConfig::default,
    required: &[],
    finish: no_finish,
    validate: BreakerConfig::validate,
};

fn read_window(r: &mut Reader<'_>, t: &dyn TableLike, p: &str, c: &mut BreakerConfig) {
    let Some(w) = r.section(t, p, "window") else {
        return;
    };
    let wp = join(p, "window");
    r.only_keys(w, &wp, &["type", "size", "duration", "buckets"]);
    let only = |r: &mut Reader<'_>, keys: &[&str], kind: &str| {
        for key in keys {
            if w.contains_key(key) {
                let line = r.key_line(w, key);
                r.error(
                    join(&wp, key),
                    line,
                    format!("only a {kind} window has this field"),
                );
            }
        }
    };
    match r.choice(w, &wp, "type", &["count", "time"]) {
        Some("count") => {
            let size = r
                .u32(w, &wp, "size")
                .unwrap_or(match WindowConfig::default() {
                    WindowConfig::Count { size } => size,
                    WindowConfig::Time { .. } => 100,
                });
            only(r, &["duration", "buckets"], "time");
            c.window = WindowConfig::Count { size };
        }
        Some(_) => {
            let duration = r
                .duration(w, &wp, "duration")
                .unwrap_or(Duration::from_secs(10));
            let buckets = r.u32(w, &wp, "buckets").unwrap_or(10);
            only(r, &["size"], "count");
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

fn write_window(c: &BreakerConfig) -> Rendered {
    Rendered::Value(match c.window {
        WindowConfig::Count { size } => format!("{{ type = \"count\", size = {size} }}"),
        WindowConfig::Time { duration, buckets } => format!(
            "{{ type = \"time\", duration = {}, buckets = {buckets} }}",
            duration_value(duration)
        ),
    })
}

/// The `finish` of a section with `rate` and `burst` (the limiter, per-key limits): a
/// file that sets `rate` but not `burst` gets `burst = rate`, as `new` gives.
macro_rules! burst_defaults_to_rate {
    () => {
        |c, t| {
            if !t.contains_key("burst") {
                c.burst = c.rate;
            }
        }
    };
}

static LIMITER: Section<RateLimiterConfig> = Section {
    doc: "Stage 2: the client-side quota toward the dependency (GCRA).",
    fields: &[
        field!("rate", U64, rate, "Permits per `period`. `>= 1`."),
        field!("period", Duration, period, "The period of `rate`."),
        field!(
            "burst",
            U64,
            burst,
            "Permits that may be taken at once; defaults to `rate`."
        ),
        Field {
            key: "scope",
            doc: "`\"local\"`: this process's quota; `\"fleet\"`: one quota across every \
                  process sharing the policy's `fleet` Redis (feature `fleet`).",
            kind: Kind::Choice {
                choices: Scope::NAMES,
                get: |c| c.scope.as_str(),
                set: |c, name| c.scope = Scope::from_name(name).unwrap_or_default(),
            },
        },
    ],
    start: || RateLimiterConfig::new(1, Duration::from_secs(1)),
    required: &[(
        "rate",
        "missing: a rate limiter needs `rate` (permits per period)",
    )],
    finish: burst_defaults_to_rate!(),
    validate: RateLimiterConfig::validate,
};

/// A string field (`String` in the struct).
macro_rules! text {
    ($key:literal, $($path:ident).+, $doc:literal) => {
        Field {
            key: $key,
            doc: $doc,
            kind: Kind::Custom {
                read: |r, t, p, c| {
                    if let Some(v) = r.string(t, p, $key) {
                        c.$($path).+ = v.to_string();
                    }
                },
                write: |c| Rendered::Value(toml_string(&c.$($path).+)),
            },
        }
    };
}

/// An optional string field (`Option<String>`, or `Option<PathBuf>` with `path`).
macro_rules! maybe_text {
    ($key:literal, $($path:ident).+, $doc:literal) => {
        maybe_text!(@ $key, $($path).+, $doc, |v: &str| v.to_string(), |v: &String| v.clone())
    };
    ($key:literal, path $($path:ident).+, $doc:literal) => {
        maybe_text!(@ $key, $($path).+, $doc, |v: &str| std::path::PathBuf::from(v),
            |v: &std::path::PathBuf| v.display().to_string())
    };
    (@ $key:literal, $($path:ident).+, $doc:literal, $from:expr, $to:expr) => {
        Field {
            key: $key,
            doc: $doc,
            kind: Kind::Custom {
                read: |r, t, p, c| {
                    if let Some(v) = r.string(t, p, $key) {
                        c.$($path).+ = Some(($from)(v));
                    }
                },
                write: |c| match &c.$($path).+ {
                    Some(v) => Rendered::Value(toml_string(&($to)(v))),
                    None => Rendered::Off("none".into()),
                },
            },
        }
    };
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}

static FLEET: Section<FleetConfig> = Section {
    doc: "The Redis a policy's fleet-wide limits share with every other process (feature \
          `fleet`): `scope = \"fleet\"` on the rate limiter, and `max_concurrent` here; and \
          what they do when it is unavailable. Credentials are never \
          written here: only where to read them.",
    fields: &[
        text!("address", address,
            "`host:port` or `redis://[user@]host:port[/db]` (no password); `rediss://` for TLS."),
        maybe_text!("username", username, "The ACL user, if the server has users."),
        maybe_text!("password_env", password_env,
            "The environment variable holding the password (read when the policy is built)."),
        maybe_text!("password_file", path password_file,
            "The file whose first line is the password (read when the policy is built)."),
        maybe_text!("ca_file", path ca_file,
            "With `rediss://`: the PEM file of the CA certificates that sign the server's \
             (in place of the system's trusted CAs; read when the policy is built)."),
        maybe_text!("cert_file", path cert_file,
            "With `rediss://`: this client's PEM certificate, for a server that asks for one \
             (`tls-auth-clients`); needs `key_file`."),
        maybe_text!("key_file", path key_file,
            "With `rediss://`: the PEM private key of `cert_file`."),
        text!("namespace", namespace, "Prefix of every Redis key (`NAMESPACE:POLICY:…`)."),
        Field {
            key: "on_unavailable",
            doc: "While Redis is unavailable: `\"local\"` (each process enforces `local_share` \
                  of the quota), `\"deny\"` or `\"allow\"` (no bound).",
            kind: Kind::Choice {
                choices: OnUnavailable::NAMES,
                get: |c| c.on_unavailable.as_str(),
                set: |c, name| c.on_unavailable = OnUnavailable::from_name(name).unwrap_or_default(),
            },
        },
        field!("local_share", F64, local_share,
            "The fraction of the fleet quota one process enforces alone with `on_unavailable = \"local\"`. `(0, 1]`."),
        field!("timeout", Duration, timeout, "The longest any one Redis call may take."),
        field!("lease_horizon", Duration, lease_horizon,
            "How long a leased batch of tokens should last at the local rate (sets the batch size)."),
        field!("max_batch", U64, max_batch,
            "The most tokens a process leases at once (also at most `burst`): its stranded tokens' bound."),
        field!("lease_ttl", Duration, lease_ttl,
            "A fleet concurrency slot's lease; a crashed process's slots return after it."),
        field!("max_backoff", Duration, max_backoff,
            "The longest pause between reconnection attempts (doubling from `timeout`)."),
        maybe!("max_concurrent", MaybeU32, max_concurrent, off = "unlimited",
            "At most this many of the policy's calls in flight across the fleet (leases of \
             `lease_ttl`, asked after the rate limiter; a full limit rejects as \
             `bulkhead_full`). Not set: no fleet concurrency limit."),
    ],
    start: || FleetConfig::new(""),
    required: &[(
        "address",
        "missing: a fleet section needs the Redis `address`",
    )],
    finish: no_finish,
    validate: FleetConfig::validate,
};

static THROTTLE: Section<ThrottleConfig> = Section {
    doc: "Stage 2: client-side throttling (Google SRE): rejects locally with probability \
          `max(0, (requests − k·accepts) / (requests + 1))`.",
    fields: &[
        field!(
            "k",
            F64,
            k,
            "Accepts multiplier: larger rejects later. `> 0`."
        ),
        field!(
            "window",
            Duration,
            window,
            "The window requests and accepts are counted over."
        ),
        field!("buckets", U32, buckets, "Buckets of the window."),
        field!(
            "max_rejection_probability",
            F64,
            max_rejection_probability,
            "The cap of the rejection probability. `0..=1`."
        ),
        field!(
            "seed",
            U64,
            seed,
            "Seeds the rejection draws, so runs replay exactly."
        ),
    ],
    start: ThrottleConfig::default,
    required: &[],
    finish: no_finish,
    validate: ThrottleConfig::validate,
};

static BULKHEAD: Section<BulkheadConfig> = Section {
    doc: "Stage 3: a concurrency limit toward the dependency.",
    fields: &[
        field!(
            "max_concurrent",
            U32,
            max_concurrent,
            "Permits out at once. `>= 1`."
        ),
        field!(
            "max_wait",
            Duration,
            max_wait,
            "How long a blocking acquire may wait for a permit (`0` = never waits)."
        ),
    ],
    start: || BulkheadConfig::new(1),
    required: &[(
        "max_concurrent",
        "missing: a bulkhead needs `max_concurrent`",
    )],
    finish: no_finish,
    validate: BulkheadConfig::validate,
};

static ADAPTIVE: Section<AdaptiveConfig> = Section {
    doc: "Stage 3: an adaptive concurrency limit that follows observed latency, with \
          priority-based load shedding.",
    fields: &[
        Field {
            key: "algorithm",
            doc: "`\"aimd\"` or `\"gradient2\"`; tuned by the table of the same name.",
            kind: Kind::Custom {
                read: |r, t, p, c| {
                    if let Some(name) = r.choice(t, p, "algorithm", &["aimd", "gradient2"]) {
                        c.algorithm = match name {
                            "aimd" => AdaptiveAlgorithm::Aimd(AimdConfig::default()),
                            _ => AdaptiveAlgorithm::Gradient2(Gradient2Config::default()),
                        };
                    }
                },
                write: |c| Rendered::Value(format!("\"{}\"", c.algorithm.as_str())),
            },
        },
        field!("initial_limit", U32, initial_limit, "The limit before any sample."),
        field!("min_limit", U32, min_limit, "The lowest the limit goes. `>= 1`."),
        field!("max_limit", U32, max_limit, "The highest the limit goes."),
        field!("sheddable_at", F64, sheddable_at,
            "Sheddable calls are refused from this fraction of the limit. `(0, 1]`."),
        field!("default_at", F64, default_at,
            "Default-priority calls are refused from this fraction of the limit. `(0, 1]`."),
        tuning_field!("aimd", "aimd", Aimd, AIMD_FIELDS,
            "AIMD tuning: `{ increase, backoff_ratio, timeout }` (only with `algorithm = \"aimd\"`)."),
        tuning_field!("gradient", "gradient2", Gradient2, GRADIENT_FIELDS,
            "Gradient2 tuning: `{ smoothing, tolerance, long_window, queue_size }` (only with `algorithm = \"gradient2\"`)."),
    ],
    start: AdaptiveConfig::default,
    required: &[],
    finish: no_finish,
    validate: AdaptiveConfig::validate,
};

/// Reads the tuning table `key` of `algorithm` into `tuning`, that algorithm's
/// configuration when it is the chosen one; a table for an algorithm that was not
/// chosen (`None`) is an error at its line.
fn read_tuning<S>(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    p: &str,
    (key, algorithm): (&str, &str),
    fields: &[Field<S>],
    tuning: Option<&mut S>,
) {
    if !t.contains_key(key) {
        return;
    }
    match tuning {
        Some(tuning) => {
            read_nested(r, t, p, key, fields, tuning);
        }
        None => {
            let line = r.key_line(t, key);
            r.error(
                join(p, key),
                line,
                format!("only the {algorithm} algorithm has this section"),
            );
        }
    }
}

static AIMD_FIELDS: &[Field<AimdConfig>] = &[
    field!(
        "increase",
        U32,
        increase,
        "Added to the limit after a good sample."
    ),
    field!(
        "backoff_ratio",
        F64,
        backoff_ratio,
        "The limit is multiplied by this after a bad sample."
    ),
    field!(
        "timeout",
        Duration,
        timeout,
        "A sample slower than this is bad."
    ),
];

static GRADIENT_FIELDS: &[Field<Gradient2Config>] = &[
    field!(
        "smoothing",
        F64,
        smoothing,
        "Weight of a new limit estimate."
    ),
    field!(
        "tolerance",
        F64,
        tolerance,
        "How much latency may rise above the long-term average."
    ),
    field!(
        "long_window",
        U32,
        long_window,
        "Samples in the long-term latency average."
    ),
    field!(
        "queue_size",
        U32,
        queue_size,
        "Headroom added to the estimated limit."
    ),
];

static CHAOS: Section<ChaosConfig> = Section {
    doc: "Stage 4: fault injection (innermost), switchable at run time, seeded.",
    fields: &[
        field!(
            "enabled",
            Bool,
            enabled,
            "Whether faults are injected (switchable at run time)."
        ),
        field!(
            "failure_probability",
            F64,
            failure_probability,
            "Probability that a call fails without being made. `0..=1`."
        ),
        field!(
            "rejection_probability",
            F64,
            rejection_probability,
            "Probability that a call is rejected. `0..=1`."
        ),
        field!(
            "latency_probability",
            F64,
            latency_probability,
            "Probability that `latency` is injected before a call. `0..=1`."
        ),
        Field {
            key: "latency",
            doc: "Injected latency: a duration, or `{ min, max }` for a uniform draw.",
            kind: Kind::Custom {
                read: read_latency,
                write: write_latency,
            },
        },
        field!(
            "seed",
            U64,
            seed,
            "Seeds the draws, so a chaos run replays bit for bit."
        ),
    ],
    start: ChaosConfig::default,
    required: &[],
    finish: no_finish,
    validate: ChaosConfig::validate,
};

fn read_latency(r: &mut Reader<'_>, t: &dyn TableLike, p: &str, c: &mut ChaosConfig) {
    let Some(item) = t.get("latency") else {
        return;
    };
    if item.as_str().is_some() {
        if let Some(d) = r.duration(t, p, "latency") {
            c.latency = LatencyFault::Fixed(d);
        }
    } else if let Some(range) = r.section(t, p, "latency") {
        let lp = join(p, "latency");
        r.only_keys(range, &lp, &["min", "max"]);
        let min = r.duration(range, &lp, "min").unwrap_or(Duration::ZERO);
        let max = r.duration(range, &lp, "max").unwrap_or(min);
        c.latency = LatencyFault::Uniform { min, max };
    }
}

fn write_latency(c: &ChaosConfig) -> Rendered {
    match c.latency {
        LatencyFault::None => Rendered::Off("none".into()),
        LatencyFault::Fixed(d) => Rendered::Value(duration_value(d)),
        LatencyFault::Uniform { min, max } => Rendered::Value(format!(
            "{{ min = {}, max = {} }}",
            duration_value(min),
            duration_value(max)
        )),
    }
}

static RETRY: Section<RetryPolicyConfig> = Section {
    doc: "The retry loop around the pipeline (`call`, decorators, `Execute`): each attempt \
          acquires again; retries are limited by the budget.",
    fields: &[
        field!(
            "max_attempts",
            U32,
            retry.max_attempts,
            "Attempts in all, the first included. `>= 1`."
        ),
        maybe!(
            "max_elapsed",
            MaybeDuration,
            retry.max_elapsed,
            off = "none",
            "No retry starts after this much time since the first attempt."
        ),
        Field {
            key: "retry_on",
            doc: "Which outcomes are retried: `failure`, `timeout`, and rejection reasons.",
            kind: Kind::Choices {
                choices: RetryOn::NAMES,
                get: |c| c.retry_on.names(),
                set: |c, names| c.retry_on = RetryOn::from_names(names),
            },
        },
        Field {
            key: "backoff",
            doc: "The delay schedule: `{ initial, multiplier, max, jitter }`; jitter is \
                  `none`, `full`, `equal` or `decorrelated`.",
            kind: Kind::Custom {
                read: |r, t, p, c| {
                    read_nested(r, t, p, "backoff", BACKOFF_FIELDS, &mut c.retry.backoff);
                },
                write: |c| Rendered::Value(inline_table(BACKOFF_FIELDS, &c.retry.backoff)),
            },
        },
        Field {
            key: "budget",
            doc: "The retry budget: `{ ratio, min_per_second, window }`; retries may add at \
                  most `ratio` of the traffic plus `min_per_second`.",
            kind: Kind::Custom {
                read: |r, t, p, c| {
                    let mut budget = BudgetConfig::default();
                    if read_nested(r, t, p, "budget", BUDGET_FIELDS, &mut budget) {
                        c.retry.budget = Some(budget);
                    }
                },
                write: |c| match &c.retry.budget {
                    Some(b) => Rendered::Value(inline_table(BUDGET_FIELDS, b)),
                    None => Rendered::Off("none (retries are limited by max_attempts only)".into()),
                },
            },
        },
    ],
    start: || RetryPolicyConfig {
        retry: Default::default(),
        retry_on: RetryOn::default(),
    },
    required: &[],
    finish: no_finish,
    validate: |c| c.retry.validate(),
};

static BACKOFF_FIELDS: &[Field<BackoffConfig>] = &[
    field!("initial", Duration, initial, "The first retry's delay."),
    field!(
        "multiplier",
        F64,
        multiplier,
        "Each retry's delay is the previous one times this."
    ),
    field!("max", Duration, max, "The cap of a delay."),
    Field {
        key: "jitter",
        doc: "How delays are randomised.",
        kind: Kind::Choice {
            choices: &Jitter::NAMES,
            get: |c| c.jitter.as_str(),
            set: |c, name| {
                if let Some(j) = Jitter::from_name(name) {
                    c.jitter = j;
                }
            },
        },
    },
];

static BUDGET_FIELDS: &[Field<BudgetConfig>] = &[
    field!(
        "ratio",
        F64,
        ratio,
        "Retries may add at most this fraction of the requests."
    ),
    field!(
        "min_per_second",
        U32,
        min_per_second,
        "Retries always allowed per second."
    ),
    field!(
        "window",
        Duration,
        window,
        "The window requests and retries are counted over."
    ),
];

static PER_KEY: Section<PerKeyConfig> = Section {
    doc: "Stage 0: a rate and concurrency limit for each key (client, API key, tenant), \
          asked first by keyed acquires (`acquire_keyed`); memory fixed by `max_keys`.",
    fields: &[
        field!("rate", U64, rate, "Permits per `period` for each key. `>= 1`."),
        field!("period", Duration, period, "The period of `rate`."),
        field!(
            "burst",
            U64,
            burst,
            "Permits a key may take at once; defaults to `rate`."
        ),
        maybe!("max_concurrent", MaybeU32, max_concurrent, off = "unlimited",
            "Permits one key may hold at once. `1..=65535`."),
        field!(
            "max_keys",
            U32,
            max_keys,
            "Keys limiting at the same time the table is sized for (allocated up front, 29 to 59 bytes per key). `1..=16777216`."
        ),
        field!(
            "top_keys",
            U32,
            top_keys,
            "How many of the most-rejected keys the snapshot and metrics show (`0` = none). `<= 64`."
        ),
    ],
    start: || PerKeyConfig::new(1, Duration::from_secs(1)),
    required: &[(
        "rate",
        "missing: per-key limits need `rate` (permits per period for each key)",
    )],
    finish: burst_defaults_to_rate!(),
    validate: PerKeyConfig::validate,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_is_a_policy_config_field_once() {
        let keys = policy_keys();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "{keys:?}");
    }
}
