//! Runs one scenario against the public Rust API (engine, policies, standalone rate
//! limiters on one manual clock) and says at which step it first differed.

use super::scenario::{
    Admission, ExpectedEvent, LimiterAnswer, RetryAnswer, Scenario, Step, Switch, What,
};
use breakwater::breaker::BreakerState;
use breakwater::clock::{AnyClock, Clock, ManualClock};
use breakwater::engine::Engine;
use breakwater::limiter::{LimiterError, RateLimiter, RateLimiterConfig, RawReservation};
use breakwater::metrics::{Event, Metered};
use breakwater::policy::{Policy, RawPolicyPermit, RetryOn};
use breakwater::retry::{RetryDecision, RetryState};
use breakwater::RejectReason;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the listener received, owned; `Err` holds an event kind the format has no
/// expectation for (which then fails any `expect_events`).
type Received = Result<ExpectedEvent, String>;

/// Where a scenario failed: the step (1-based; 0 for the set-up), its op, and what
/// differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: usize,
    pub op: &'static str,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step {} ({}): {}", self.step, self.op, self.message)
    }
}

fn state_of(code: u8) -> Option<BreakerState> {
    BreakerState::from_code(i64::from(code))
}

fn received(event: &Event<'_>) -> Received {
    match *event {
        Event::Transition {
            policy,
            from_code,
            to_code,
            generation,
            at_nanos,
            ..
        } => match (state_of(from_code), state_of(to_code)) {
            (Some(from), Some(to)) => Ok(ExpectedEvent::Transition {
                policy: policy.to_string(),
                from,
                to,
                generation,
                at_ns: at_nanos,
            }),
            _ => Err(format!(
                "transition with unknown state codes {from_code} -> {to_code}"
            )),
        },
        Event::BudgetExhausted {
            policy, at_nanos, ..
        } => Ok(ExpectedEvent::BudgetExhausted {
            policy: policy.to_string(),
            at_ns: at_nanos,
        }),
        Event::Reload {
            added,
            removed,
            changed,
        } => Ok(ExpectedEvent::Reload {
            added: added as u64,
            removed: removed as u64,
            changed: changed as u64,
        }),
        ref other => Err(format!("{} event {other:?}", other.kind())),
    }
}

/// The counters of `bw_policy_stats`, read the way the C ABI reads them.
fn counter(policy: &Policy, name: &str) -> i64 {
    let s = policy.snapshot();
    let m = &s.metrics;
    let u = |v: u64| v as i64;
    match name {
        "permitted" => u(m.permitted),
        "success" => u(m.success),
        "failure" => u(m.failure),
        "timeout" => u(m.timeout),
        "ignored" => u(m.ignored),
        "slow" => u(m.slow),
        "retries" => u(m.retries),
        "rejected_circuit_open" => u(m.rejected_by(RejectReason::CircuitOpen)),
        "rejected_rate_limited" => u(m.rejected_by(RejectReason::RateLimited)),
        "rejected_bulkhead_full" => u(m.rejected_by(RejectReason::BulkheadFull)),
        "rejected_load_shed" => u(m.rejected_by(RejectReason::LoadShed)),
        "rejected_retry_budget_exhausted" => u(m.rejected_by(RejectReason::RetryBudgetExhausted)),
        "rejected_injected" => u(m.rejected_by(RejectReason::Injected)),
        "transitions_to_closed" => u(m.transitions[BreakerState::Closed as usize]),
        "transitions_to_open" => u(m.transitions[BreakerState::Open as usize]),
        "transitions_to_half_open" => u(m.transitions[BreakerState::HalfOpen as usize]),
        "transitions_to_forced_open" => u(m.transitions[BreakerState::ForcedOpen as usize]),
        "transitions_to_disabled" => u(m.transitions[BreakerState::Disabled as usize]),
        "latency_count" => u(m.latency.count),
        "latency_sum_ns" => u(m.latency.sum_nanos),
        "breaker_generation" => s.breaker.as_ref().map_or(0, |b| u(b.generation)),
        "limiter_available" => s.limiter.as_ref().map_or(-1, |l| u(l.available)),
        "bulkhead_in_flight" => s.bulkhead.as_ref().map_or(0, |b| i64::from(b.in_flight)),
        "bulkhead_max_concurrent" => s
            .bulkhead
            .as_ref()
            .map_or(0, |b| i64::from(b.max_concurrent)),
        "adaptive_limit" => s.adaptive.as_ref().map_or(0, |a| i64::from(a.limit)),
        "adaptive_in_flight" => s.adaptive.as_ref().map_or(0, |a| i64::from(a.in_flight)),
        // The parser admits only the names above.
        other => unreachable!("counter `{other}` passed the parser"),
    }
}

