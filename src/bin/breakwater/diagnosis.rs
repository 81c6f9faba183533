//! Why a policy did not help: reasons computed from the two runs' numbers and the
//! policy's configuration, printed under the table of `breakwater simulate`.
//!
//! Each rule looks at what happened (the breaker's window as the simulator saw it after
//! every completion, workers held by payment calls, clients gone before their answer,
//! the work offered against the workers' capacity) and speaks only when the run shows it.

use breakwater::breaker::{BreakerState, WindowConfig};
use breakwater::policy::{Policy, PolicyConfig};

use crate::scenario::{Kind, Scenario};
use crate::table::percent;
use crate::trace::{Fate, Trace};

/// What the simulator saw of the policy during a protected run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Seen {
    /// Most outcomes the breaker's window held at once (closed state).
    pub(crate) peak_window_calls: u64,
    /// Highest failure rate (0..=1) of a window holding at least `minimum_calls`.
    pub(crate) peak_failure_rate: Option<f64>,
    /// Highest slow-call rate of such a window.
    pub(crate) peak_slow_rate: Option<f64>,
    /// Most workers inside checkouts (calling payment or backing off) at once.
    pub(crate) peak_payment_workers: u32,
    /// Retries started.
    pub(crate) retries: u64,
    /// Retries the budget refused.
    pub(crate) budget_refusals: u64,
    /// Attempts that waited for a bulkhead slot.
    pub(crate) bulkhead_waits: u64,
    /// Attempts the policy admitted or refused (a bulkhead wait ending in a slot counts
    /// once).
    pub(crate) attempts: u64,
    /// Attempts failed by fault injection (chaos).
    pub(crate) injected_failures: u64,
    /// Attempts refused by fault injection.
    pub(crate) injected_rejections: u64,
    /// Attempts delayed by fault injection.
    pub(crate) injected_delays: u64,
    /// Seconds of injected delay, in all (each held a worker).
    pub(crate) injected_delay_secs: f64,
    /// Checkouts that failed (as their client saw it) after fault injection failed,
    /// refused or delayed one of their attempts.
    pub(crate) chaos_failed_checkouts: u64,
}

impl Seen {
    /// Reads the breaker's window after a completion.
    pub(crate) fn observe_breaker(&mut self, policy: &Policy) {
        let (Some(b), Some(config)) = (policy.breaker(), &policy.config().circuit_breaker) else {
            return;
        };
        let s = b.snapshot();
        if s.state != BreakerState::Closed {
            return;
        }
        self.peak_window_calls = self.peak_window_calls.max(s.calls);
        if s.calls >= u64::from(config.minimum_calls) && s.calls > 0 {
            let rate = s.failures as f64 / s.calls as f64;
            let slow = s.slow_calls as f64 / s.calls as f64;
            self.peak_failure_rate = Some(self.peak_failure_rate.map_or(rate, |r| r.max(rate)));
            self.peak_slow_rate = Some(self.peak_slow_rate.map_or(slow, |r| r.max(slow)));
        }
    }
}

fn served(t: &Trace) -> usize {
    t.count(|r| r.fate == Fate::Ok)
}

