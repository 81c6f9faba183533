//! The stages built from one configuration of a policy: what a [`Policy`] handle points
//! at, and what a reload replaces.
//!
//! Acquire order, outermost first (normative, docs/design.md §3):
//!
//! 0. per-key limits (keyed acquires only) — a noisy key is refused before it spends
//!    a breaker probe or the shared quota;
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
//!
//! [`Policy`]: super::Policy

use std::time::Duration;

use crate::adaptive::{AdaptiveLimiter, ClientThrottle, Priority};
use crate::breaker::CircuitBreaker;
use crate::bulkhead::Bulkhead;
use crate::chaos::Chaos;
use crate::clock::{AnyClock, Clock};
use crate::fleet::Scope;
use crate::keyed::KeyedLimiter;
use crate::limiter::RateLimiter;
use crate::metrics::PolicyMetrics;
use crate::retry::RetryBudget;
use crate::sync::Arc;
use crate::{ConfigError, Outcome, RejectReason, Rejection};

use super::config::PolicyConfig;
use super::owned::NoWait;
use super::pipeline::{held, PolicyShared, RawPolicyPermit};

/// The stages a lean policy has, as bits of [`Stages::shape`]: one load and one
/// branch tell an empty policy from one with stages, and a lean one from a general one.
mod shape {
    /// A circuit breaker.
    pub(super) const BREAKER: u8 = 1;
    /// A local rate limiter.
    pub(super) const LIMITER: u8 = 1 << 1;
    /// A bulkhead that never waits.
    pub(super) const BULKHEAD: u8 = 1 << 2;
    /// Anything else (another stage, a waiting bulkhead, timing): the general path.
    pub(super) const GENERAL: u8 = 1 << 3;
}

/// Distinguishes stage sets, so a permit can tell which one issued it. A plain std
/// atomic on purpose: it is a process-wide id counter (loom atomics cannot be statics),
/// and only its uniqueness matters, which `fetch_add` gives at any ordering.
static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The rate-limit tokens an acquire took, to give back if a later stage refuses.
#[derive(Default)]
struct Tokens {
    local: Option<crate::limiter::RawReservation>,
    #[cfg(all(feature = "fleet", not(loom)))]
    fleet: Option<crate::fleet::FleetToken>,
}

/// Every stage of one configuration, with the state they have gathered since it was
/// installed.
pub(crate) struct Stages {
    /// Read on reloads and snapshots only, so kept out of line.
    pub(super) config: Box<PolicyConfig>,
    pub(super) instance: u64,
    pub(super) breaker: Option<CircuitBreaker<AnyClock>>,
    // The stages most policies lack are boxed, so an idle policy without them costs a
    // pointer each rather than their size (a throttle alone is over 1 KiB).
    pub(super) throttle: Option<Box<ClientThrottle<AnyClock>>>,
    /// Boxed too: its schedule and refund ledger sit on cache lines of their own (384
    /// bytes), and the box's address shares a line with the other stages', so a limiter
    /// costs one more load of a line already read.
    pub(super) limiter: Option<Box<RateLimiter<AnyClock>>>,
    /// The fleet limits: the rate limiter when its scope is the fleet (in place of
    /// `limiter`), and `fleet.max_concurrent`.
    #[cfg(all(feature = "fleet", not(loom)))]
    pub(super) fleet_limiter: Option<Box<crate::fleet::FleetStage>>,
    pub(super) bulkhead: Option<Bulkhead>,
    pub(super) adaptive: Option<Box<AdaptiveLimiter<AnyClock>>>,
    pub(super) chaos: Option<Box<Chaos>>,
    pub(super) budget: Option<Box<RetryBudget<AnyClock>>>,
    /// Stage 0, asked only by keyed acquires; boxed like the other optional stages.
    pub(super) keyed: Option<Box<KeyedLimiter<AnyClock>>>,
    /// Set when the policy must time its calls itself (a timeout or an adaptive limit).
    timing: Option<AnyClock>,
    /// Which path acquire and complete take ([`shape`] bits): 0 for no stage at all;
    /// without `GENERAL`, the lean path (at most a breaker, a rate limiter and a
    /// bulkhead that never waits, and no timing; see [`Stages::acquire`]).
    shape: u8,
}

