//! The policy a run protects the payment calls with (`--policy FILE NAME` or the
//! embedded default), and how the real-thread demo scales it to a faster or slower
//! incident.

use std::time::Duration;

use breakwater::policy::PolicyConfig;

use crate::exit;
use crate::scenario::{DEFAULT_POLICY, DEFAULT_POLICY_NAME};

/// A policy and where it came from.
pub(crate) struct Source {
    /// For the table: "policy `payment` of the embedded default".
    pub(crate) label: String,
    /// The configuration as written.
    pub(crate) config: PolicyConfig,
    /// Whether it is the embedded default (whose errors are ours, not the user's).
    pub(crate) embedded: bool,
}

/// Loads `--policy FILE NAME`, or the embedded default without it.
pub(crate) fn load(policy: Option<&[String]>) -> Result<Source, i32> {
    let (origin, file, name, embedded) = match policy {
        Some([path, name]) => (
            path.clone(),
            crate::check::load(std::path::Path::new(path))?,
            name.clone(),
            false,
        ),
        _ => match breakwater::config::PolicyFile::parse(DEFAULT_POLICY) {
            Ok(file) => (
                "the embedded default".to_string(),
                file,
                DEFAULT_POLICY_NAME.to_string(),
                true,
            ),
            Err(e) => {
                eprintln!(
                    "breakwater: internal error: the embedded default policy is invalid: {e:?}"
                );
                return Err(exit::ERRORS);
            }
        },
    };
    match file.policy(&name) {
        Some(config) => Ok(Source {
            label: format!("policy `{name}` of {origin}"),
            config: config.clone(),
            embedded,
        }),
        None => {
            let names: Vec<&str> = file.policies.iter().map(|p| p.name.as_str()).collect();
            eprintln!(
                "breakwater: {origin}: no policy `{name}` (the file defines: {})",
                names.join(", ")
            );
            Err(exit::ERRORS)
        }
    }
}

/// The retry budget's window must stay within these (see `BudgetConfig::validate`).
const BUDGET_WINDOW: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// Scales every time setting of a policy by `scale`, so the policy reacts to the faster
/// (or slower) incident as it would to the real one, keeping each setting within its
/// valid range; and caps every wait a worker could sleep (retry backoff, bulkhead wait)
/// at `run` (the wall length of one run), so no sleep outlasts the run. Returns a note
/// for each setting it could not scale exactly.
pub(crate) fn scale(config: &mut PolicyConfig, scale: f64, run: Duration) -> Vec<String> {
    let mut notes = Vec::new();
    let s = |d: &mut Duration| {
        if !d.is_zero() {
            *d = Duration::from_nanos(((d.as_nanos() as f64 * scale) as u64).max(1_000));
        }
    };
    let mut cap = |d: &mut Duration, field: &str| {
        if *d > run {
            notes.push(format!(
                "`{field}` {} capped at the run's {}",
                humantime::format_duration(*d),
                humantime::format_duration(run)
            ));
            *d = run;
        }
    };
    if let Some(t) = &mut config.timeout {
        s(t);
    }
    if let Some(b) = &mut config.circuit_breaker {
        s(&mut b.slow_call_duration);
        s(&mut b.open_duration);
        s(&mut b.max_open_duration);
        s(&mut b.half_open_max_wait);
        if let breakwater::breaker::WindowConfig::Time { duration, buckets } = &mut b.window {
            // Whole microseconds per bucket.
            let unit = u64::from(*buckets) * 1_000;
            let ns = (duration.as_nanos() as f64 * scale / unit as f64)
                .round()
                .max(1.0) as u64
                * unit;
            *duration = Duration::from_nanos(ns);
        }
    }
    if let Some(l) = &mut config.rate_limiter {
        s(&mut l.period);
        // At most one permit per nanosecond.
        l.period = l.period.max(Duration::from_nanos(l.rate));
    }
    if let Some(b) = &mut config.bulkhead {
        s(&mut b.max_wait);
        cap(&mut b.max_wait, "bulkhead.max_wait");
    }
    if let Some(t) = &mut config.throttle {
        s(&mut t.window);
        t.window = t.window.max(Duration::from_nanos(u64::from(t.buckets)));
    }
    if let Some(a) = &mut config.adaptive {
        if let breakwater::adaptive::AdaptiveAlgorithm::Aimd(aimd) = &mut a.algorithm {
            s(&mut aimd.timeout);
        }
    }
    if let Some(c) = &mut config.chaos {
        match &mut c.latency {
            breakwater::chaos::LatencyFault::None => {}
            breakwater::chaos::LatencyFault::Fixed(d) => {
                s(d);
                cap(d, "chaos.latency");
            }
            breakwater::chaos::LatencyFault::Uniform { min, max } => {
                s(min);
                s(max);
                cap(min, "chaos.latency.min");
                cap(max, "chaos.latency.max");
            }
        }
    }
    if let Some(r) = &mut config.retry {
        s(&mut r.retry.backoff.initial);
        s(&mut r.retry.backoff.max);
        cap(&mut r.retry.backoff.initial, "retry.backoff.initial");
        cap(&mut r.retry.backoff.max, "retry.backoff.max");
        // All of a call's retries together end within the run.
        match &mut r.retry.max_elapsed {
            Some(m) => {
                s(m);
                cap(m, "retry.max_elapsed");
            }
            None => r.retry.max_elapsed = Some(run),
        }
        if let Some(b) = &mut r.retry.budget {
            let scaled = b.window.mul_f64(scale);
            let kept = scaled.clamp(BUDGET_WINDOW.0, BUDGET_WINDOW.1);
            if kept != scaled {
                notes.push(format!(
                    "`retry.budget.window` kept at {} (×{scale:.2} would be {}, outside 1s..=60s)",
                    humantime::format_duration(kept),
                    humantime::format_duration(scaled)
                ));
            }
            b.window = kept;
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakwater::policy::Policy;

    /// The demo's scale for a `--duration` of `total` (two runs of 10 incident seconds).
    fn scale_of(total: Duration) -> f64 {
        total.as_secs_f64() / 2.0 / 10.0
    }

    #[test]
    fn the_embedded_policy_scales_to_every_accepted_duration() {
        for text in [
            "1s", "1500ms", "1999ms", "2s", "20s", "1m", "2m1s", "3m", "9m59s", "10m",
        ] {
            let total = breakwater::config::parse_duration(text).expect("a duration");
            let mut source = load(None).expect("the embedded default loads");
            let run = total / 2;
            scale(&mut source.config, scale_of(total), run);
            if let Err(e) = Policy::new(source.config.clone()) {
                panic!("--duration {text}: `{}`: {}", e.field, e.reason);
            }
            let retry = &source.config.retry.as_ref().expect("a retry stage").retry;
            assert!(
                retry.backoff.max <= run && retry.max_elapsed <= Some(run),
                "{text}"
            );
        }
    }

    #[test]
    fn waits_longer_than_the_run_are_capped_and_said() {
        let file = breakwater::config::PolicyFile::parse(
            "[policies.p.retry]\nbackoff = { initial = \"100s\", max = \"200s\" }\n",
        )
        .expect("valid");
        let mut config = file.policy("p").expect("p").clone();
        let run = Duration::from_secs(1);
        let notes = scale(&mut config, 0.1, run);
        let retry = &config.retry.as_ref().expect("retry").retry;
        assert_eq!(retry.backoff.initial, run);
        assert_eq!(retry.backoff.max, run);
        assert_eq!(retry.max_elapsed, Some(run));
        assert!(
            notes.iter().any(|n| n.contains("retry.backoff.initial")),
            "{notes:?}"
        );
    }
}
