//! The pipeline: one `acquire` through every configured stage, one `complete` back.
//!
//! Acquire order, outermost first (normative, docs/design.md §3):
//!
//! 1. circuit breaker — an open breaker rejects before anything is spent;
//! 2. client-side throttle, then rate limiter — the quota toward the dependency;
//! 3. bulkhead, then adaptive limit — concurrency toward the dependency, with priority;
//! 4. chaos — innermost: decides whether this call is faulted; the permit says so.
//!
//! A rejection at any stage releases what earlier stages granted: the breaker permit is
//! completed as `Ignored` (freeing a half-open probe slot), a bulkhead slot is released,
//! an adaptive permit is completed as `Ignored`, and the rate-limiter token goes back
//! exactly (its GCRA slot leaves the schedule; see `RateLimiter::cancel_raw`).
//! Completion reports to the breaker and the adaptive limit, then releases the bulkhead.

use std::time::Duration;

use crate::adaptive::{AdaptiveLimiter, ClientThrottle, Priority, RawAdaptivePermit};
use crate::sync::Arc;

use once_cell::sync::OnceCell;

use crate::breaker::{CircuitBreaker, RawBreakerPermit, Transition};
use crate::bulkhead::Bulkhead;
use crate::chaos::{Chaos, ChaosDecision};
use crate::clock::{AnyClock, Clock};
use crate::limiter::RateLimiter;
use crate::metrics::{Event, EventSink, PolicyMetrics};
use crate::retry::RetryBudget;
use crate::rng::{mix64, SharedRng};
use crate::sync::{AtomicBool, Ordering};
use crate::{ConfigError, Outcome, RejectReason, Rejection};

use super::config::PolicyConfig;

/// Distinguishes policy objects, so a permit can tell which one it came from. A plain
/// std atomic on purpose: it is a process-wide id counter (loom atomics cannot be
/// statics), and only its uniqueness matters, which `fetch_add` gives at any ordering.
static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A named pipeline of resilience stages with one `acquire` and one `complete`.
///
/// Thread-safe: share it (`Arc<Policy>`) between threads. Built from a
/// [`PolicyConfig`], directly or through an [`Engine`](crate::engine::Engine).
///
/// ```
/// use breakwater::policy::{Policy, PolicyConfig};
/// use breakwater::bulkhead::BulkheadConfig;
///
/// let policy = Policy::new(
///     PolicyConfig::new("search").with_bulkhead(BulkheadConfig::new(2)),
/// ).unwrap();
/// let a = policy.acquire().unwrap();
/// let _b = policy.acquire().unwrap();
/// assert!(policy.acquire().is_err(), "the bulkhead is full");
/// a.success();
/// assert!(policy.acquire().is_ok());
/// ```
pub struct Policy {
    config: PolicyConfig,
    instance: u64,
    pub(super) breaker: Option<CircuitBreaker<AnyClock>>,
    pub(super) throttle: Option<ClientThrottle<AnyClock>>,
    pub(super) limiter: Option<RateLimiter<AnyClock>>,
    pub(super) bulkhead: Option<Bulkhead>,
    pub(super) adaptive: Option<AdaptiveLimiter<AnyClock>>,
    pub(super) chaos: Option<Chaos>,
    pub(super) budget: Option<RetryBudget<AnyClock>>,
    /// Set when the policy must time its calls itself (a timeout is configured).
    timing: Option<AnyClock>,
    pub(super) clock: AnyClock,
    pub(super) shared: Arc<PolicyShared>,
    pub(super) seeds: SharedRng,
    superseded: AtomicBool,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.config.name)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// What a policy shares with the listeners it installs on its stages: its name, its
/// counters, and the engine's event sink once attached. Listeners hold this, not the
/// policy, so no reference cycle keeps a dropped policy alive.
pub(crate) struct PolicyShared {
    pub(crate) name: String,
    pub(crate) metrics: PolicyMetrics,
    pub(crate) events: OnceCell<Arc<EventSink>>,
}

impl PolicyShared {
    #[cold]
    fn on_transition(&self, t: &Transition) {
        self.metrics.on_transition(t.to as u8);
        if let Some(sink) = self.events.get() {
            sink.emit(&Event::transition(
                &self.name,
                t.from as u8,
                t.to as u8,
                t.generation,
                t.at_nanos,
            ));
        }
    }

    #[cold]
    pub(crate) fn on_budget_exhausted(&self, at_nanos: u64) {
        self.metrics.on_budget_refused();
        if let Some(sink) = self.events.get() {
            sink.emit(&Event::BudgetExhausted {
                policy: &self.name,
                at_nanos,
            });
        }
    }
}