impl Stages {
    /// Builds every configured stage on `clock`, reporting breaker transitions to
    /// `shared`.
    pub(super) fn build(
        config: PolicyConfig,
        clock: &AnyClock,
        shared: &Arc<PolicyShared>,
    ) -> Result<Arc<Stages>, ConfigError> {
        config.validate()?;
        // Host scope: the breaker, limiter and bulkhead state blocks live in the segment
        // (see `shm`); everything else stays in this process.
        let segment = crate::shm::attach(&config, clock)?;
        let segment = segment.as_ref();
        let breaker = match &config.circuit_breaker {
            Some(c) => Some(
                CircuitBreaker::placed(c.clone(), clock.coarse(), segment)
                    .map_err(|e| e.within("circuit_breaker"))?,
            ),
            None => None,
        };
        let throttle = match &config.throttle {
            Some(c) => Some(
                ClientThrottle::with_clock(*c, clock.coarse()).map_err(|e| e.within("throttle"))?,
            ),
            None => None,
        };
        #[cfg(all(feature = "fleet", not(loom)))]
        let fleet_limiter = crate::fleet::FleetStage::build(&config, clock.precise())?;
        #[cfg(not(all(feature = "fleet", not(loom))))]
        if config.rate_limiter.is_some_and(|c| c.scope == Scope::Fleet) {
            return Err(ConfigError::new(
                "rate_limiter.scope",
                "this build of breakwater has no fleet support (the cargo feature `fleet`)",
            ));
        }
        let limiter = match &config.rate_limiter {
            Some(c) if c.scope == Scope::Fleet => None,
            // On the system clocks the limiter picks coarse or precise time by its rule;
            // any other clock it reads as given (both readings).
            Some(c) => Some(if clock.is_system() {
                c.validate().map_err(|e| e.within("rate_limiter"))?;
                RateLimiter::placed(
                    *c,
                    RateLimiter::clock_for_scope(c, segment.is_some()),
                    segment,
                )
                .map_err(|e| e.within("rate_limiter"))?
            } else {
                RateLimiter::with_clock(*c, clock.clone()).map_err(|e| e.within("rate_limiter"))?
            }),
            None => None,
        };
        let bulkhead = match &config.bulkhead {
            Some(c) => Some(
                Bulkhead::placed(*c, clock.precise(), segment).map_err(|e| e.within("bulkhead"))?,
            ),
            None => None,
        };
        let adaptive = match &config.adaptive {
            Some(c) => Some(
                AdaptiveLimiter::with_clock(*c, clock.precise())
                    .map_err(|e| e.within("adaptive"))?,
            ),
            None => None,
        };
        let chaos = match &config.chaos {
            Some(c) => Some(Chaos::new(*c).map_err(|e| e.within("chaos"))?),
            None => None,
        };
        // Per-key limits stay in this process: on the system clocks they pick coarse
        // time or its cheapest precise clock by their rule (`KeyedLimiter::clock_for`);
        // any other clock they read as given.
        let keyed = match &config.per_key {
            Some(c) => Some(
                KeyedLimiter::with_clock(
                    **c,
                    if clock.is_system() {
                        KeyedLimiter::clock_for(c)
                    } else {
                        clock.clone()
                    },
                )
                .map_err(|e| e.within("per_key"))?,
            ),
            None => None,
        };
        let budget = match config.retry.as_ref().and_then(|r| r.retry.budget) {
            Some(b) => Some(
                RetryBudget::with_clock(b, clock.coarse()).map_err(|e| e.within("retry.budget"))?,
            ),
            None => None,
        };
        // The policy reads the precise clock itself when something needs a call's
        // duration: the timeout, the adaptive limit's round-trip samples, or the
        // breaker's slow-call rule. One reading at acquire and one at completion then
        // serve all (the adaptive stage is handed the time instead of reading its own
        // clock twice more), and the policy's `slow` counter and latency histogram see
        // the same duration the breaker judged (without it they missed every slow call
        // of a policy without a timeout).
        let slow_rule = config
            .circuit_breaker
            .as_ref()
            .is_some_and(|c| c.slow_call_rate_threshold.is_some());
        let timing = (config.timeout.is_some() || config.adaptive.is_some() || slow_rule)
            .then(|| clock.precise());
        // A fleet-wide limiter and a per-key stage take the general path (the lean one
        // knows the local limiter only, and releases no key's slot).
        #[cfg(all(feature = "fleet", not(loom)))]
        let fleet_free = fleet_limiter.is_none();
        #[cfg(not(all(feature = "fleet", not(loom))))]
        let fleet_free = true;
        let lean = fleet_free
            && keyed.is_none()
            && throttle.is_none()
            && adaptive.is_none()
            && chaos.is_none()
            && timing.is_none()
            && bulkhead
                .as_ref()
                .is_none_or(|b: &Bulkhead| b.config().max_wait.is_zero());
        let shape = if lean {
            (u8::from(breaker.is_some()) * shape::BREAKER)
                | (u8::from(limiter.is_some()) * shape::LIMITER)
                | (u8::from(bulkhead.is_some()) * shape::BULKHEAD)
        } else {
            shape::GENERAL
        };
        if let Some(b) = &breaker {
            let listener = shared.clone();
            b.set_transition_listener(move |t| listener.on_transition(t));
        }
        Ok(Arc::new(Stages {
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            breaker,
            throttle: throttle.map(Box::new),
            limiter: limiter.map(Box::new),
            #[cfg(all(feature = "fleet", not(loom)))]
            fleet_limiter,
            bulkhead,
            adaptive: adaptive.map(Box::new),
            chaos: chaos.map(Box::new),
            budget: budget.map(Box::new),
            keyed: keyed.map(Box::new),
            timing,
            shape,
            config: Box::new(config),
        }))
    }

