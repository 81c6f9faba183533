//! Policy-file sections for backpressure and fault injection: `adaptive`, `throttle`
//! and `chaos`.

use std::time::Duration;

use toml_edit::TableLike;

use super::reader::{join, Reader};
use crate::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AimdConfig, Gradient2Config, ThrottleConfig,
};
use crate::chaos::{ChaosConfig, LatencyFault};
use crate::policy::PolicyConfig;
use crate::ConfigError;

/// Reads the backpressure and chaos sections of one policy into `policy`.
pub(crate) fn read_backpressure(
    r: &mut Reader<'_>,
    table: &dyn TableLike,
    policy: &mut PolicyConfig,
) {
    if let Some(t) = r.section(table, "", "adaptive") {
        policy.adaptive = read_adaptive(r, t, "adaptive");
    }
    if let Some(t) = r.section(table, "", "throttle") {
        policy.throttle = read_throttle(r, t, "throttle");
    }
    if let Some(t) = r.section(table, "", "chaos") {
        policy.chaos = read_chaos(r, t, "chaos");
    }
}

fn finish<T>(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    p: &str,
    config: T,
    validate: impl FnOnce(&T) -> Result<(), ConfigError>,
    before: usize,
) -> Option<T> {
    if r.errors.len() > before {
        return None;
    }
    match validate(&config) {
        Ok(()) => Some(config),
        Err(e) => {
            r.config_error(t, p, e, None);
            None
        }
    }
}

fn read_adaptive(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<AdaptiveConfig> {
    let before = r.errors.len();
    r.only_keys(
        t,
        p,
        &[
            "algorithm",
            "initial_limit",
            "min_limit",
            "max_limit",
            "sheddable_at",
            "default_at",
            "aimd",
            "gradient",
        ],
    );
    let mut c = AdaptiveConfig::default();
    let algorithm = r
        .choice(t, p, "algorithm", &["aimd", "gradient2"])
        .unwrap_or(c.algorithm.as_str());
    match algorithm {
        "aimd" => {
            let mut aimd = AimdConfig::default();
            if let Some(s) = r.section(t, p, "aimd") {
                let sp = join(p, "aimd");
                r.only_keys(s, &sp, &["increase", "backoff_ratio", "timeout"]);
                if let Some(v) = r.u32(s, &sp, "increase") {
                    aimd.increase = v;
                }
                if let Some(v) = r.f64(s, &sp, "backoff_ratio") {
                    aimd.backoff_ratio = v;
                }
                if let Some(v) = r.duration(s, &sp, "timeout") {
                    aimd.timeout = v;
                }
            }
            if t.contains_key("gradient") {
                let line = r.key_line(t, "gradient");
                r.error(
                    join(p, "gradient"),
                    line,
                    "only the gradient2 algorithm has this section",
                );
            }
            c.algorithm = AdaptiveAlgorithm::Aimd(aimd);
        }
        _ => {
            let mut gradient = Gradient2Config::default();
            if let Some(s) = r.section(t, p, "gradient") {
                let sp = join(p, "gradient");
                r.only_keys(
                    s,
                    &sp,
                    &["smoothing", "tolerance", "long_window", "queue_size"],
                );
                if let Some(v) = r.f64(s, &sp, "smoothing") {
                    gradient.smoothing = v;
                }
                if let Some(v) = r.f64(s, &sp, "tolerance") {
                    gradient.tolerance = v;
                }
                if let Some(v) = r.u32(s, &sp, "long_window") {
                    gradient.long_window = v;
                }
                if let Some(v) = r.u32(s, &sp, "queue_size") {
                    gradient.queue_size = v;
                }
            }
            if t.contains_key("aimd") {
                let line = r.key_line(t, "aimd");
                r.error(
                    join(p, "aimd"),
                    line,
                    "only the aimd algorithm has this section",
                );
            }
            c.algorithm = AdaptiveAlgorithm::Gradient2(gradient);
        }
    }
    if let Some(v) = r.u32(t, p, "initial_limit") {
        c.initial_limit = v;
    }
    if let Some(v) = r.u32(t, p, "min_limit") {
        c.min_limit = v;
    }
    if let Some(v) = r.u32(t, p, "max_limit") {
        c.max_limit = v;
    }
    if let Some(v) = r.f64(t, p, "sheddable_at") {
        c.sheddable_at = v;
    }
    if let Some(v) = r.f64(t, p, "default_at") {
        c.default_at = v;
    }
    finish(r, t, p, c, AdaptiveConfig::validate, before)
}

fn read_throttle(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<ThrottleConfig> {
    let before = r.errors.len();
    r.only_keys(
        t,
        p,
        &[
            "k",
            "window",
            "buckets",
            "max_rejection_probability",
            "seed",
        ],
    );
    let mut c = ThrottleConfig::default();
    if let Some(v) = r.f64(t, p, "k") {
        c.k = v;
    }
    if let Some(v) = r.duration(t, p, "window") {
        c.window = v;
    }
    if let Some(v) = r.u32(t, p, "buckets") {
        c.buckets = v;
    }
    if let Some(v) = r.f64(t, p, "max_rejection_probability") {
        c.max_rejection_probability = v;
    }
    if let Some(v) = r.u64(t, p, "seed") {
        c.seed = v;
    }
    finish(r, t, p, c, ThrottleConfig::validate, before)
}

fn read_chaos(r: &mut Reader<'_>, t: &dyn TableLike, p: &str) -> Option<ChaosConfig> {
    let before = r.errors.len();
    r.only_keys(
        t,
        p,
        &[
            "enabled",
            "failure_probability",
            "rejection_probability",
            "latency_probability",
            "latency",
            "seed",
        ],
    );
    let mut c = ChaosConfig::default();
    if let Some(v) = r.bool(t, p, "enabled") {
        c.enabled = v;
    }
    if let Some(v) = r.f64(t, p, "failure_probability") {
        c.failure_probability = v;
    }
    if let Some(v) = r.f64(t, p, "rejection_probability") {
        c.rejection_probability = v;
    }
    if let Some(v) = r.f64(t, p, "latency_probability") {
        c.latency_probability = v;
    }
    if let Some(item) = t.get("latency") {
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
    if let Some(v) = r.u64(t, p, "seed") {
        c.seed = v;
    }
    finish(r, t, p, c, ChaosConfig::validate, before)
}