/// The plain-data form of a policy permit: what each stage granted. Used by the C ABI;
/// Rust code uses [`PolicyPermit`], which completes itself on drop.
#[must_use = "a permit must be completed, or the stages it holds stay taken"]
#[derive(Debug)]
pub struct RawPolicyPermit {
    pub(crate) instance: u64,
    pub(crate) breaker: Option<RawBreakerPermit>,
    pub(crate) adaptive: Option<RawAdaptivePermit>,
    pub(crate) bulkhead: bool,
    pub(crate) started_at: u64,
    pub(crate) chaos: ChaosDecision,
}

impl RawPolicyPermit {
    /// Whether fault injection decided that this call fails: skip the real call and
    /// complete with `Failure`.
    pub fn injected_failure(&self) -> bool {
        self.chaos.fail
    }

    /// Latency to inject before the call (zero for none).
    pub fn injected_latency(&self) -> Duration {
        self.chaos.latency
    }

    /// The policy object this permit belongs to.
    pub fn instance(&self) -> u64 {
        self.instance
    }
}

impl Policy {
    /// Builds a policy that reads the system clocks (coarse where milliseconds suffice,
    /// precise where a stage needs nanoseconds).
    pub fn new(config: PolicyConfig) -> Result<Policy, ConfigError> {
        Self::with_clock(config, AnyClock::Coarse)
    }