    /// Asks every stage for a permit and counts the answer in `shared`'s metrics; a
    /// load-shed rejection is also emitted as an event (read `clock` for its time).
    ///
    /// A policy without stages only counts the call. Most others are a breaker, a rate
    /// limiter and a bulkhead at most: they take the lean path, small enough to inline
    /// into the caller, where the permit's fields of the stages it lacks are constants
    /// the compiler folds away. Any other stage sends the call to the general path, out
    /// of line; only it can shed load, so only it reports.
    #[inline(always)]
    pub(super) fn acquire(
        &self,
        priority: Priority,
        shared: &PolicyShared,
        clock: &AnyClock,
    ) -> Result<RawPolicyPermit, Rejection> {
        self.acquire_then(priority, shared, clock, Ok, Err)
    }

    /// [`acquire`](Self::acquire) handing the answer to `ok` or `err` on the path that
    /// produced it, instead of merging the paths into one `Result`: the lean and empty
    /// paths' permit then never has to be built in memory (a caller such as the C ABI
    /// writes it straight to its destination).
    #[inline(always)]
    pub(super) fn acquire_then<R>(
        &self,
        priority: Priority,
        shared: &PolicyShared,
        clock: &AnyClock,
        ok: impl FnOnce(RawPolicyPermit) -> R,
        err: impl FnOnce(Rejection) -> R,
    ) -> R {
        // Each path counts its own answer, so the permit is built once, in place.
        if self.shape == 0 {
            shared.metrics.on_permitted();
            ok(RawPolicyPermit::bare(self.instance))
        } else if self.shape & shape::GENERAL == 0 {
            match self.acquire_lean(&shared.metrics) {
                Ok(permit) => ok(permit),
                Err(rejection) => err(rejection),
            }
        } else {
            match self.acquire_general(priority, shared, clock) {
                // Rebuilt field by field: the general path writes its answer through a
                // pointer, and a permit whose address escapes stays in memory.
                Ok(permit) => ok(permit.rebuilt()),
                Err(rejection) => err(rejection),
            }
        }
    }

