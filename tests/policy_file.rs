//! The policy file: the example file loads, and every kind of bad file is refused with
//! an error naming the exact policy, field and line.
#![cfg(not(loom))]

use std::time::Duration;

use breakwater::breaker::WindowConfig;
use breakwater::config::{explain, PolicyFile};
use breakwater::engine::Engine;
use breakwater::retry::Jitter;

const EXAMPLE: &str = include_str!("../examples/policies.toml");

#[test]
fn example_policy_file_loads_with_every_option() {
    let file = PolicyFile::parse(EXAMPLE).expect("examples/policies.toml is valid");
    let names: Vec<&str> = file.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["payments", "search", "inventory"]);
    let payments = file.policy("payments").unwrap();
    assert_eq!(payments.timeout, Some(Duration::from_secs(3)));
    let breaker = payments.circuit_breaker.as_ref().unwrap();
    assert_eq!(breaker.failure_rate_threshold, 50.0);
    assert_eq!(breaker.slow_call_rate_threshold, Some(80.0));
    assert_eq!(breaker.consecutive_failures, Some(10));
    assert_eq!(
        breaker.window,
        WindowConfig::Time {
            duration: Duration::from_secs(10),
            buckets: 10
        }
    );
    assert_eq!(breaker.open_backoff_multiplier, 2.0);
    let limiter = payments.rate_limiter.as_ref().unwrap();
    assert_eq!(
        (limiter.rate, limiter.period, limiter.burst),
        (100, Duration::from_secs(1), 20)
    );
    assert_eq!(
        payments.bulkhead.as_ref().unwrap().max_wait,
        Duration::from_millis(10)
    );
    let retry = payments.retry.as_ref().unwrap();
    assert_eq!(retry.retry.max_attempts, 3);
    assert_eq!(retry.retry.backoff.jitter, Jitter::Full);
    assert_eq!(retry.retry.budget.unwrap().min_per_second, 10);
    assert_eq!(
        retry.retry_on.names(),
        ["failure", "timeout", "rate_limited"]
    );
    assert!(file.policy("search").unwrap().throttle.is_some());
    let inventory = file.policy("inventory").unwrap();
    assert_eq!(inventory.chaos.unwrap().seed, 42);
    assert_eq!(inventory.adaptive.unwrap().algorithm.as_str(), "aimd");
    // And an engine builds every stage of it.
    let engine = Engine::from_toml_str(EXAMPLE).unwrap();
    assert_eq!(engine.names(), ["payments", "search", "inventory"]);
}

#[test]
fn explain_output_is_a_policy_file_with_the_same_meaning() {
    let file = PolicyFile::parse(EXAMPLE).unwrap();
    let text = explain(&file.policies);
    let again = PolicyFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(again, file);
    // Defaults are written out.
    let minimal = PolicyFile::parse("[policies.a.circuit_breaker]\n").unwrap();
    let text = explain(&minimal.policies);
    assert!(text.contains("failure_rate_threshold = 50.0"), "{text}");
    assert!(
        text.contains("window = { type = \"count\", size = 100 }"),
        "{text}"
    );
    assert!(text.contains("open_duration = \"30s\""), "{text}");
    assert_eq!(PolicyFile::parse(&text).unwrap(), minimal);
}

/// (case, file, policy, field, line)
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<usize>,
);

