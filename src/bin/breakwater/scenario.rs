//! The checkout incident: the traffic, the payment service's behaviour over time, and
//! the time scale that maps incident seconds onto wall time.
//!
//! All times here are *incident* seconds (`f64`): a run lasts [`RUN_SECONDS`], the
//! payment service degrades at [`DEGRADE_AT`] and heals at [`HEAL_AT`]. `--duration`
//! only changes [`Scenario::scale`], the wall seconds per incident second, so a short
//! demo replays the same incident faster.

use std::time::Duration;

use breakwater::policy::PolicyConfig;
use breakwater::rng::{mix64, unit_f64, Rng};

/// Length of one run.
pub(crate) const RUN_SECONDS: f64 = 10.0;
/// When the payment service degrades.
pub(crate) const DEGRADE_AT: f64 = 3.0;
/// When it heals.
pub(crate) const HEAL_AT: f64 = 6.5;
/// Requests per second arriving at the gateway.
const RATE: f64 = 200.0;
/// Share of the requests that are checkouts (they call the payment service).
const CHECKOUT_SHARE: f64 = 0.3;
/// A client gives up after this long; a later response is a failure for it.
pub(crate) const CLIENT_TIMEOUT: f64 = 1.0;
/// The policy file used when `--policy` is not given.
pub(crate) const DEFAULT_POLICY: &str = include_str!("default_policy.toml");
/// The policy of [`DEFAULT_POLICY`] the demo uses.
pub(crate) const DEFAULT_POLICY_NAME: &str = "payment";

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Needs the payment service.
    Checkout,
    /// Served by the gateway alone (catalogue, cart, search, ...).
    Healthy,
}

/// One request of the traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// Arrival time.
    pub(crate) at: f64,
    /// What it asks for.
    pub(crate) kind: Kind,
    /// The seed of every random draw made while serving it.
    pub(crate) seed: u64,
}

/// How the payment service answers one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PaymentAnswer {
    /// How long it takes to answer.
    pub(crate) latency: f64,
    /// Whether the answer is an error.
    pub(crate) error: bool,
}

/// The incident: the traffic and the time scale.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Wall seconds per incident second.
    pub(crate) scale: f64,
    /// Worker threads of the gateway.
    pub(crate) workers: u32,
    /// Requests waiting for a worker beyond this are turned away (503).
    pub(crate) queue_capacity: usize,
    /// The traffic, in arrival order.
    pub(crate) requests: Vec<Request>,
}

impl Scenario {
    /// The incident for a demo of `total` wall time (two runs), with `workers` workers.
    pub(crate) fn new(total: Duration, workers: u32, seed: u64) -> Scenario {
        let scale = total.as_secs_f64() / 2.0 / RUN_SECONDS;
        let mut rng = Rng::new(seed);
        let mut requests = Vec::new();
        let mut at = 0.0;
        loop {
            // Poisson arrivals: exponential gaps.
            at += -(1.0 - rng.next_f64()).ln() / RATE;
            if at >= RUN_SECONDS {
                break;
            }
            let kind = if rng.next_f64() < CHECKOUT_SHARE {
                Kind::Checkout
            } else {
                Kind::Healthy
            };
            requests.push(Request {
                at,
                kind,
                seed: rng.next_u64(),
            });
        }
        Scenario {
            scale,
            workers,
            queue_capacity: workers as usize * 4,
            requests,
        }
    }

    /// The wall duration of `secs` incident seconds.
    pub(crate) fn wall(&self, secs: f64) -> Duration {
        Duration::from_secs_f64((secs * self.scale).max(0.0))
    }

    /// The incident seconds of a wall duration.
    pub(crate) fn incident(&self, wall: Duration) -> f64 {
        wall.as_secs_f64() / self.scale
    }

    /// The payment service's answer to attempt `attempt` of `request`, called at `now`.
    pub(crate) fn payment(&self, request: &Request, attempt: u32, now: f64) -> PaymentAnswer {
        let draw = |salt: u64| unit_f64(mix64(request.seed ^ mix64(salt ^ u64::from(attempt))));
        let (latency, error_rate) = if (DEGRADE_AT..HEAL_AT).contains(&now) {
            (2.0 * (0.8 + 0.4 * draw(1)), 0.5)
        } else {
            (0.020 * (0.5 + draw(1)), 0.01)
        };
        PaymentAnswer {
            latency,
            error: draw(2) < error_rate,
        }
    }

    /// How long the gateway works on a healthy-endpoint request.
    pub(crate) fn healthy_work(&self, request: &Request) -> f64 {
        0.005 * (0.5 + unit_f64(mix64(request.seed ^ 3)))
    }

    /// The phase at `now`, for the progress bar.
    pub(crate) fn phase(now: f64) -> &'static str {
        if now < DEGRADE_AT {
            "healthy"
        } else if now < HEAL_AT {
            "DEGRADED"
        } else {
            "healed"
        }
    }
}

/// Scales every time setting of a policy by `scale`, so the policy reacts to the
/// faster (or slower) incident as it would to the real one. Time windows stay a whole
/// number of microseconds per bucket.
pub(crate) fn scale_policy(config: &mut PolicyConfig, scale: f64) {
    let s = |d: &mut Duration| {
        if !d.is_zero() {
            *d = Duration::from_nanos(((d.as_nanos() as f64 * scale) as u64).max(1_000));
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
    }
    if let Some(b) = &mut config.bulkhead {
        s(&mut b.max_wait);
    }
    if let Some(t) = &mut config.throttle {
        s(&mut t.window);
    }
    if let Some(a) = &mut config.adaptive {
        if let breakwater::adaptive::AdaptiveAlgorithm::Aimd(aimd) = &mut a.algorithm {
            s(&mut aimd.timeout);
        }
    }
    if let Some(c) = &mut config.chaos {
        match &mut c.latency {
            breakwater::chaos::LatencyFault::None => {}
            breakwater::chaos::LatencyFault::Fixed(d) => s(d),
            breakwater::chaos::LatencyFault::Uniform { min, max } => {
                s(min);
                s(max);
            }
        }
    }
    if let Some(r) = &mut config.retry {
        s(&mut r.retry.backoff.initial);
        s(&mut r.retry.backoff.max);
        if let Some(m) = &mut r.retry.max_elapsed {
            s(m);
        }
        if let Some(b) = &mut r.retry.budget {
            s(&mut b.window);
        }
    }
}