    /// Breaker, rate limiter, bulkhead (without a wait), each only if configured; a
    /// rejection gives back what the earlier ones granted, out of line.
    #[inline(always)]
    fn acquire_lean(&self, metrics: &PolicyMetrics) -> Result<RawPolicyPermit, Rejection> {
        // Each grant goes into the permit where it is made: an `Option` per stage,
        // merged at the end, cost a branch-free select per field (21 instructions).
        let mut permit = RawPolicyPermit::bare(self.instance);
        if let Some(b) = &self.breaker {
            match b.try_acquire_raw() {
                Ok(granted) => permit.hold_breaker(granted),
                Err(rejection) => return Err(self.unwind(None, None, rejection, metrics)),
            }
        }
        // The limiter's token stays where the limiter wrote it; it is wrapped for the
        // unwinding only when the bulkhead refuses (wrapped up front, it was copied on
        // every call).
        match &self.limiter {
            Some(l) => {
                let token = match l.try_acquire_raw() {
                    Ok(token) => token,
                    Err(rejection) => {
                        return Err(self.unwind(permit.breaker(), None, rejection, metrics))
                    }
                };
                if let Err(rejection) = self.hold_bulkhead(&mut permit) {
                    return Err(self.unwind(permit.breaker(), Some(token), rejection, metrics));
                }
            }
            None => {
                if let Err(rejection) = self.hold_bulkhead(&mut permit) {
                    return Err(self.unwind(permit.breaker(), None, rejection, metrics));
                }
            }
        }
        metrics.on_permitted();
        Ok(permit)
    }

    /// The bulkhead's slot (one that never waits), if the policy has a bulkhead.
    #[inline(always)]
    fn hold_bulkhead(&self, permit: &mut RawPolicyPermit) -> Result<(), Rejection> {
        if let Some(b) = &self.bulkhead {
            // The flag form: inlined, where the `Result` form was a call answering
            // through memory.
            if !b.try_take() {
                return Err(Bulkhead::<AnyClock>::full());
            }
            permit.held |= held::BULKHEAD;
        }
        Ok(())
    }

    /// A lean acquire refused: the limiter's token goes back exactly, the breaker permit
    /// completes as `Ignored`, and the rejection is counted.
    #[cold]
    #[inline(never)]
    fn unwind(
        &self,
        breaker: Option<crate::breaker::RawBreakerPermit>,
        token: Option<crate::limiter::RawReservation>,
        rejection: Rejection,
        metrics: &PolicyMetrics,
    ) -> Rejection {
        metrics.on_rejected(rejection.reason);
        if let (Some(l), Some(t)) = (&self.limiter, token) {
            l.cancel_raw(t);
        }
        if let (Some(b), Some(p)) = (&self.breaker, breaker) {
            b.complete_raw(p, Outcome::Ignored, None);
        }
        rejection
    }

    /// Every stage, in the normative order; counts the answer, and emits a load-shed
    /// rejection.
    #[inline(never)]
    fn acquire_general(
        &self,
        priority: Priority,
        shared: &PolicyShared,
        clock: &AnyClock,
    ) -> Result<RawPolicyPermit, Rejection> {
        match self.acquire_stages(priority, Duration::MAX) {
            Ok(permit) => {
                shared.metrics.on_permitted();
                Ok(permit)
            }
            Err(rejection) => {
                shared.metrics.on_rejected(rejection.reason);
                if rejection.reason == RejectReason::LoadShed {
                    shared.on_load_shed(&rejection, clock);
                }
                Err(rejection)
            }
        }
    }

    /// Asks the per-key stage for `key`, then every other stage, and counts the
    /// answer as [`acquire`](Self::acquire) does. A later refusal cancels the key's
    /// admission.
    #[inline]
    pub(super) fn acquire_keyed(
        &self,
        key: &[u8],
        priority: Priority,
        shared: &PolicyShared,
        clock: &AnyClock,
    ) -> Result<RawPolicyPermit, Rejection> {
        let Some(keyed) = &self.keyed else {
            return self.acquire(priority, shared, clock);
        };
        let slot = match keyed.try_acquire_raw(key) {
            Ok(slot) => slot,
            Err(rejection) => {
                shared.metrics.on_rejected(rejection.reason);
                return Err(rejection);
            }
        };
        match self.acquire(priority, shared, clock) {
            Ok(mut permit) => {
                permit.keyed = Some(slot);
                Ok(permit)
            }
            Err(rejection) => {
                keyed.cancel_raw(slot);
                Err(rejection)
            }
        }
    }