    /// Builds a policy whose every stage reads `clock` (a manual clock makes every rule
    /// deterministic in tests and across the C ABI).
    pub fn with_clock(config: PolicyConfig, clock: AnyClock) -> Result<Policy, ConfigError> {
        config.validate()?;
        let breaker = match &config.circuit_breaker {
            Some(c) => Some(
                CircuitBreaker::with_clock(c.clone(), clock.with_precision(false))
                    .map_err(|e| e.within("circuit_breaker"))?,
            ),
            None => None,
        };
        let throttle = match &config.throttle {
            Some(c) => Some(
                ClientThrottle::with_clock(*c, clock.with_precision(false))
                    .map_err(|e| e.within("throttle"))?,
            ),
            None => None,
        };
        let limiter = match &config.rate_limiter {
            Some(c) => Some(if clock.is_manual() {
                RateLimiter::with_clock(*c, clock.clone()).map_err(|e| e.within("rate_limiter"))?
            } else {
                RateLimiter::new(*c).map_err(|e| e.within("rate_limiter"))?
            }),
            None => None,
        };
        let bulkhead = match &config.bulkhead {
            Some(c) => Some(Bulkhead::new(*c).map_err(|e| e.within("bulkhead"))?),
            None => None,
        };
        let adaptive = match &config.adaptive {
            Some(c) => Some(
                AdaptiveLimiter::with_clock(*c, clock.with_precision(true))
                    .map_err(|e| e.within("adaptive"))?,
            ),
            None => None,
        };
        let chaos = match &config.chaos {
            Some(c) => Some(Chaos::new(*c).map_err(|e| e.within("chaos"))?),
            None => None,
        };
        let budget = match config.retry.as_ref().and_then(|r| r.retry.budget) {
            Some(b) => Some(
                RetryBudget::with_clock(b, clock.with_precision(false))
                    .map_err(|e| e.within("retry.budget"))?,
            ),
            None => None,
        };
        // The policy reads the precise clock itself when something needs a call's
        // duration: the timeout, or the adaptive limit's round-trip samples. One reading
        // at acquire and one at completion then serve both (the adaptive stage is handed
        // the time instead of reading its own clock twice more).
        let timing = (config.timeout.is_some() || config.adaptive.is_some())
            .then(|| clock.with_precision(true));
        let name_seed = config.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        let shared = Arc::new(PolicyShared {
            name: config.name.clone(),
            metrics: PolicyMetrics::new(),
            events: OnceCell::new(),
        });
        if let Some(b) = &breaker {
            let listener = shared.clone();
            b.set_transition_listener(move |t| listener.on_transition(t));
        }
        Ok(Policy {
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            breaker,
            throttle,
            limiter,
            bulkhead,
            adaptive,
            chaos,
            budget,
            timing,
            clock,
            shared,
            seeds: SharedRng::new(mix64(name_seed)),
            superseded: AtomicBool::new(false),
            config,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration this policy was built from.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// A number unique to this policy object in the process.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The clock the policy was built with.
    pub fn clock(&self) -> &AnyClock {
        &self.clock
    }

    /// Whether a reload replaced this policy object with a new configuration. A handle
    /// keeps working with the configuration it was built with; look the policy up again
    /// to follow the new one.
    pub fn is_superseded(&self) -> bool {
        // Relaxed: an advisory flag; it orders nothing else.
        self.superseded.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_superseded(&self) {
        // Relaxed: see `is_superseded`.
        self.superseded.store(true, Ordering::Relaxed);
    }

    /// The circuit breaker stage, if configured.
    pub fn breaker(&self) -> Option<&CircuitBreaker<AnyClock>> {
        self.breaker.as_ref()
    }

    /// The rate limiter stage, if configured.
    pub fn limiter(&self) -> Option<&RateLimiter<AnyClock>> {
        self.limiter.as_ref()
    }

    /// The bulkhead stage, if configured.
    pub fn bulkhead(&self) -> Option<&Bulkhead> {
        self.bulkhead.as_ref()
    }

    /// The adaptive limit stage, if configured.
    pub fn adaptive(&self) -> Option<&AdaptiveLimiter<AnyClock>> {
        self.adaptive.as_ref()
    }

    /// The client-side throttle stage, if configured.
    pub fn throttle(&self) -> Option<&ClientThrottle<AnyClock>> {
        self.throttle.as_ref()
    }

    /// The chaos stage, if configured (switch it on and off, re-tune it at run time).
    pub fn chaos(&self) -> Option<&Chaos> {
        self.chaos.as_ref()
    }

    /// The retry budget, if configured.
    pub fn retry_budget(&self) -> Option<&RetryBudget<AnyClock>> {
        self.budget.as_ref()
    }

    /// The policy's counters and latency histogram.
    #[inline]
    pub fn metrics(&self) -> &PolicyMetrics {
        &self.shared.metrics
    }

    /// Sends this policy's events (breaker transitions, budget exhaustion) to `sink`.
    /// Can be set once; returns false if the policy already reports to a sink.
    pub fn attach_events(&self, sink: Arc<EventSink>) -> bool {
        self.shared.events.set(sink).is_ok()
    }

    /// Asks every stage for a permit, at the default priority.
    #[inline]
    pub fn acquire(&self) -> Result<PolicyPermit<'_>, Rejection> {
        self.acquire_with(Priority::Default)
    }

    /// Asks every stage for a permit; `priority` matters to the adaptive limit.
    #[inline]
    pub fn acquire_with(&self, priority: Priority) -> Result<PolicyPermit<'_>, Rejection> {
        self.acquire_raw(priority).map(|raw| PolicyPermit {
            policy: self,
            raw: Some(raw),
        })
    }

    /// [`Policy::acquire_with`] returning the plain-data permit; it must be given back
    /// to [`Policy::complete_raw`] of this same policy exactly once.
    #[inline]
    pub fn acquire_raw(&self, priority: Priority) -> Result<RawPolicyPermit, Rejection> {
        match self.acquire_stages(priority) {
            Ok(permit) => {
                self.shared.metrics.on_permitted();
                Ok(permit)
            }
            Err(rejection) => {
                self.shared.metrics.on_rejected(rejection.reason);
                Err(rejection)
            }
        }
    }

    #[inline]
    fn acquire_stages(&self, priority: Priority) -> Result<RawPolicyPermit, Rejection> {
        let breaker = match &self.breaker {
            Some(b) => Some(b.try_acquire_raw()?),
            None => None,
        };
        let mut permit = RawPolicyPermit {
            instance: self.instance,
            breaker,
            adaptive: None,
            bulkhead: false,
            started_at: 0,
            chaos: ChaosDecision::default(),
        };
        let mut token = None;
        if let Err(rejection) = self.acquire_inner(priority, &mut permit, &mut token) {
            if let (Some(l), Some(t)) = (&self.limiter, token) {
                l.cancel_raw(t);
            }
            self.release(permit);
            return Err(rejection);
        }
        if permit.started_at == 0 {
            if let Some(clock) = &self.timing {
                permit.started_at = clock.now();
            }
        }
        Ok(permit)
    }

    /// Stages 2–4; on error, `permit` and `token` hold exactly what must be released.
    #[inline]
    fn acquire_inner(
        &self,
        priority: Priority,
        permit: &mut RawPolicyPermit,
        token: &mut Option<crate::limiter::RawReservation>,
    ) -> Result<(), Rejection> {
        if let Some(t) = &self.throttle {
            t.try_acquire()?;
        }
        if let Some(l) = &self.limiter {
            *token = Some(l.try_acquire_raw()?);
        }
        if let Some(b) = &self.bulkhead {
            let max_wait = b.config().max_wait;
            if max_wait.is_zero() {
                b.try_acquire_raw()?;
            } else {
                b.acquire_raw(max_wait)?;
            }
            permit.bulkhead = true;
        }
        if let Some(a) = &self.adaptive {
            // `timing` is always set with an adaptive stage; this reading also starts
            // the call's own timing.
            let now = self.timing.as_ref().map_or(0, Clock::now);
            permit.started_at = now;
            permit.adaptive = Some(a.try_acquire_raw_at(priority, now)?);
        }
        if let Some(c) = &self.chaos {
            let decision = c.decide();
            if decision.reject {
                return Err(Rejection::new(RejectReason::Injected, None));
            }
            permit.chaos = decision;
        }
        Ok(())
    }

    /// Gives back what a permit holds without judging the dependency (`Ignored`).
    #[cold]
    fn release(&self, permit: RawPolicyPermit) {
        if let (Some(a), Some(p)) = (&self.adaptive, permit.adaptive) {
            a.complete_raw(p, Outcome::Ignored, None);
        }
        if permit.bulkhead {
            if let Some(b) = &self.bulkhead {
                b.release_raw();
            }
        }
        if let (Some(b), Some(p)) = (&self.breaker, permit.breaker) {
            b.complete_raw(p, Outcome::Ignored, None);
        }
    }

    /// Reports how the call of `permit` went. `duration` is the call's duration if the
    /// caller measured it; otherwise the policy uses its own measurement when it has
    /// one (it times calls itself when a `timeout` is configured). A call longer than
    /// `timeout` is recorded as `Timeout`.
    ///
    /// A permit of another policy object (for example of the configuration a reload
    /// replaced) is counted in no stage of this one and ignored.
    #[inline]
    pub fn complete_raw(
        &self,
        permit: RawPolicyPermit,
        outcome: Outcome,
        duration: Option<Duration>,
    ) {
        if permit.instance != self.instance {
            return;
        }
        let duration = duration.or_else(|| match (&self.timing, permit.started_at) {
            (Some(clock), start) if start != 0 => {
                Some(Duration::from_nanos(clock.now().saturating_sub(start)))
            }
            _ => None,
        });
        let outcome = match duration {
            Some(elapsed) => outcome.with_deadline(elapsed, self.config.timeout),
            None => outcome,
        };
        let slow = match (duration, &self.config.circuit_breaker) {
            (Some(d), Some(c)) => c.is_slow(d),
            _ => false,
        };
        if let (Some(b), Some(p)) = (&self.breaker, permit.breaker) {
            b.complete_raw(p, outcome, duration);
        }
        if let (Some(a), Some(p)) = (&self.adaptive, permit.adaptive) {
            a.complete_raw(p, outcome, duration);
        }
        if outcome == Outcome::Success {
            if let Some(t) = &self.throttle {
                t.record_accepted();
            }
        }
        if permit.bulkhead {
            if let Some(b) = &self.bulkhead {
                b.release_raw();
            }
        }
        self.shared.metrics.on_complete(
            outcome,
            duration.map(crate::clock::duration_to_nanos),
            slow,
        );
    }
}

/// A permit of every stage of a [`Policy`]. Complete it with [`success`](Self::success),
/// [`failure`](Self::failure) or [`record`](Self::record); dropped without, it reports
/// `Ignored` and frees everything it holds.
#[must_use = "a permit must be completed with success(), failure() or record()"]
#[derive(Debug)]
pub struct PolicyPermit<'a> {
    policy: &'a Policy,
    raw: Option<RawPolicyPermit>,
}

impl PolicyPermit<'_> {
    /// Whether fault injection decided that this call fails (skip the real call).
    pub fn injected_failure(&self) -> bool {
        self.raw.as_ref().is_some_and(|r| r.chaos.fail)
    }

    /// Latency to inject before the call.
    pub fn injected_latency(&self) -> Duration {
        self.raw
            .as_ref()
            .map_or(Duration::ZERO, |r| r.chaos.latency)
    }

    /// The call succeeded.
    pub fn success(self) {
        self.record(Outcome::Success)
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(Outcome::Failure)
    }

    /// The call ended with `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.policy.complete_raw(raw, outcome, None);
        }
    }

    /// The call ended with `outcome` after `duration`.
    pub fn record_with_duration(mut self, outcome: Outcome, duration: Duration) {
        if let Some(raw) = self.raw.take() {
            self.policy.complete_raw(raw, outcome, Some(duration));
        }
    }
}

impl Drop for PolicyPermit<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.policy.complete_raw(raw, Outcome::Ignored, None);
        }
    }
}
