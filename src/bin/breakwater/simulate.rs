//! `breakwater simulate`: the incident in virtual time. A discrete-event loop (no
//! threads, no sleeps) moves a [`ManualClock`] from event to event: arrivals, the end of
//! a worker's work, the end of a payment attempt, a retry's backoff, a bulkhead wait
//! running out, and a sampling tick. The policy runs unchanged on that clock (through
//! `acquire_raw` / `complete_raw`, with the simulator's own retry loop built from
//! [`RetryState`] exactly as `Policy::call` builds its own), so a seed gives the same
//! run, byte for byte, and a 10 s incident replays in milliseconds.
//!
//! Ties are broken by the order events were scheduled, never by a hash or a thread.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::clock::ManualClock;
use breakwater::policy::{Policy, RawPolicyPermit};
use breakwater::retry::{GiveUpReason, RetryDecision, RetryState};
use breakwater::rng::mix64;
use breakwater::{Outcome, RejectReason};

use crate::diagnosis::Seen;
use crate::scenario::{Kind, Scenario};
use crate::trace::{Fate, Record, Sample, Trace};

/// How often the gateway is sampled (busy workers, queue, breaker), seconds.
pub(crate) const SAMPLE_EVERY: f64 = 0.02;

/// Nanoseconds of the manual clock at incident time `t` (the clock starts at 1 ns).
fn nanos(t: f64) -> u64 {
    (t * 1e9).round() as u64 + 1
}

fn secs(nanos: u64) -> f64 {
    nanos.saturating_sub(1) as f64 / 1e9
}

/// What happens at an event.
enum What {
    /// Request `i` arrives.
    Arrive(usize),
    /// The worker serving request `i` is done (healthy work, unprotected checkout).
    Finish(usize, Fate),
    /// A payment attempt of request `i` ends.
    AttemptEnd {
        request: usize,
        permit: RawPolicyPermit,
        outcome: Outcome,
        fate: Fate,
        duration: Duration,
    },
    /// Request `i`'s backoff is over: its next attempt starts.
    Retry(usize),
    /// Request `i` waited `max_wait` for a bulkhead slot (if still waiting, it is refused).
    WaitOver(usize, u64),
    /// Record the gateway's state.
    Sample,
}

struct Event {
    at: u64,
    seq: u64,
    what: What,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so the `BinaryHeap` pops the earliest (then the first scheduled).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A protected checkout in progress.
struct Call {
    attempt: u32,
    retry: Option<RetryState>,
    /// Ticket of its current bulkhead wait (a stale `WaitOver` carries an older one).
    waiting: Option<u64>,
    /// Whether fault injection failed, refused or delayed one of its attempts.
    chaos: bool,
}

/// The protected run's policy and how the simulator drives it.
pub(crate) struct Protection<'a> {
    /// Built on the simulator's clock, with the bulkhead's `max_wait` set to zero (the
    /// simulator does the waiting in virtual time; see `bulkhead_wait`).
    pub(crate) policy: &'a Policy,
    /// The clock `policy` reads.
    pub(crate) clock: &'a ManualClock,
    /// The policy file's `bulkhead.max_wait`, seconds.
    pub(crate) bulkhead_wait: f64,
    /// Whether the policy's timeout cuts a payment call (`false`: the call runs to its
    /// end and is recorded as a timeout then, as `Policy::call` does with a synchronous
    /// call).
    pub(crate) timeout_cuts: bool,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    protection: Option<&'a Protection<'a>>,
    events: BinaryHeap<Event>,
    seq: u64,
    now: u64,
    queue: VecDeque<usize>,
    busy: u32,
    in_payment: u32,
    calls: Vec<Option<Call>>,
    bulkhead_waiters: VecDeque<usize>,
    records: Vec<Record>,
    samples: Vec<Sample>,
    seen: Seen,
    answers: Vec<(f64, f64)>,
}

impl<'a> Sim<'a> {
    fn at(&mut self, t: u64, what: What) {
        self.seq += 1;
        self.events.push(Event {
            at: t,
            seq: self.seq,
            what,
        });
    }

    fn after(&mut self, secs: f64, what: What) {
        let t = self.now + nanos(secs.max(0.0)) - 1;
        self.at(t, what);
    }

    fn t(&self) -> f64 {
        secs(self.now)
    }

    fn arrive(&mut self, i: usize) {
        if self.busy < self.scenario.spec.workers && self.queue.is_empty() {
            self.start(i);
        } else if self.queue.len() >= self.scenario.spec.queue {
            let at = self.scenario.requests[i].at;
            self.record(i, at, Fate::QueueFull);
        } else {
            self.queue.push_back(i);
        }
    }