    /// For a caller that waits for a full bulkhead itself, so that it can be cancelled
    /// (an async task, a Go `context`): asks the per-key stage for `key` when given (as
    /// [`acquire_keyed`](Self::acquire_keyed)), then every stage, with the bulkhead
    /// waiting at most `wait` (zero: never; never past its configured `max_wait`). When
    /// the bulkhead's configuration allows a wait and `count_full` is false, its refusal
    /// is left uncounted and answered as [`NoWait::BulkheadFull`]: the caller asks again
    /// after waiting, or gives up, and counts the call once — by asking a last time
    /// with `count_full`, or with `Policy::count_rejection`, or not at all when it was
    /// cancelled. Every other answer is counted (and a load-shed one emitted) as
    /// [`acquire`](Self::acquire) does.
    pub(super) fn acquire_within(
        &self,
        key: Option<&[u8]>,
        priority: Priority,
        wait: Duration,
        count_full: bool,
        shared: &PolicyShared,
        clock: &AnyClock,
    ) -> Result<RawPolicyPermit, NoWait> {
        let slot = match (key, &self.keyed) {
            (Some(key), Some(keyed)) => match keyed.try_acquire_raw(key) {
                Ok(slot) => Some(slot),
                Err(rejection) => {
                    shared.metrics.on_rejected(rejection.reason);
                    return Err(NoWait::Rejected(rejection));
                }
            },
            _ => None,
        };
        let rejection = match self.acquire_stages(priority, wait) {
            Ok(mut permit) => {
                permit.keyed = slot;
                shared.metrics.on_permitted();
                return Ok(permit);
            }
            Err(rejection) => rejection,
        };
        if let (Some(keyed), Some(slot)) = (&self.keyed, slot) {
            keyed.cancel_raw(slot);
        }
        let max_wait = self
            .bulkhead
            .as_ref()
            .map_or(Duration::ZERO, |b| b.config().max_wait);
        if rejection.reason == RejectReason::BulkheadFull && !max_wait.is_zero() && !count_full {
            return Err(NoWait::BulkheadFull { max_wait });
        }
        shared.metrics.on_rejected(rejection.reason);
        if rejection.reason == RejectReason::LoadShed {
            shared.on_load_shed(&rejection, clock);
        }
        Err(NoWait::Rejected(rejection))
    }