/// Refuses a configuration whose acquire can block: a bulkhead `max_wait` waits in
/// real time, which no manual clock drives (README: scenarios use `max_wait` 0).
fn refuse_blocking(engine: &Engine) -> Result<(), String> {
    for policy in engine.policies() {
        if policy
            .config()
            .bulkhead
            .is_some_and(|b| !b.max_wait.is_zero())
        {
            return Err(format!(
                "policy `{}`: a bulkhead max_wait blocks in real time; scenarios use 0",
                policy.name()
            ));
        }
    }
    Ok(())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The state of one run.
struct Run {
    clock: ManualClock,
    engine: Engine,
    events: Arc<Mutex<Vec<Received>>>,
    limiters: HashMap<String, Metered<RateLimiter<AnyClock>>>,
    handles: HashMap<String, Arc<Policy>>,
    permits: HashMap<String, (Arc<Policy>, RawPolicyPermit)>,
    reservations: HashMap<String, (String, Option<RawReservation>)>,
    retries: HashMap<String, (Arc<Policy>, RetryState)>,
    completed: Vec<String>,
}

/// Runs `scenario`; `Err` says where it first differed from its expectations.
pub fn run(scenario: &Scenario) -> Result<(), Failure> {
    let setup = |message: String| Failure {
        step: 0,
        op: "setup",
        message,
    };
    let clock = ManualClock::starting_at(scenario.clock_start_ns);
    let engine = Engine::with_clock(AnyClock::Manual(clock.clone()));
    engine
        .reload_str(&scenario.policy_file)
        .map_err(|e| setup(format!("policy_file refused: {e}")))?;
    refuse_blocking(&engine).map_err(setup)?;
    let events: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = events.clone();
    engine
        .events()
        .set_listener(move |e| sink.lock().unwrap().push(received(e)))
        .map_err(|_| setup("the engine already had a listener".into()))?;
    let mut limiters = HashMap::new();
    for spec in &scenario.limiters {
        let config = RateLimiterConfig::new(spec.rate, Duration::from_nanos(spec.period_ns))
            .with_burst(spec.burst);
        let limiter = RateLimiter::with_clock(config, AnyClock::Manual(clock.clone()))
            .map_err(|e| setup(format!("limiter `{}` refused: {e}", spec.name)))?;
        limiters.insert(spec.name.clone(), Metered::new(limiter));
    }
    let mut run = Run {
        clock,
        engine,
        events,
        limiters,
        handles: HashMap::new(),
        permits: HashMap::new(),
        reservations: HashMap::new(),
        retries: HashMap::new(),
        completed: Vec::new(),
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        let before = run.clock.now();
        run.step(step).map_err(|message| Failure {
            step: index + 1,
            op: step.op(),
            message: format!("{message} (clock {before} ns)"),
        })?;
    }
    let open: Vec<String> = run.permits.keys().cloned().collect();
    for (policy, permit) in std::mem::take(&mut run.permits).into_values() {
        policy.complete_raw(permit, breakwater::Outcome::Ignored, None);
    }
    if !open.is_empty() {
        return Err(Failure {
            step: scenario.steps.len(),
            op: "end",
            message: format!("permits never completed: {open:?}"),
        });
    }
    Ok(())
}

impl Run {
    fn policy(&mut self, name: &str) -> Result<Arc<Policy>, String> {
        if let Some(p) = self.handles.get(name) {
            return Ok(p.clone());
        }
        let p = self
            .engine
            .policy(name)
            .map_err(|e| format!("no policy `{name}` in the engine: {e}"))?;
        self.handles.insert(name.to_string(), p.clone());
        Ok(p)
    }

    fn limiter(&self, name: &str) -> Result<&Metered<RateLimiter<AnyClock>>, String> {
        self.limiters
            .get(name)
            .ok_or_else(|| format!("no limiter `{name}` in `limiters`"))
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Advance { ns } => self.clock.advance(Duration::from_nanos(*ns)),
            Step::SetClock { ns } => self.clock.set(*ns),
            Step::Acquire {
                policy,
                id,
                priority,
                expect,
                retry_after_ns,
                injected_failure,
                injected_latency_ns,
            } => {
                let handle = self.policy(policy)?;
                match (handle.acquire_raw(*priority), expect) {
                    (Ok(permit), Admission::Permitted) => {
                        let failure = permit.injected_failure();
                        let latency = nanos(permit.injected_latency());
                        // Kept before any check, so a failed check still completes it.
                        let id = id.clone().expect("the parser requires an id");
                        self.permits.insert(id, (handle, permit));
                        if failure != *injected_failure || latency != *injected_latency_ns {
                            return Err(format!(
                                "injected failure {failure}, latency {latency} ns; expected {injected_failure}, {injected_latency_ns} ns"
                            ));
                        }
                    }
                    (Ok(permit), Admission::Rejected(reason)) => {
                        handle.complete_raw(permit, breakwater::Outcome::Ignored, None);
                        return Err(format!("permitted; expected {reason}"));
                    }
                    (Err(rejection), expected) => {
                        let got = rejection.retry_after.map_or(0, nanos);
                        if *expected != Admission::Rejected(rejection.reason) {
                            return Err(format!(
                                "rejected {} (retry_after {got} ns); expected {expected:?}",
                                rejection.reason
                            ));
                        }
                        if got != *retry_after_ns {
                            return Err(format!(
                                "retry_after {got} ns; expected {retry_after_ns} ns"
                            ));
                        }
                    }
                }
            }
            Step::Complete { id, outcome } => {
                let (handle, permit) = self.permits.remove(id).ok_or_else(|| {
                    if self.completed.contains(id) {
                        format!("permit `{id}` was completed before")
                    } else {
                        format!("no permit `{id}`")
                    }
                })?;
                handle.complete_raw(permit, *outcome, None);
                self.completed.push(id.clone());
            }
            Step::LimiterAcquire {
                limiter,
                permits,
                expect,
                retry_after_ns,
            } => {
                let got = match self.limiter(limiter)?.try_acquire_n(*permits) {
                    Ok(()) => (LimiterAnswer::Granted, 0),
                    Err(LimiterError::Rejected(r)) => {
                        (LimiterAnswer::RateLimited, r.retry_after.map_or(0, nanos))
                    }
                    Err(LimiterError::ExceedsBurst { .. }) => (LimiterAnswer::NeverPasses, 0),
                };
                if got != (*expect, *retry_after_ns) {
                    return Err(format!(
                        "{:?} (retry_after {} ns); expected {expect:?} (retry_after {retry_after_ns} ns)",
                        got.0, got.1
                    ));
                }
            }
            Step::Reserve {
                limiter,
                id,
                permits,
                max_wait_ns,
                expect,
                wait_ns,
                retry_after_ns,
            } => {
                let answer = self
                    .limiter(limiter)?
                    .reserve(*permits, Duration::from_nanos(*max_wait_ns));
                match answer {
                    Ok(reservation) => {
                        let wait = nanos(reservation.wait());
                        let raw = reservation.into_raw();
                        if *expect != LimiterAnswer::Granted {
                            return Err(format!("reserved (wait {wait} ns); expected {expect:?}"));
                        }
                        let id = id.clone().expect("the parser requires an id");
                        self.reservations.insert(id, (limiter.clone(), Some(raw)));
                        if wait != *wait_ns {
                            return Err(format!("wait {wait} ns; expected {wait_ns} ns"));
                        }
                    }
                    Err(e) => {
                        let got = match e {
                            LimiterError::Rejected(r) => {
                                (LimiterAnswer::RateLimited, r.retry_after.map_or(0, nanos))
                            }
                            LimiterError::ExceedsBurst { .. } => (LimiterAnswer::NeverPasses, 0),
                        };
                        if got != (*expect, *retry_after_ns) {
                            return Err(format!(
                                "{:?} (retry_after {} ns); expected {expect:?} (retry_after {retry_after_ns} ns)",
                                got.0, got.1
                            ));
                        }
                    }
                }
            }
            Step::Cancel { id, cancelled } => {
                let (limiter, raw) = self
                    .reservations
                    .get_mut(id)
                    .ok_or_else(|| format!("no reservation `{id}`"))?;
                let raw = raw
                    .take()
                    .ok_or_else(|| format!("reservation `{id}` was cancelled before"))?;
                let limiter = limiter.clone();
                let got = self.limiter(&limiter)?.inner().cancel_raw(raw);
                if got != *cancelled {
                    return Err(format!("cancelled {got}; expected {cancelled}"));
                }
            }
            Step::ExpectLimiter {
                limiter,
                available,
                permitted,
                rejected,
            } => {
                let l = self.limiter(limiter)?;
                // Counted as the C handle counts: through `Metered` (design §5).
                let metrics = l.metrics().snapshot();
                let got = (
                    l.inner().available(),
                    metrics.permitted,
                    metrics.rejected_total(),
                );
                let want = (
                    available.unwrap_or(got.0),
                    permitted.unwrap_or(got.1),
                    rejected.unwrap_or(got.2),
                );
                if got != want {
                    return Err(format!(
                        "available {}, permitted {}, rejected {}; expected {want:?}",
                        got.0, got.1, got.2
                    ));
                }
            }
            Step::Reload { policy_file, ok } => {
                let result = self.engine.reload_str(policy_file);
                refuse_blocking(&self.engine)?;
                match (result, ok) {
                    (Ok(_), true) => {}
                    (Err(_), false) => {}
                    (Ok(_), false) => return Err("reload accepted; expected invalid_config".into()),
                    (Err(e), true) => return Err(format!("reload refused: {e}")),
                }
            }
            Step::Lookup { policy, found } => match (self.engine.policy(policy), found) {
                (Ok(p), true) => {
                    self.handles.insert(policy.clone(), p);
                }
                (Err(_), false) => {}
                (Ok(_), false) => return Err(format!("`{policy}` found; expected not_found")),
                (Err(e), true) => return Err(format!("`{policy}` not found: {e}")),
            },
            Step::Chaos { policy, enabled } => {
                let handle = self.policy(policy)?;
                let chaos = handle
                    .chaos()
                    .ok_or_else(|| format!("policy `{policy}` has no chaos section"))?;
                chaos.set_enabled(*enabled);
            }
            Step::Switch {
                policy,
                switch,
                has_stage,
            } => {
                let handle = self.policy(policy)?;
                match (handle.breaker(), has_stage) {
                    (Some(b), true) => match switch {
                        Switch::ForceOpen => b.force_open(),
                        Switch::Disable => b.disable(),
                        Switch::Reset => b.reset(),
                    },
                    (None, false) => {}
                    (Some(_), false) => {
                        return Err("the policy has a breaker; expected no_stage".into())
                    }
                    (None, true) => return Err("the policy has no breaker".into()),
                }
            }
            Step::ExpectState {
                policy,
                state,
                generation,
            } => {
                let handle = self.policy(policy)?;
                let snapshot = handle
                    .snapshot()
                    .breaker
                    .ok_or_else(|| format!("policy `{policy}` has no breaker"))?;
                if snapshot.state != *state || generation.is_some_and(|g| g != snapshot.generation)
                {
                    return Err(format!(
                        "state {} generation {}; expected {} generation {}",
                        snapshot.state,
                        snapshot.generation,
                        state,
                        generation.map_or("(any)".to_string(), |g| g.to_string())
                    ));
                }
            }
            Step::ExpectCounters { policy, counters } => {
                let handle = self.policy(policy)?;
                let wrong: Vec<String> = counters
                    .iter()
                    .filter_map(|(name, want)| {
                        let got = counter(&handle, name);
                        (got != *want).then(|| format!("{name} = {got} (expected {want})"))
                    })
                    .collect();
                if !wrong.is_empty() {
                    return Err(wrong.join(", "));
                }
            }
            Step::ExpectEvents { events } => {
                let got = std::mem::take(&mut *self.events.lock().unwrap());
                let want: Vec<Received> = events.iter().cloned().map(Ok).collect();
                if got != want {
                    return Err(format!("events {got:?}; expected {want:?}"));
                }
            }
            Step::RetryBegin {
                policy,
                id,
                seed,
                deadline_ns,
            } => {
                let handle = self.policy(policy)?;
                let state = handle
                    .retry_begin(*seed, *deadline_ns)
                    .ok_or_else(|| format!("policy `{policy}` has no retry section"))?;
                self.retries.insert(id.clone(), (handle, state));
            }
            Step::RetryNext {
                id,
                what,
                retry_after_ns,
                expect,
            } => {
                let (handle, state) = self
                    .retries
                    .get_mut(id)
                    .ok_or_else(|| format!("no retry `{id}`"))?;
                let class = match what {
                    What::Failure => RetryOn::FAILURE,
                    What::Timeout => RetryOn::TIMEOUT,
                    What::Rejected(reason) => RetryOn::rejection(*reason),
                };
                let got =
                    match handle.retry_next(state, class, retry_after_ns.map(Duration::from_nanos))
                    {
                        RetryDecision::RetryAfter(d) => RetryAnswer::Retry { delay_ns: nanos(d) },
                        RetryDecision::GiveUp(r) => RetryAnswer::GiveUp(r),
                    };
                if got != *expect {
                    return Err(format!("{got:?}; expected {expect:?}"));
                }
            }
        }
        Ok(())
    }
}