    fn start(&mut self, i: usize) {
        self.busy += 1;
        let request = self.scenario.requests[i];
        match (request.kind, self.protection) {
            (Kind::Healthy, _) => {
                let work = self.scenario.healthy_work(&request);
                self.after(work, What::Finish(i, Fate::Ok));
            }
            (Kind::Checkout, None) => {
                self.in_payment += 1;
                let answer = self.scenario.payment(&request, 1, self.t());
                self.answers.push((self.t(), answer.latency));
                let fate = if answer.error {
                    Fate::PaymentError
                } else {
                    Fate::Ok
                };
                self.after(answer.latency, What::Finish(i, fate));
            }
            (Kind::Checkout, Some(p)) => {
                self.in_payment += 1;
                let policy = p.policy;
                if let Some(budget) = policy.retry_budget() {
                    budget.record_request();
                }
                let retry =
                    policy.config().retry.as_ref().map(|r| {
                        RetryState::new(&r.retry, mix64(request.seed ^ 4), self.now, None)
                    });
                self.calls[i] = Some(Call {
                    attempt: 1,
                    retry,
                    waiting: None,
                    chaos: false,
                });
                self.attempt(i);
            }
        }
        self.seen.peak_payment_workers = self.seen.peak_payment_workers.max(self.in_payment);
    }

    fn protection(&self) -> &'a Protection<'a> {
        self.protection.expect("only protected runs make attempts")
    }

    /// One attempt of protected checkout `i`, at the current time.
    fn attempt(&mut self, i: usize) {
        let p = self.protection();
        let (policy, wait, cuts) = (p.policy, p.bulkhead_wait, p.timeout_cuts);
        p.clock.set(self.now);
        match policy.acquire_raw(Priority::Default) {
            Err(rejection) => {
                if rejection.reason == RejectReason::BulkheadFull && wait > 0.0 {
                    self.seq += 1;
                    let ticket = self.seq;
                    if let Some(call) = self.calls[i].as_mut() {
                        call.waiting = Some(ticket);
                    }
                    self.bulkhead_waiters.push_back(i);
                    self.seen.bulkhead_waits += 1;
                    self.after(wait, What::WaitOver(i, ticket));
                    return;
                }
                self.seen.attempts += 1;
                if rejection.reason == RejectReason::Injected {
                    self.seen.injected_rejections += 1;
                    if let Some(call) = self.calls[i].as_mut() {
                        call.chaos = true;
                    }
                }
                let retryable = policy
                    .config()
                    .retry
                    .as_ref()
                    .is_some_and(|r| r.retry_on.rejected(rejection.reason));
                self.failed(
                    i,
                    Fate::Rejected(rejection.reason),
                    retryable,
                    rejection.retry_after,
                );
            }
            Ok(permit) => {
                self.seen.attempts += 1;
                let failed = permit.injected_failure();
                let delayed = !permit.injected_latency().is_zero();
                self.seen.injected_failures += u64::from(failed);
                self.seen.injected_delays += u64::from(delayed);
                self.seen.injected_delay_secs += permit.injected_latency().as_secs_f64();
                if let Some(call) = self.calls[i].as_mut() {
                    call.chaos |= failed || delayed;
                }
                let request = self.scenario.requests[i];
                let attempt = self.calls[i].as_ref().map_or(1, |c| c.attempt);
                let injected = permit.injected_latency().as_secs_f64();
                let (outcome, fate, latency) = if permit.injected_failure() {
                    (Outcome::Failure, Fate::PaymentError, 0.0)
                } else {
                    let answer = self
                        .scenario
                        .payment(&request, attempt, self.t() + injected);
                    self.answers.push((self.t() + injected, answer.latency));
                    match policy.config().timeout.map(|d| d.as_secs_f64()) {
                        // Abandoned at the deadline: the worker is freed then.
                        Some(limit) if answer.latency > limit && cuts => {
                            (Outcome::Timeout, Fate::PaymentTimeout, limit)
                        }
                        // Not cut: the call ran to its end, holding the worker, and is
                        // recorded as a timeout; its answer still reaches the caller.
                        Some(limit) if answer.latency > limit => {
                            let fate = if answer.error {
                                Fate::PaymentError
                            } else {
                                Fate::Ok
                            };
                            (Outcome::Timeout, fate, answer.latency)
                        }
                        _ if answer.error => (Outcome::Failure, Fate::PaymentError, answer.latency),
                        _ => (Outcome::Success, Fate::Ok, answer.latency),
                    }
                };
                self.after(
                    injected + latency,
                    What::AttemptEnd {
                        request: i,
                        permit,
                        outcome,
                        fate,
                        duration: Duration::from_nanos(nanos(latency) - 1),
                    },
                );
            }
        }
    }

    fn attempt_end(
        &mut self,
        i: usize,
        permit: RawPolicyPermit,
        outcome: Outcome,
        fate: Fate,
        duration: Duration,
    ) {
        let p = self.protection();
        let policy = p.policy;
        p.clock.set(self.now);
        policy.complete_raw(permit, outcome, Some(duration));
        self.seen.observe_breaker(policy);
        // A bulkhead slot may have come free: the longest waiter tries again.
        if let Some(w) = self.bulkhead_waiters.pop_front() {
            if let Some(call) = self.calls[w].as_mut() {
                call.waiting = None;
            }
            self.attempt(w);
        }
        // A value returned (a success, or a late one of a call not cut) ends the call.
        if outcome == Outcome::Success || fate == Fate::Ok {
            self.done(i, fate);
            return;
        }
        let retryable = policy
            .config()
            .retry
            .as_ref()
            .is_some_and(|r| r.retry_on.outcome(outcome));
        self.failed(i, fate, retryable, None);
    }