const BAD_FILES: &[Case] = &[
    ("empty file", "", None, "policies", None),
    ("only comments", "# nothing\n", None, "policies", None),
    ("empty policies table", "[policies]\n", None, "policies", Some(1)),
    ("policies not a table", "policies = 3\n", None, "policies", Some(1)),
    ("unknown top-level key", "[policy.a]\n", None, "policy", Some(1)),
    ("policy not a table", "[policies]\na = 1\n", Some("a"), "", Some(2)),
    ("bad policy name", "[policies.\"pay ments\"]\n", Some("pay ments"), "", Some(1)),
    ("invalid toml", "[policies.a\n", None, "", Some(1)),
    ("duplicate policy", "[policies.a]\n[policies.a]\n", Some("a"), "", Some(2)),
    ("duplicate field", "[policies.a.bulkhead]\nmax_concurrent = 1\nmax_concurrent = 2\n", Some("a"), "bulkhead.max_concurrent", Some(3)),
    ("unknown section", "[policies.a.circuitbreaker]\n", Some("a"), "circuitbreaker", Some(1)),
    ("breaker starting open", "[policies.a.circuit_breaker]\ninitial_state = \"open\"\n", Some("a"), "circuit_breaker.initial_state", Some(2)),
    ("unknown breaker field", "[policies.a.circuit_breaker]\nfailure_rate = 50\n", Some("a"), "circuit_breaker.failure_rate", Some(2)),
    ("threshold above 100", "[policies.a.circuit_breaker]\nfailure_rate_threshold = 150\n", Some("a"), "circuit_breaker.failure_rate_threshold", Some(2)),
    ("threshold zero", "[policies.a.circuit_breaker]\nfailure_rate_threshold = 0\n", Some("a"), "circuit_breaker.failure_rate_threshold", Some(2)),
    ("threshold wrong type", "[policies.a.circuit_breaker]\nfailure_rate_threshold = \"high\"\n", Some("a"), "circuit_breaker.failure_rate_threshold", Some(2)),
    ("slow threshold negative", "[policies.a.circuit_breaker]\nslow_call_rate_threshold = -5\n", Some("a"), "circuit_breaker.slow_call_rate_threshold", Some(2)),
    ("negative minimum calls", "[policies.a.circuit_breaker]\nminimum_calls = -1\n", Some("a"), "circuit_breaker.minimum_calls", Some(2)),
    ("zero consecutive failures", "[policies.a.circuit_breaker]\nconsecutive_failures = 0\n", Some("a"), "circuit_breaker.consecutive_failures", Some(2)),
    ("zero count window", "[policies.a.circuit_breaker]\nwindow = { type = \"count\", size = 0 }\n", Some("a"), "circuit_breaker.window.size", Some(2)),
    ("too many buckets", "[policies.a.circuit_breaker]\nwindow = { type = \"time\", duration = \"10s\", buckets = 1000 }\n", Some("a"), "circuit_breaker.window.buckets", Some(2)),
    ("unknown window type", "[policies.a.circuit_breaker]\nwindow = { type = \"sliding\" }\n", Some("a"), "circuit_breaker.window.type", Some(2)),
    ("window without type", "[policies.a.circuit_breaker]\nwindow = { size = 10 }\n", Some("a"), "circuit_breaker.window.type", Some(2)),
    ("count window with duration", "[policies.a.circuit_breaker]\nwindow = { type = \"count\", duration = \"1s\" }\n", Some("a"), "circuit_breaker.window.duration", Some(2)),
    ("duration without unit", "[policies.a.circuit_breaker]\nopen_duration = \"30\"\n", Some("a"), "circuit_breaker.open_duration", Some(2)),
    ("duration as number", "[policies.a.circuit_breaker]\nopen_duration = 30\n", Some("a"), "circuit_breaker.open_duration", Some(2)),
    ("bad duration unit", "[policies.a.circuit_breaker]\nopen_duration = \"30 fortnights\"\n", Some("a"), "circuit_breaker.open_duration", Some(2)),
    ("zero open duration", "[policies.a.circuit_breaker]\nopen_duration = \"0s\"\n", Some("a"), "circuit_breaker.open_duration", Some(2)),
    ("zero half-open permits", "[policies.a.circuit_breaker]\nhalf_open_permits = 0\n", Some("a"), "circuit_breaker.half_open_permits", Some(2)),
    ("multiplier below one", "[policies.a.circuit_breaker]\nopen_backoff_multiplier = 0.5\n", Some("a"), "circuit_breaker.open_backoff_multiplier", Some(2)),
    ("zero rate", "[policies.a.rate_limiter]\nrate = 0\n", Some("a"), "rate_limiter.rate", Some(2)),
    ("missing rate", "[policies.a.rate_limiter]\nburst = 5\n", Some("a"), "rate_limiter.rate", None),
    ("zero period", "[policies.a.rate_limiter]\nrate = 5\nperiod = \"0s\"\n", Some("a"), "rate_limiter.period", Some(3)),
    ("zero burst", "[policies.a.rate_limiter]\nrate = 5\nburst = 0\n", Some("a"), "rate_limiter.burst", Some(3)),
    ("rate too large", "[policies.a.rate_limiter]\nrate = 99999999999\nperiod = \"1s\"\n", Some("a"), "rate_limiter.rate", Some(2)),
    ("zero bulkhead", "[policies.a.bulkhead]\nmax_concurrent = 0\n", Some("a"), "bulkhead.max_concurrent", Some(2)),
    ("bulkhead typo", "[policies.a.bulkhead]\nmax_concurent = 3\n", Some("a"), "bulkhead.max_concurent", Some(2)),
    ("bulkhead overflow", "[policies.a.bulkhead]\nmax_concurrent = 99999999999\n", Some("a"), "bulkhead.max_concurrent", Some(2)),
    ("zero attempts", "[policies.a.retry]\nmax_attempts = 0\n", Some("a"), "retry.max_attempts", Some(2)),
    ("unknown jitter", "[policies.a.retry]\nbackoff = { jitter = \"random\" }\n", Some("a"), "retry.backoff.jitter", Some(2)),
    ("backoff max below initial", "[policies.a.retry]\nbackoff = { initial = \"1s\", max = \"10ms\" }\n", Some("a"), "retry.backoff.max", Some(2)),
    ("negative budget ratio", "[policies.a.retry]\nbudget = { ratio = -0.5 }\n", Some("a"), "retry.budget.ratio", Some(2)),
    ("unknown retry_on", "[policies.a.retry]\nretry_on = [\"failure\", \"sometimes\"]\n", Some("a"), "retry.retry_on", Some(2)),
    ("zero timeout", "[policies.a]\ntimeout = \"0s\"\n", Some("a"), "timeout", Some(2)),
    ("adaptive min above max", "[policies.a.adaptive]\nmin_limit = 50\nmax_limit = 10\n", Some("a"), "adaptive.max_limit", Some(3)),
    ("adaptive unknown algorithm", "[policies.a.adaptive]\nalgorithm = \"vegas\"\n", Some("a"), "adaptive.algorithm", Some(2)),
    ("aimd section for gradient", "[policies.a.adaptive]\nalgorithm = \"gradient2\"\naimd = { increase = 2 }\n", Some("a"), "adaptive.aimd", Some(3)),
    ("throttle k below one", "[policies.a.throttle]\nk = 0.5\n", Some("a"), "throttle.k", Some(2)),
    ("chaos probability above one", "[policies.a.chaos]\nfailure_probability = 1.5\n", Some("a"), "chaos.failure_probability", Some(2)),
    ("chaos enabled not bool", "[policies.a.chaos]\nenabled = \"yes\"\n", Some("a"), "chaos.enabled", Some(2)),
    ("chaos latency range reversed", "[policies.a.chaos]\nlatency_probability = 0.5\nlatency = { min = \"50ms\", max = \"10ms\" }\n", Some("a"), "chaos.latency.max", Some(3)),
];

