//! An incident: the traffic a gateway receives, how its payment dependency behaves over
//! time, and (for the real-thread demo) the time scale that maps incident seconds onto
//! wall time.
//!
//! All times here are *incident* seconds (`f64`). A [`Spec`] describes an incident (the
//! built-in ones are in [`builtin`], others come from a scenario file, see
//! `scenario_file`); [`Scenario::new`] draws its traffic from a seed. The same seed gives
//! the same requests and the same answers from the payment service, in both runs.

use std::time::Duration;

use breakwater::rng::{mix64, unit_f64, Rng};

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

/// How the payment service behaves: latency drawn uniformly from `latency`, errors at
/// `errors` (0..=1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Behaviour {
    /// Lowest and highest latency, seconds.
    pub(crate) latency: (f64, f64),
    /// Share of calls answered with an error.
    pub(crate) errors: f64,
}

/// A stretch of the incident where the payment service or the traffic differs from normal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Phase {
    /// Start (inclusive), seconds.
    pub(crate) from: f64,
    /// End (exclusive), seconds.
    pub(crate) to: f64,
    /// The payment service's behaviour (at `from`, when `ramp`).
    pub(crate) payment: Behaviour,
    /// Traffic as a multiple of the normal rate.
    pub(crate) traffic: f64,
    /// Whether the behaviour moves linearly from `payment` back to normal by `to`.
    pub(crate) ramp: bool,
}

/// An incident, before its traffic is drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    /// Short name (`checkout`, `hard-down`, ...).
    pub(crate) name: String,
    /// One sentence for the title and the picture.
    pub(crate) summary: String,
    /// Length of one run, seconds.
    pub(crate) seconds: f64,
    /// Normal arrivals per second.
    pub(crate) rate: f64,
    /// Share of requests that are checkouts.
    pub(crate) checkout_share: f64,
    /// A client gives up after this long; a later answer is a failure for it.
    pub(crate) client_timeout: f64,
    /// Worker threads of the gateway.
    pub(crate) workers: u32,
    /// Requests waiting for a worker beyond this are turned away (503).
    pub(crate) queue: usize,
    /// Lowest and highest time a worker spends on a healthy-endpoint request.
    pub(crate) healthy_work: (f64, f64),
    /// The payment service when nothing is wrong.
    pub(crate) payment: Behaviour,
    /// What goes wrong, and when.
    pub(crate) phases: Vec<Phase>,
}

/// The payment service of every built-in incident when healthy: 10–30 ms, 1 % errors.
const HEALTHY_PAYMENT: Behaviour = Behaviour {
    latency: (0.010, 0.030),
    errors: 0.01,
};

/// The built-in incidents, by name: `(name, what happens)`.
pub(crate) const BUILTIN: [(&str, &str); 5] = [
    (
        "checkout",
        "payment degrades 3–6.5 s: latency 20 ms → 1.6–2.4 s, 50 % errors",
    ),
    (
        "hard-down",
        "payment is down 3–6.5 s: every call fails after a 1–1.5 s connect timeout",
    ),
    (
        "error-burst",
        "payment answers 80 % errors 3–6.5 s, at its usual speed",
    ),
    (
        "spike",
        "traffic jumps to 3× the gateway's capacity 3–6.5 s; payment stays healthy",
    ),
    (
        "slow-recovery",
        "payment degrades 2–4 s (2 s, 50 % errors), then recovers slowly until 9 s",
    ),
];

/// A built-in incident, or `None` for an unknown name.
pub(crate) fn builtin(name: &str, workers: u32) -> Option<Spec> {
    let summary = BUILTIN.iter().find(|b| b.0 == name)?.1.to_string();
    let mut spec = Spec {
        name: name.to_string(),
        summary,
        seconds: 10.0,
        rate: 200.0,
        checkout_share: 0.3,
        client_timeout: 1.0,
        workers,
        queue: workers as usize * 4,
        healthy_work: (0.0025, 0.0075),
        payment: HEALTHY_PAYMENT,
        phases: Vec::new(),
    };
    let phase = |from, to, latency, errors| Phase {
        from,
        to,
        payment: Behaviour { latency, errors },
        traffic: 1.0,
        ramp: false,
    };
    match name {
        "checkout" => spec.phases.push(phase(3.0, 6.5, (1.6, 2.4), 0.5)),
        "hard-down" => spec.phases.push(phase(3.0, 6.5, (1.0, 1.5), 1.0)),
        "error-burst" => spec.phases.push(phase(3.0, 6.5, (0.010, 0.030), 0.8)),
        "spike" => {
            // Mean work per request, so the spike is 3× what the workers can serve.
            let mean = spec.checkout_share * (spec.payment.latency.0 + spec.payment.latency.1)
                / 2.0
                + (1.0 - spec.checkout_share) * (spec.healthy_work.0 + spec.healthy_work.1) / 2.0;
            let capacity = f64::from(workers) / mean;
            let mut p = phase(3.0, 6.5, spec.payment.latency, spec.payment.errors);
            p.traffic = (3.0 * capacity / spec.rate).round();
            spec.phases.push(p);
        }
        "slow-recovery" => {
            spec.phases.push(phase(2.0, 4.0, (1.6, 2.4), 0.5));
            let mut p = phase(4.0, 9.0, (1.6, 2.4), 0.5);
            p.ramp = true;
            spec.phases.push(p);
        }
        _ => return None,
    }
    Some(spec)
}

