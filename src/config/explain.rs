//! The effective configuration of policies as TOML, with every default filled in, so
//! a user sees exactly what a policy file means (`breakwater explain`).
//!
//! The output is itself a valid policy file that loads to the same configuration.

use std::fmt::Write;

use super::duration::format_duration;
use crate::adaptive::AdaptiveAlgorithm;
use crate::breaker::WindowConfig;
use crate::chaos::LatencyFault;
use crate::policy::PolicyConfig;

fn key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

fn dur(d: std::time::Duration) -> String {
    format!("\"{}\"", format_duration(d))
}

fn float(v: f64) -> String {
    format!("{v:?}")
}

/// Renders `policies` as a policy file with every field written out.
pub fn explain(policies: &[PolicyConfig]) -> String {
    let mut out = String::new();
    for (i, p) in policies.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_policy(&mut out, p);
    }
    out
}

fn render_policy(out: &mut String, p: &PolicyConfig) {
    let name = key(&p.name);
    let _ = writeln!(out, "[policies.{name}]");
    match p.timeout {
        Some(t) => {
            let _ = writeln!(out, "timeout = {}", dur(t));
        }
        None => out.push_str("# timeout: none\n"),
    }
    let stages = [
        ("circuit_breaker", p.circuit_breaker.is_some()),
        ("rate_limiter", p.rate_limiter.is_some()),
        ("throttle", p.throttle.is_some()),
        ("bulkhead", p.bulkhead.is_some()),
        ("adaptive", p.adaptive.is_some()),
        ("chaos", p.chaos.is_some()),
        ("retry", p.retry.is_some()),
    ];
    let absent: Vec<&str> = stages
        .iter()
        .filter(|(_, on)| !on)
        .map(|(n, _)| *n)
        .collect();
    if !absent.is_empty() {
        let _ = writeln!(out, "# stages not configured: {}", absent.join(", "));
    }
    if let Some(c) = &p.circuit_breaker {
        let _ = writeln!(out, "\n[policies.{name}.circuit_breaker]");
        let _ = writeln!(
            out,
            "failure_rate_threshold = {}",
            float(c.failure_rate_threshold)
        );
        match c.slow_call_rate_threshold {
            Some(v) => {
                let _ = writeln!(out, "slow_call_rate_threshold = {}", float(v));
            }
            None => out.push_str("# slow_call_rate_threshold: off\n"),
        }
        let _ = writeln!(out, "slow_call_duration = {}", dur(c.slow_call_duration));
        match c.consecutive_failures {
            Some(v) => {
                let _ = writeln!(out, "consecutive_failures = {v}");
            }
            None => out.push_str("# consecutive_failures: off\n"),
        }
        match c.window {
            WindowConfig::Count { size } => {
                let _ = writeln!(out, "window = {{ type = \"count\", size = {size} }}");
            }
            WindowConfig::Time { duration, buckets } => {
                let _ = writeln!(
                    out,
                    "window = {{ type = \"time\", duration = {}, buckets = {buckets} }}",
                    dur(duration)
                );
            }
        }
        let _ = writeln!(out, "minimum_calls = {}", c.minimum_calls);
        let _ = writeln!(out, "open_duration = {}", dur(c.open_duration));
        let _ = writeln!(
            out,
            "open_backoff_multiplier = {}",
            float(c.open_backoff_multiplier)
        );
        let _ = writeln!(out, "open_jitter = {}", float(c.open_jitter));
        let _ = writeln!(out, "max_open_duration = {}", dur(c.max_open_duration));
        let _ = writeln!(out, "half_open_permits = {}", c.half_open_permits);
        let _ = writeln!(out, "half_open_max_wait = {}", dur(c.half_open_max_wait));
        let _ = writeln!(out, "seed = {}", c.jitter_seed);
    }
    if let Some(c) = &p.rate_limiter {
        let _ = writeln!(out, "\n[policies.{name}.rate_limiter]");
        let _ = writeln!(out, "rate = {}", c.rate);
        let _ = writeln!(out, "period = {}", dur(c.period));
        let _ = writeln!(out, "burst = {}", c.burst);
    }
    if let Some(c) = &p.throttle {
        let _ = writeln!(out, "\n[policies.{name}.throttle]");
        let _ = writeln!(out, "k = {}", float(c.k));
        let _ = writeln!(out, "window = {}", dur(c.window));
        let _ = writeln!(out, "buckets = {}", c.buckets);
        let _ = writeln!(
            out,
            "max_rejection_probability = {}",
            float(c.max_rejection_probability)
        );
        let _ = writeln!(out, "seed = {}", c.seed);
    }
    if let Some(c) = &p.bulkhead {
        let _ = writeln!(out, "\n[policies.{name}.bulkhead]");
        let _ = writeln!(out, "max_concurrent = {}", c.max_concurrent);
        let _ = writeln!(out, "max_wait = {}", dur(c.max_wait));
    }
    if let Some(c) = &p.adaptive {
        let _ = writeln!(out, "\n[policies.{name}.adaptive]");
        let _ = writeln!(out, "algorithm = \"{}\"", c.algorithm.as_str());
        let _ = writeln!(out, "initial_limit = {}", c.initial_limit);
        let _ = writeln!(out, "min_limit = {}", c.min_limit);
        let _ = writeln!(out, "max_limit = {}", c.max_limit);
        let _ = writeln!(out, "sheddable_at = {}", float(c.sheddable_at));
        let _ = writeln!(out, "default_at = {}", float(c.default_at));
        match &c.algorithm {
            AdaptiveAlgorithm::Aimd(a) => {
                let _ = writeln!(
                    out,
                    "aimd = {{ increase = {}, backoff_ratio = {}, timeout = {} }}",
                    a.increase,
                    float(a.backoff_ratio),
                    dur(a.timeout)
                );
            }
            AdaptiveAlgorithm::Gradient2(g) => {
                let _ = writeln!(
                    out,
                    "gradient = {{ smoothing = {}, tolerance = {}, long_window = {}, queue_size = {} }}",
                    float(g.smoothing),
                    float(g.tolerance),
                    g.long_window,
                    g.queue_size
                );
            }
        }
    }
    if let Some(c) = &p.chaos {
        let _ = writeln!(out, "\n[policies.{name}.chaos]");
        let _ = writeln!(out, "enabled = {}", c.enabled);
        let _ = writeln!(
            out,
            "failure_probability = {}",
            float(c.failure_probability)
        );
        let _ = writeln!(
            out,
            "rejection_probability = {}",
            float(c.rejection_probability)
        );
        let _ = writeln!(
            out,
            "latency_probability = {}",
            float(c.latency_probability)
        );
        match c.latency {
            LatencyFault::None => out.push_str("# latency: none\n"),
            LatencyFault::Fixed(d) => {
                let _ = writeln!(out, "latency = {}", dur(d));
            }
            LatencyFault::Uniform { min, max } => {
                let _ = writeln!(
                    out,
                    "latency = {{ min = {}, max = {} }}",
                    dur(min),
                    dur(max)
                );
            }
        }
        let _ = writeln!(out, "seed = {}", c.seed);
    }
    if let Some(r) = &p.retry {
        let c = &r.retry;
        let _ = writeln!(out, "\n[policies.{name}.retry]");
        let _ = writeln!(out, "max_attempts = {}", c.max_attempts);
        match c.max_elapsed {
            Some(d) => {
                let _ = writeln!(out, "max_elapsed = {}", dur(d));
            }
            None => out.push_str("# max_elapsed: none\n"),
        }
        let names: Vec<String> = r
            .retry_on
            .names()
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect();
        let _ = writeln!(out, "retry_on = [{}]", names.join(", "));
        let b = &c.backoff;
        let _ = writeln!(
            out,
            "backoff = {{ initial = {}, multiplier = {}, max = {}, jitter = \"{}\" }}",
            dur(b.initial),
            float(b.multiplier),
            dur(b.max),
            b.jitter.as_str()
        );
        match &c.budget {
            Some(g) => {
                let _ = writeln!(
                    out,
                    "budget = {{ ratio = {}, min_per_second = {}, window = {} }}",
                    float(g.ratio),
                    g.min_per_second,
                    dur(g.window)
                );
            }
            None => out.push_str("# budget: none (retries are limited by max_attempts only)\n"),
        }
    }
}