/// A time as a policy file writes it: `3s`, `300ms`, `1s 500ms`.
fn dur(secs: f64) -> String {
    let ms = std::time::Duration::from_millis((secs * 1000.0).round() as u64);
    humantime::format_duration(ms).to_string()
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

/// Whether the protected run served at least 2 % of the offered requests more.
pub(crate) fn helped(unprotected: &Trace, protected: &Trace) -> bool {
    let offered = unprotected.records.len().max(1) as f64;
    (served(protected) as f64 - served(unprotected) as f64) / offered >= 0.02
}

/// The lines to print under the table: empty when the policy helped.
pub(crate) fn explain(
    scenario: &Scenario,
    config: &PolicyConfig,
    unprotected: &Trace,
    protected: &Trace,
) -> Vec<String> {
    if helped(unprotected, protected) {
        return Vec::new();
    }
    let spec = &scenario.spec;
    let seen = protected.seen.clone().unwrap_or_default();
    let workers = spec.workers;
    let mut why = Vec::new();

    // Faults the policy injects itself: they dominate when most failed checkouts met
    // one, or when the protected run did worse than no policy at all (no other stage
    // makes calls fail that would have succeeded, or holds workers longer).
    let failed = protected.count(|r| r.kind == Kind::Checkout && r.fate != Fate::Ok) as u64;
    let touched = seen.chaos_failed_checkouts;
    let injected = seen.injected_failures + seen.injected_rejections + seen.injected_delays;
    let worse = helped(protected, unprotected);
    let chaos = config.chaos.as_ref().filter(|c| c.enabled);
    let dominant = chaos.filter(|_| injected > 0 && (worse || 2 * touched >= failed));
    if let Some(c) = dominant {
        why.push(format!(
            "chaos is on and its faults dominate: of {} payment attempts, injection failed \
             {}, refused {} and delayed {} (holding workers for {} in all; \
             failure_probability {}, rejection_probability {}, latency_probability {}), \
             and {touched} of the {failed} failed checkouts met one; set \
             `chaos.enabled = false` to judge the other stages",
            seen.attempts,
            seen.injected_failures,
            seen.injected_rejections,
            seen.injected_delays,
            dur(seen.injected_delay_secs),
            c.failure_probability,
            c.rejection_probability,
            c.latency_probability
        ));
    }

    // Nothing went wrong: there was nothing to help with.
    if spec.incident().is_none() {
        // (Unless the policy made it worse: then its reasons follow.)
        if !worse && why.is_empty() {
            return vec![format!(
                "Nothing goes wrong in this scenario (it has no [[phase]]): there was nothing \
                 for a policy to help with (served OK {} unprotected, {} with breakwater).",
                percent(served(unprotected), unprotected.records.len()),
                percent(served(protected), protected.records.len())
            )];
        }
    }

    // Overload the policy cannot see: more work offered than the workers can do.
    for phase in spec.phases.iter().filter(|p| p.traffic > 1.0) {
        let work: f64 = scenario
            .requests
            .iter()
            .filter(|r| (phase.from..phase.to).contains(&r.at))
            .map(|r| match r.kind {
                Kind::Healthy => scenario.healthy_work(r),
                Kind::Checkout => scenario.payment(r, 1, r.at).latency,
            })
            .sum();
        let load = work / (f64::from(workers) * (phase.to - phase.from));
        if load > 1.0 {
            why.push(format!(
                "from {} to {} the traffic asked for {load:.1}× what {workers} workers can do; \
                 a policy on the payment calls cannot shed healthy requests (put a rate \
                 limiter or an adaptive limit in front of the gateway)",
                dur(phase.from),
                dur(phase.to)
            ));
        }
    }

    // Nothing to protect: the workers were never short unprotected.
    let saturated = |t: &Trace| t.samples.iter().filter(|s| s.busy >= t.workers).count() as f64;
    let unprotected_full = saturated(unprotected) / unprotected.samples.len().max(1) as f64;
    let turned_away = unprotected.count(|r| r.fate == Fate::QueueFull);
    if unprotected_full < 0.01 && turned_away == 0 && dominant.is_none() {
        why.push(format!(
            "unprotected, the gateway was never short of workers (all busy {} of the time, \
             none turned away): the failures are the payment service's own, and a policy can \
             fail them faster, not make them succeed",
            percent(saturated(unprotected) as usize, unprotected.samples.len())
        ));
    }

    // Clients gone before the policy gave up.
    let late = protected.count(|r| r.kind == Kind::Checkout && r.fate == Fate::ClientTimeout);
    let client = spec.client_timeout;
    match config.timeout {
        None if late > 0 => why.push(format!(
            "no timeout: {late} checkouts held a worker after their client gave up at {}",
            dur(client)
        )),
        Some(t) if secs(t) >= client && late > 0 => why.push(format!(
            "timeout {} is not below the clients' {} deadline: {late} checkouts held a worker \
             after their client had gone",
            dur(secs(t)),
            dur(client)
        )),
        _ => {}
    }

    // The breaker.
    let opened = protected.policy.as_ref().map_or(0, |m| m.transitions[1]);
    match &config.circuit_breaker {
        Some(b) if opened == 0 => {
            let window = match b.window {
                WindowConfig::Count { size } => format!("last {size} calls"),
                WindowConfig::Time { duration, .. } => format!("last {}", dur(secs(duration))),
            };
            if seen.peak_window_calls < u64::from(b.minimum_calls) {
                why.push(format!(
                    "the breaker never opened: its window ({window}) held at most {} outcomes, \
                     below minimum_calls {}",
                    seen.peak_window_calls, b.minimum_calls
                ));
            } else {
                let rate = seen.peak_failure_rate.unwrap_or(0.0) * 100.0;
                let mut line = format!(
                    "the breaker never opened: failures peaked at {rate:.0} % of its window \
                     ({window}), below failure_rate_threshold {} %",
                    b.failure_rate_threshold
                );
                if let Some(slow) = b.slow_call_rate_threshold {
                    line.push_str(&format!(
                        "; slow calls (over {}) peaked at {:.0} %, below \
                         slow_call_rate_threshold {slow} %",
                        dur(secs(b.slow_call_duration)),
                        seen.peak_slow_rate.unwrap_or(0.0) * 100.0
                    ));
                }
                why.push(line);
            }
        }
        None if protected.count(|r| r.fate == Fate::PaymentError) > 0 => why.push(
            "no circuit breaker: every checkout kept calling the failing payment service".into(),
        ),
        _ => {}
    }

    // The bulkhead.
    let peak = seen.peak_payment_workers;
    match &config.bulkhead {
        Some(b) if b.max_concurrent >= workers && peak >= workers => why.push(format!(
            "bulkhead max_concurrent {} is not below the gateway's {workers} workers: \
             checkouts held all {peak} of them at once",
            b.max_concurrent
        )),
        None if peak >= workers => why.push(format!(
            "no bulkhead: checkouts held all {workers} workers at once"
        )),
        _ => {}
    }

    // Checkouts that could not succeed whatever the policy: a phase in which every
    // answer the payment service gave (in either run) came after the clients' deadline.
    for phase in &spec.phases {
        let fastest = unprotected
            .answers
            .iter()
            .chain(&protected.answers)
            .filter(|(at, _)| (phase.from..phase.to).contains(at))
            .map(|&(_, latency)| latency)
            .reduce(f64::min);
        if let Some(fastest) = fastest.filter(|&f| f > client) {
            why.push(format!(
                "from {} to {} payment answered in no less than {}, after the clients' {} \
                 deadline: no policy makes those checkouts succeed",
                dur(phase.from),
                dur(phase.to),
                dur(fastest),
                dur(client)
            ));
        }
    }

    if why.is_empty() {
        why.push(format!(
            "none of its rules changed the outcome: breaker opened {opened} times, {} calls \
             cut at the timeout, {} failed fast, {} retries",
            protected.count(|r| r.fate == Fate::PaymentTimeout),
            protected.count(|r| matches!(r.fate, Fate::Rejected(_))),
            seen.retries
        ));
    }
    let mut lines = vec![format!(
        "breakwater did not help here (served OK {} unprotected, {} with breakwater). Why:",
        percent(served(unprotected), unprotected.records.len()),
        percent(served(protected), protected.records.len())
    )];
    lines.extend(why.into_iter().map(|w| format!("- {w}.")));
    lines
}