impl Spec {
    /// The stretch from the start of the first phase to the end of the last, or `None`
    /// when nothing goes wrong.
    pub(crate) fn incident(&self) -> Option<(f64, f64)> {
        let from = self.phases.iter().map(|p| p.from).reduce(f64::min)?;
        let to = self.phases.iter().map(|p| p.to).reduce(f64::max)?;
        Some((from, to))
    }

    /// The phase in force at `t`, if any (the first listed wins an overlap).
    fn phase_at(&self, t: f64) -> Option<&Phase> {
        self.phases.iter().find(|p| (p.from..p.to).contains(&t))
    }

    /// The payment service's behaviour at `t`.
    pub(crate) fn payment_at(&self, t: f64) -> Behaviour {
        match self.phase_at(t) {
            None => self.payment,
            Some(p) if !p.ramp => p.payment,
            Some(p) => {
                let f = ((t - p.from) / (p.to - p.from)).clamp(0.0, 1.0);
                let mix = |a: f64, b: f64| a + (b - a) * f;
                Behaviour {
                    latency: (
                        mix(p.payment.latency.0, self.payment.latency.0),
                        mix(p.payment.latency.1, self.payment.latency.1),
                    ),
                    errors: mix(p.payment.errors, self.payment.errors),
                }
            }
        }
    }

    /// Traffic as a multiple of the normal rate at `t`.
    pub(crate) fn traffic_at(&self, t: f64) -> f64 {
        self.phase_at(t).map_or(1.0, |p| p.traffic)
    }

    /// The phase name at `t`, for the progress bar.
    pub(crate) fn phase_name(&self, t: f64) -> &'static str {
        match self.incident() {
            Some((from, _)) if t < from => "healthy",
            Some((_, to)) if t < to => "DEGRADED",
            Some(_) => "healed",
            None => "healthy",
        }
    }
}

/// The incident with its traffic drawn, and the time scale of a real-thread run.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// What happens.
    pub(crate) spec: Spec,
    /// Wall seconds per incident second (1 in the simulator).
    pub(crate) scale: f64,
    /// The seed the traffic was drawn from.
    pub(crate) seed: u64,
    /// The traffic, in arrival order.
    pub(crate) requests: Vec<Request>,
}

impl Scenario {
    /// Draws the traffic of `spec` from `seed`; `scale` wall seconds per incident second.
    pub(crate) fn new(spec: Spec, seed: u64, scale: f64) -> Scenario {
        let mut rng = Rng::new(seed);
        let peak = spec.phases.iter().map(|p| p.traffic).fold(1.0, f64::max) * spec.rate;
        let mut requests = Vec::new();
        let mut at = 0.0;
        loop {
            // Poisson arrivals at the peak rate, thinned to the rate in force at each
            // arrival (so a traffic phase changes the rate, not the draws before it).
            at += -(1.0 - rng.next_f64()).ln() / peak;
            if at >= spec.seconds {
                break;
            }
            let keep = rng.next_f64() < spec.rate * spec.traffic_at(at) / peak;
            let kind = if rng.next_f64() < spec.checkout_share {
                Kind::Checkout
            } else {
                Kind::Healthy
            };
            let seed = rng.next_u64();
            if keep {
                requests.push(Request { at, kind, seed });
            }
        }
        Scenario {
            spec,
            scale,
            seed,
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
        let b = self.spec.payment_at(now);
        PaymentAnswer {
            latency: b.latency.0 + (b.latency.1 - b.latency.0) * draw(1),
            error: draw(2) < b.errors,
        }
    }

    /// How long the gateway works on a healthy-endpoint request.
    pub(crate) fn healthy_work(&self, request: &Request) -> f64 {
        let (lo, hi) = self.spec.healthy_work;
        lo + (hi - lo) * unit_f64(mix64(request.seed ^ 3))
    }
}