    /// A full bulkhead whose configuration allows a wait blocks the thread for it, but
    /// for at most `wait_cap`: `Duration::MAX` for the synchronous API, zero or a slice
    /// for a caller that waits in cancellable steps (`acquire_within`).
    #[inline(always)]
    fn acquire_stages(
        &self,
        priority: Priority,
        wait_cap: Duration,
    ) -> Result<RawPolicyPermit, Rejection> {
        let breaker = match &self.breaker {
            Some(b) => Some(b.try_acquire_raw()?),
            None => None,
        };
        let mut permit = RawPolicyPermit::bare(self.instance);
        if let Some(b) = breaker {
            permit.hold_breaker(b);
        }
        let mut token = Tokens::default();
        if let Err(rejection) = self.acquire_inner(priority, wait_cap, &mut permit, &mut token) {
            if let (Some(l), Some(t)) = (&self.limiter, token.local) {
                l.cancel_raw(t);
            }
            #[cfg(all(feature = "fleet", not(loom)))]
            if let (Some(l), Some(t)) = (&self.fleet_limiter, token.fleet) {
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
    /// Inlined into each caller, so a constant `wait_cap` folds away (left to the
    /// compiler, the three callers got one shared copy: 34 more instructions per
    /// general acquire+complete under callgrind).
    #[inline(always)]
    fn acquire_inner(
        &self,
        priority: Priority,
        wait_cap: Duration,
        permit: &mut RawPolicyPermit,
        token: &mut Tokens,
    ) -> Result<(), Rejection> {
        if let Some(t) = &self.throttle {
            t.try_acquire()?;
        }
        if let Some(l) = &self.limiter {
            token.local = Some(l.try_acquire_raw()?);
        }
        #[cfg(all(feature = "fleet", not(loom)))]
        if let Some(l) = &self.fleet_limiter {
            token.fleet = Some(l.try_acquire_raw()?);
        }
        if let Some(b) = &self.bulkhead {
            let max_wait = b.config().max_wait.min(wait_cap);
            if max_wait.is_zero() {
                b.try_acquire_raw()?;
            } else {
                b.try_acquire_raw_for(max_wait)?;
            }
            permit.held |= held::BULKHEAD;
        }
        if let Some(a) = &self.adaptive {
            // `timing` is always set with an adaptive stage; this reading also starts
            // the call's own timing.
            let now = self.timing.as_ref().map_or(0, Clock::now);
            permit.started_at = now;
            permit.hold_adaptive(a.try_acquire_raw_at(priority, now)?);
        }
        if let Some(c) = &self.chaos {
            let decision = c.decide();
            if decision.reject {
                return Err(Rejection::new(RejectReason::Injected, None));
            }
            permit.held |= u8::from(decision.fail) * held::INJECTED_FAILURE;
            permit.injected_latency_ns = crate::clock::duration_to_nanos(decision.latency);
        }
        Ok(())
    }

    /// The fleet rate limiter's state, if the policy has one.
    pub(super) fn fleet_limiter_snapshot(&self) -> Option<crate::fleet::FleetLimiterSnapshot> {
        #[cfg(all(feature = "fleet", not(loom)))]
        return self.fleet_limiter.as_ref().map(|l| l.snapshot());
        #[cfg(not(all(feature = "fleet", not(loom))))]
        None
    }

    /// Returns the permit's bulkhead slot, if it holds one: by one fetch-sub for a Rust
    /// permit (completed once by construction), by the checked release for words that
    /// came back through the C ABI ([`held::COPIED`](super::pipeline::held::COPIED)).
    #[inline(always)]
    fn return_bulkhead_slot(&self, permit: &RawPolicyPermit) {
        if permit.holds_bulkhead() {
            if let Some(b) = &self.bulkhead {
                if permit.copied() {
                    b.release_raw();
                } else {
                    b.release_held();
                }
            }
        }
    }

    /// Gives back what a permit holds without judging the dependency (`Ignored`).
    #[cold]
    fn release(&self, permit: RawPolicyPermit) {
        if let (Some(a), Some(p)) = (&self.adaptive, permit.adaptive()) {
            a.complete_raw(p, Outcome::Ignored, None);
        }
        self.return_bulkhead_slot(&permit);
        if let (Some(b), Some(p)) = (&self.breaker, permit.breaker()) {
            b.complete_raw(p, Outcome::Ignored, None);
        }
        if let (Some(k), Some(slot)) = (&self.keyed, permit.keyed) {
            k.release_raw(slot);
        }
    }

    /// Completes a permit these stages issued (the caller checked its instance) and
    /// counts it in `metrics`. Without stages, only the count; the lean path (see
    /// [`acquire`](Self::acquire)) when the stages are lean and the caller measured no
    /// duration; the general one otherwise.
    #[inline(always)]
    pub(super) fn complete(
        &self,
        permit: RawPolicyPermit,
        outcome: Outcome,
        duration: Option<Duration>,
        metrics: &PolicyMetrics,
    ) {
        if self.shape & shape::GENERAL == 0 && duration.is_none() {
            if self.shape == 0 {
                metrics.on_complete(outcome, None, false);
            } else {
                self.complete_lean(permit, outcome, metrics);
            }
        } else {
            // The permit crosses to the out-of-line path as separate values, built on
            // this branch only: handed over whole (by address, as a large value is), it
            // had to be in memory on every path, 20 stores more per empty or lean call.
            self.complete_general(
                (permit.breaker_generation, permit.breaker_started),
                (permit.adaptive_start, permit.started_at),
                u64::from(permit.adaptive_in_flight)
                    | u64::from(permit.held) << 32
                    | (permit.adaptive_priority as u64) << 40,
                permit.keyed,
                (outcome, duration),
                metrics,
            );
        }
    }

    /// No duration and no timing: the outcome stands as given, and no call is slow.
    #[inline(always)]
    fn complete_lean(&self, permit: RawPolicyPermit, outcome: Outcome, metrics: &PolicyMetrics) {
        if let (Some(b), Some(p)) = (&self.breaker, permit.breaker()) {
            b.complete_raw(p, outcome, None);
        }
        self.return_bulkhead_slot(&permit);
        metrics.on_complete(outcome, None, false);
    }

    /// Every stage, with the call's duration (given, or measured here). Takes the
    /// permit's fields (see `complete`): the breaker's generation and start, the
    /// adaptive start and the call's start, then the adaptive in-flight count (bits
    /// 0–31), the held bits (32–39) and the adaptive priority (40–47).
    #[inline(never)]
    fn complete_general(
        &self,
        (breaker_generation, breaker_started): (u64, u64),
        (adaptive_start, started_at): (u64, u64),
        small: u64,
        keyed: Option<crate::keyed::KeySlot>,
        (outcome, duration): (Outcome, Option<Duration>),
        metrics: &PolicyMetrics,
    ) {
        let permit = RawPolicyPermit {
            instance: self.instance,
            breaker_generation,
            breaker_started,
            adaptive_start,
            started_at,
            // Completion reads nothing of the chaos decision but the failure bit.
            injected_latency_ns: 0,
            keyed,
            adaptive_in_flight: small as u32,
            held: (small >> 32) as u8,
            adaptive_priority: Priority::from_code((small >> 40) as u8 as i64).unwrap_or_default(),
        };
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
        if let (Some(b), Some(p)) = (&self.breaker, permit.breaker()) {
            b.complete_raw(p, outcome, duration);
        }
        if let (Some(a), Some(p)) = (&self.adaptive, permit.adaptive()) {
            a.complete_raw(p, outcome, duration);
        }
        if outcome == Outcome::Success {
            if let Some(t) = &self.throttle {
                t.record_accepted();
            }
        }
        self.return_bulkhead_slot(&permit);
        // Every permit these stages issued took one fleet admission (see src/fleet/stage.rs).
        #[cfg(all(feature = "fleet", not(loom)))]
        if let Some(f) = &self.fleet_limiter {
            f.complete();
        }
        if let (Some(k), Some(slot)) = (&self.keyed, permit.keyed) {
            k.release_raw(slot);
        }
        metrics.on_complete(outcome, duration.map(crate::clock::duration_to_nanos), slow);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::adaptive::{AdaptiveConfig, Priority};
    use crate::breaker::BreakerConfig;
    use crate::bulkhead::BulkheadConfig;
    use crate::clock::{AnyClock, ManualClock};
    use crate::policy::{Policy, PolicyConfig};
    use crate::Outcome;
    use std::time::Duration;

    /// The general path's completion gets the permit as separate values (see
    /// `Stages::complete`): every stage it holds must still be given back, with the
    /// priority and the in-flight count it was admitted with.
    #[test]
    fn a_general_completion_gives_back_every_stage_it_holds() {
        let clock = ManualClock::new();
        let config = PolicyConfig::new("general")
            .with_circuit_breaker(BreakerConfig::default())
            .with_bulkhead(BulkheadConfig::new(4))
            .with_adaptive(AdaptiveConfig::default());
        let policy = Policy::with_clock(config, AnyClock::Manual(clock.clone())).unwrap();
        let held = policy.acquire_raw(Priority::Critical).unwrap();
        let timed = policy.acquire_raw(Priority::Sheddable).unwrap();
        let untimed = policy.acquire_raw(Priority::Default).unwrap();
        assert_eq!(policy.adaptive().unwrap().in_flight(), 3);
        clock.advance(Duration::from_millis(3));
        policy.complete_raw(timed, Outcome::Success, Some(Duration::from_millis(2)));
        policy.complete_raw(untimed, Outcome::Failure, None);
        assert_eq!(policy.adaptive().unwrap().in_flight(), 1);
        assert_eq!(policy.bulkhead().unwrap().snapshot().in_flight, 1);
        policy.complete_raw(held, Outcome::Ignored, None);
        assert_eq!(policy.adaptive().unwrap().in_flight(), 0);
        assert_eq!(policy.bulkhead().unwrap().snapshot().in_flight, 0);
        let breaker = policy.breaker().unwrap().snapshot();
        assert_eq!((breaker.calls, breaker.failures), (2, 1));
        let m = policy.metrics().snapshot();
        assert_eq!((m.permitted, m.success, m.failure, m.ignored), (3, 1, 1, 1));
        assert_eq!(
            m.latency.count, 3,
            "every call timed (the policy times it itself)"
        );
        assert_eq!(
            m.latency.sum_nanos,
            2_000_000 + 3_000_000 + 3_000_000,
            "the given duration, then the policy's own measurements"
        );
    }
}