    /// Attempt of `i` ended in `fate`: retry it or give its answer.
    fn failed(&mut self, i: usize, fate: Fate, retryable: bool, retry_after: Option<Duration>) {
        let budget = self.protection().policy.retry_budget();
        let now = self.now;
        let decision = match self.calls[i].as_mut() {
            Some(Call {
                retry: Some(state),
                attempt,
                ..
            }) if retryable => {
                let d = state.next_delay(now, retry_after, budget);
                if d.delay().is_some() {
                    *attempt += 1;
                }
                Some(d)
            }
            _ => None,
        };
        match decision {
            Some(RetryDecision::RetryAfter(delay)) => {
                self.seen.retries += 1;
                self.after(delay.as_secs_f64(), What::Retry(i));
            }
            Some(RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)) => {
                self.seen.budget_refusals += 1;
                self.done(i, fate);
            }
            Some(RetryDecision::GiveUp(_)) | None => self.done(i, fate),
        }
    }

    fn wait_over(&mut self, i: usize, ticket: u64) {
        let still = self.calls[i]
            .as_ref()
            .is_some_and(|c| c.waiting == Some(ticket));
        if !still {
            return;
        }
        self.bulkhead_waiters.retain(|&w| w != i);
        if let Some(call) = self.calls[i].as_mut() {
            call.waiting = None;
        }
        let retryable = self
            .protection()
            .policy
            .config()
            .retry
            .as_ref()
            .is_some_and(|r| r.retry_on.rejected(RejectReason::BulkheadFull));
        self.failed(
            i,
            Fate::Rejected(RejectReason::BulkheadFull),
            retryable,
            None,
        );
    }

    /// The worker serving `i` is free; its client hears `fate`.
    fn done(&mut self, i: usize, fate: Fate) {
        self.busy -= 1;
        if self.scenario.requests[i].kind == Kind::Checkout {
            self.in_payment -= 1;
        }
        let chaos = self.calls[i].take().is_some_and(|c| c.chaos);
        let now = self.t();
        self.record(i, now, fate);
        if chaos && self.records.last().is_some_and(|r| r.fate != Fate::Ok) {
            self.seen.chaos_failed_checkouts += 1;
        }
        if let Some(next) = self.queue.pop_front() {
            self.start(next);
        }
    }

    fn record(&mut self, i: usize, end: f64, fate: Fate) {
        let request = &self.scenario.requests[i];
        let deadline = request.at + self.scenario.spec.client_timeout;
        // A client that waited longer than its timeout has gone: it saw a failure then.
        let (end, fate) = if end > deadline {
            (deadline, Fate::ClientTimeout)
        } else {
            (end, fate)
        };
        self.records.push(Record {
            kind: request.kind,
            arrival: request.at,
            end,
            fate,
        });
    }

    fn sample(&mut self) {
        self.samples.push(Sample {
            t: self.t(),
            busy: self.busy,
            queued: self.queue.len() as u32,
            breaker: self
                .protection
                .and_then(|p| p.policy.breaker())
                .map(|b| b.state()),
        });
        if self.t() + SAMPLE_EVERY < self.scenario.spec.seconds {
            self.after(SAMPLE_EVERY, What::Sample);
        }
    }
}

/// Plays the incident once in virtual time; `protection` guards the payment calls.
pub(crate) fn play(scenario: &Scenario, protection: Option<&Protection<'_>>) -> Trace {
    let mut sim = Sim {
        scenario,
        protection,
        events: BinaryHeap::new(),
        seq: 0,
        now: 1,
        queue: VecDeque::new(),
        busy: 0,
        in_payment: 0,
        calls: (0..scenario.requests.len()).map(|_| None).collect(),
        bulkhead_waiters: VecDeque::new(),
        records: Vec::with_capacity(scenario.requests.len()),
        samples: Vec::new(),
        seen: Seen::default(),
        answers: Vec::new(),
    };
    if let Some(p) = protection {
        p.clock.set(1);
    }
    for (i, r) in scenario.requests.iter().enumerate() {
        sim.at(nanos(r.at), What::Arrive(i));
    }
    sim.at(1, What::Sample);
    while let Some(event) = sim.events.pop() {
        sim.now = event.at;
        match event.what {
            What::Arrive(i) => sim.arrive(i),
            What::Finish(i, fate) => sim.done(i, fate),
            What::AttemptEnd {
                request,
                permit,
                outcome,
                fate,
                duration,
            } => sim.attempt_end(request, permit, outcome, fate, duration),
            What::Retry(i) => sim.attempt(i),
            What::WaitOver(i, ticket) => sim.wait_over(i, ticket),
            What::Sample => sim.sample(),
        }
    }
    let mut records = sim.records;
    records.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
    Trace {
        records,
        samples: sim.samples,
        workers: scenario.spec.workers,
        seconds: scenario.spec.seconds,
        incident: scenario.spec.incident(),
        policy: protection.map(|p| p.policy.metrics().snapshot()),
        seen: protection.map(|_| sim.seen),
        answers: sim.answers,
    }
}