#[test]
fn every_bad_file_names_policy_field_and_line() {
    assert!(BAD_FILES.len() >= 30);
    let mut wrong = Vec::new();
    for (case, text, policy, field, line) in BAD_FILES {
        match PolicyFile::parse(text) {
            Ok(_) => wrong.push(format!("{case}: accepted")),
            Err(error) => {
                let first = error.first();
                if first.policy.as_deref() != *policy
                    || first.field != *field
                    || first.line != *line
                {
                    wrong.push(format!(
                        "{case}: got policy {:?} field {:?} line {:?} ({error}); expected {policy:?} {field:?} {line:?}",
                        first.policy, first.field, first.line
                    ));
                }
                // Nothing half-loaded: an engine refuses the same text as a whole.
                assert!(Engine::from_toml_str(text).is_err(), "{case}");
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn a_breaker_can_start_disabled_from_the_file() {
    let engine = Engine::from_toml_str(
        "[policies.shadow.circuit_breaker]\ninitial_state = \"disabled\"\nminimum_calls = 1\n",
    )
    .unwrap();
    let shadow = engine.policy("shadow").unwrap();
    for _ in 0..5 {
        shadow.acquire().unwrap().failure();
    }
    assert!(shadow.acquire().is_ok(), "observe only: never trips");
    assert_eq!(
        shadow.snapshot().breaker.map(|b| b.state),
        Some(breakwater::breaker::BreakerState::Disabled)
    );
}

#[test]
fn invalid_utf8_is_reported_with_its_line() {
    let error = PolicyFile::from_bytes(b"[policies.a]\ntimeout = \"3\xffs\"\n").unwrap_err();
    assert_eq!(error.first().line, Some(2));
    assert!(error.first().reason.contains("UTF-8"), "{error}");
}

#[test]
fn every_error_of_a_file_is_reported_in_file_order() {
    let text = "[policies.a.bulkhead]\nmax_concurrent = 0\n[policies.b.circuit_breaker]\nfailure_rate_threshold = 101\nbogus = 1\n";
    let error = PolicyFile::parse(text).unwrap_err();
    let found: Vec<(Option<&str>, &str, Option<usize>)> = error
        .errors
        .iter()
        .map(|e| (e.policy.as_deref(), e.field.as_str(), e.line))
        .collect();
    assert_eq!(
        found,
        [
            (Some("a"), "bulkhead.max_concurrent", Some(2)),
            (Some("b"), "circuit_breaker.bogus", Some(5)),
        ],
        "{error}"
    );
}

#[test]
fn typos_get_a_suggestion() {
    let error = PolicyFile::parse("[policies.a.bulkhead]\nmax_concurent = 3\n").unwrap_err();
    assert!(
        error.to_string().contains("did you mean `max_concurrent`?"),
        "{error}"
    );
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let error = PolicyFile::load("/nonexistent/policies.toml").unwrap_err();
    assert!(error.first().reason.starts_with("cannot read"), "{error}");
}

/// The example shows every key the schema has (the schema's reference,
/// `docs/policy-file.md`, documents each one; the example shows it in use).
#[test]
fn example_policy_file_uses_every_key_of_the_schema() {
    let reference = breakwater::config::reference();
    let keys: Vec<&str> = reference
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert!(keys.len() > 40, "the reference lists every key: {keys:?}");
    let missing: Vec<&&str> = keys
        .iter()
        .filter(|key| !EXAMPLE.contains(&format!("{key} =")))
        .collect();
    assert!(
        missing.is_empty(),
        "examples/policies.toml does not show {missing:?}"
    );
}

/// Without the cargo feature `fleet` a fleet-wide stage is refused when the policy is
/// built, naming the field (the file itself reads the same in every build).
#[cfg(not(feature = "fleet"))]
#[test]
fn a_fleet_scope_without_the_feature_is_a_config_error() {
    let text = r#"
[policies.p.rate_limiter]
rate = 5
scope = "fleet"

[policies.p.fleet]
address = "127.0.0.1:6379"
"#;
    PolicyFile::parse(text).expect("the file is valid");
    let error = Engine::from_toml_str(text).unwrap_err().to_string();
    assert!(error.contains("rate_limiter.scope"), "{error}");
    assert!(error.contains("feature `fleet`"), "{error}");
}

#[test]
fn a_fleet_scope_needs_a_fleet_section() {
    let text = "[policies.p.rate_limiter]\nrate = 5\nscope = \"fleet\"\n";
    let error = Engine::from_toml_str(text).unwrap_err().to_string();
    assert!(error.contains("fleet"), "{error}");
}

/// The README's fleet example is a valid policy file.
#[test]
fn the_readme_fleet_example_reads() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("## Fleet-wide quotas (Redis)")
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a fleet example");
    let file = PolicyFile::parse(block).expect("the README's fleet example is valid");
    let payments = file.policy("payments").unwrap();
    assert_eq!(
        payments.rate_limiter.unwrap().scope,
        breakwater::fleet::Scope::Fleet
    );
    assert_eq!(
        payments.fleet.as_ref().unwrap().password_env.as_deref(),
        Some("PAYMENTS_REDIS_PASSWORD")
    );
}
