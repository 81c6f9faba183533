//! [`Policy`]: the handle to a named pipeline, which follows reloads, and its permits.
//!
//! The stages themselves (their order and what a rejection gives back) live in
//! `stages.rs`; this file is the indirection that lets an engine replace them under a
//! handle that callers keep.
//!
//! # Following reloads
//!
//! A `Policy` points at the [`Stages`] of the configuration in force through one atomic
//! pointer. `acquire` loads it (one `Acquire` load, a plain load on x86 and a
//! dependency-ordered one on ARM) and asks those stages; the permit remembers which
//! stages issued it (`RawPolicyPermit::instance`) and completes against them, even after
//! a reload installed others. A reload that changes the configuration builds new stages
//! and stores their address ([`Policy::install`]); the next acquire on any handle uses
//! them.
//!
//! # Reclaiming replaced stages
//!
//! The handle owns every stage set it has had that may still be reached (`versions`,
//! one `Arc` each); the pointer always points into it. Stages are dropped only through
//! `&mut Policy`: with the handle itself, or by [`Policy::reclaim_replaced`], which the
//! engine calls on its own `Arc` through `Arc::get_mut` — that is, only when no other
//! `Arc` or `Weak` of the handle exists anywhere (a Rust clone, a C `bw_policy*`), so no
//! acquire, permit borrow or `&Stages` can be in use. The engine tries it at every
//! reload and insert, under its registry's write lock. So replaced stages are freed at
//! the first reload after the last outside handle was dropped, or with the engine; a
//! caller that keeps a handle for good keeps each configuration replaced under it until
//! it lets go. Acquire pays nothing for this: no reference count, no fence, no lock.
//!
//! What a retained stage set costs, per changing reload: a few hundred bytes of stage
//! structs, plus the breaker's window (one slot per call of a count window, one bucket
//! per time slice), plus a per-key table if it has one (29–59 bytes per key, allocated
//! up front for `max_keys`: 3–6 MB at 100 000 keys) with its heavy-hitter sketch and
//! the rejection tallies of the threads that refused there (at most 32 KiB each). Its
//! fleet stages are the only part that does work: [`Policy::install`] retires the
//! replaced set, so their background threads stop (the rate limit's at once, since no
//! acquire reaches it again; the lease thread once the slots of the permits still out
//! are given back) and close their Redis connections. What stays is their memory,
//! until reclaimed.

use std::time::Duration;

use crate::sync::OnceCell;

use crate::adaptive::{AdaptiveLimiter, ClientThrottle, Priority, RawAdaptivePermit};
use crate::breaker::{CircuitBreaker, RawBreakerPermit, Transition};
use crate::bulkhead::Bulkhead;
use crate::chaos::Chaos;
use crate::clock::AnyClock;
use crate::keyed::{KeySlot, KeyedLimiter};
use crate::limiter::RateLimiter;
use crate::metrics::{Event, EventSink, PolicyMetrics};
use crate::retry::RetryBudget;
use crate::rng::{mix64, SharedRng};
use crate::sync::{Arc, AtomicBool, AtomicPtr, Mutex, Ordering};
use crate::telemetry::{current_cause, CauseScope, TraceContext};
use crate::{ConfigError, Outcome, Rejection};

use super::config::PolicyConfig;
use super::stages::Stages;

/// Tells replaced stages that no acquire will start on them again (one may still be
/// running, and their permits still complete): the fleet limits stop their background
/// work once they hold nothing. The other stages have no background work.
fn retire(_stages: &Stages) {
    #[cfg(all(feature = "fleet", not(loom)))]
    if let Some(fleet) = &_stages.fleet_limiter {
        fleet.retire();
    }
}

/// A named pipeline of resilience stages with one `acquire` and one `complete`: a
/// handle that follows reloads (see the module docs).
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
    /// The stages in force; always the address of one of `versions`.
    current: AtomicPtr<Stages>,
    /// Owns the stages in force and every replaced set a permit or borrow may still
    /// reach; shrunk only through `&mut self` (`reclaim_replaced`).
    versions: Mutex<Vec<Arc<Stages>>>,
    pub(super) clock: AnyClock,
    pub(super) shared: Arc<PolicyShared>,
    pub(super) seeds: SharedRng,
    removed: AtomicBool,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.shared.name)
            .field("instance", &self.instance())
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
    pub(super) fn on_transition(&self, t: &Transition) {
        self.metrics.on_transition(t.to as u8);
        if let Some(sink) = self.events.get() {
            sink.emit(
                &Event::transition(
                    &self.name,
                    t.from as u8,
                    t.to as u8,
                    t.generation,
                    t.at_nanos,
                )
                .with_trace(current_cause()),
            );
        }
    }

    #[cold]
    pub(crate) fn on_budget_exhausted(&self, at_nanos: u64) {
        self.metrics.on_budget_refused();
        if let Some(sink) = self.events.get() {
            sink.emit(&Event::BudgetExhausted {
                policy: &self.name,
                at_nanos,
                trace: current_cause(),
            });
        }
    }

    /// Emits the load-shed rejection `rejection` (counted already by the stages).
    #[cold]
    #[inline(never)]
    pub(super) fn on_load_shed(&self, rejection: &Rejection, clock: &AnyClock) {
        if let Some(sink) = self.events.get() {
            sink.emit(&Event::Rejected {
                policy: &self.name,
                reason: rejection.reason,
                retry_after: rejection.retry_after,
                at_nanos: crate::clock::Clock::now(clock),
                trace: current_cause(),
            });
        }
    }
}

/// The plain-data form of a policy permit: what each stage granted. Used by the C ABI;
/// Rust code uses [`PolicyPermit`], which completes itself on drop.
///
/// Kept small, as plain words and one byte of flags (it is returned by value on every
/// acquire, and the C ABI copies it word for word): 72 bytes, where a field per stage
/// permit (`Option`s of each) took 104.
#[must_use = "a permit must be completed, or the stages it holds stay taken"]
#[derive(Debug)]
pub struct RawPolicyPermit {
    pub(crate) instance: u64,
    /// The breaker permit's generation and start, with [`held::BREAKER`] (else 0).
    pub(crate) breaker_generation: u64,
    pub(crate) breaker_started: u64,
    /// When the adaptive slot was granted, with [`held::ADAPTIVE`] (else 0).
    pub(crate) adaptive_start: u64,
    /// The policy's own reading at acquire (0 when it does not time calls).
    pub(crate) started_at: u64,
    /// Latency the chaos stage injects before the call, nanoseconds (0 for none).
    pub(crate) injected_latency_ns: u64,
    /// What the per-key stage holds (`acquire_keyed` on a policy with `per_key`).
    pub(crate) keyed: Option<KeySlot>,
    /// The adaptive limit's in-flight count at admission, with [`held::ADAPTIVE`].
    pub(crate) adaptive_in_flight: u32,
    /// The [`held`] bits.
    pub(crate) held: u8,
    /// The class the adaptive slot was granted to, with [`held::ADAPTIVE`].
    pub(crate) adaptive_priority: Priority,
}

/// What a [`RawPolicyPermit`] holds, as bits of its `held` byte; the same bits, in the
/// same order, as the C ABI's `BW_PERMIT_*` flags (checked in `ffi/policy.rs`).
pub(crate) mod held {
    /// A breaker permit.
    pub(crate) const BREAKER: u8 = 1;
    /// The breaker permit is a half-open probe.
    pub(crate) const PROBE: u8 = 1 << 1;
    /// An adaptive limit's slot.
    pub(crate) const ADAPTIVE: u8 = 1 << 2;
    /// A bulkhead slot.
    pub(crate) const BULKHEAD: u8 = 1 << 3;
    /// The chaos stage decided that this call fails.
    pub(crate) const INJECTED_FAILURE: u8 = 1 << 4;
    /// Not a C flag: the permit came back through the C ABI, as words a caller may have
    /// copied and completed twice, so its bulkhead slot is returned by the release that
    /// refuses when nothing is out ([`Bulkhead::release_raw`](crate::bulkhead::Bulkhead::release_raw)).
    /// A Rust permit is a value that is completed once, so its holder is known and the
    /// slot goes back by one fetch-sub.
    pub(crate) const COPIED: u8 = 1 << 7;
    /// Every bit (the C ABI's flag mask is checked against it).
    #[cfg(all(feature = "capi", not(loom)))]
    pub(crate) const ALL: u8 = BREAKER | PROBE | ADAPTIVE | BULKHEAD | INJECTED_FAILURE;
}

impl RawPolicyPermit {
    /// A permit of the stages `instance` that holds nothing yet.
    #[inline(always)]
    pub(crate) fn bare(instance: u64) -> RawPolicyPermit {
        RawPolicyPermit {
            instance,
            breaker_generation: 0,
            breaker_started: 0,
            adaptive_start: 0,
            started_at: 0,
            injected_latency_ns: 0,
            keyed: None,
            adaptive_in_flight: 0,
            held: 0,
            adaptive_priority: Priority::Critical,
        }
    }

    /// The same permit, built field by field: a copy whose source is only read field by
    /// field, never by address, so the compiler can keep the source in registers.
    #[inline(always)]
    pub(crate) fn rebuilt(&self) -> RawPolicyPermit {
        RawPolicyPermit {
            instance: self.instance,
            breaker_generation: self.breaker_generation,
            breaker_started: self.breaker_started,
            adaptive_start: self.adaptive_start,
            started_at: self.started_at,
            injected_latency_ns: self.injected_latency_ns,
            keyed: self.keyed,
            adaptive_in_flight: self.adaptive_in_flight,
            held: self.held,
            adaptive_priority: self.adaptive_priority,
        }
    }

    /// The breaker permit held, if any.
    #[inline(always)]
    pub(crate) fn breaker(&self) -> Option<RawBreakerPermit> {
        (self.held & held::BREAKER != 0).then(|| {
            RawBreakerPermit::from_parts(
                self.breaker_generation,
                self.breaker_started,
                self.held & held::PROBE != 0,
            )
        })
    }

    /// Holds `permit` of the breaker.
    #[inline(always)]
    pub(crate) fn hold_breaker(&mut self, permit: RawBreakerPermit) {
        let (generation, started, probe) = permit.to_parts();
        self.breaker_generation = generation;
        self.breaker_started = started;
        self.held |= held::BREAKER | (u8::from(probe) * held::PROBE);
    }

    /// The adaptive slot held, if any.
    #[inline(always)]
    pub(crate) fn adaptive(&self) -> Option<RawAdaptivePermit> {
        (self.held & held::ADAPTIVE != 0).then_some(RawAdaptivePermit {
            start_ns: self.adaptive_start,
            in_flight: self.adaptive_in_flight,
            priority: self.adaptive_priority,
        })
    }

    /// Holds `permit` of the adaptive limit.
    #[inline(always)]
    pub(crate) fn hold_adaptive(&mut self, permit: RawAdaptivePermit) {
        self.adaptive_start = permit.start_ns;
        self.adaptive_in_flight = permit.in_flight;
        self.adaptive_priority = permit.priority;
        self.held |= held::ADAPTIVE;
    }

    /// Whether the permit holds a bulkhead slot.
    #[inline(always)]
    pub(crate) fn holds_bulkhead(&self) -> bool {
        self.held & held::BULKHEAD != 0
    }

    /// Whether the permit came back as plain words through the C ABI ([`held::COPIED`]).
    #[inline(always)]
    pub(crate) fn copied(&self) -> bool {
        self.held & held::COPIED != 0
    }

    /// Whether fault injection decided that this call fails: skip the real call and
    /// complete with `Failure`.
    pub fn injected_failure(&self) -> bool {
        self.held & held::INJECTED_FAILURE != 0
    }

    /// Latency to inject before the call (zero for none).
    pub fn injected_latency(&self) -> Duration {
        Duration::from_nanos(self.injected_latency_ns)
    }

    /// The stages that issued this permit ([`Policy::instance`] at acquire).
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The per-key slot this permit holds, if it was acquired with a key on a policy
    /// with per-key limits.
    pub fn key_slot(&self) -> Option<KeySlot> {
        self.keyed
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
        let name_seed = config.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        let shared = Arc::new(PolicyShared {
            name: config.name.clone(),
            metrics: PolicyMetrics::new(),
            events: OnceCell::new(),
        });
        let stages = Stages::build(config, &clock, &shared)?;
        Ok(Policy {
            current: AtomicPtr::new(stages_address(&stages)),
            versions: Mutex::new(vec![stages]),
            clock,
            shared,
            seeds: SharedRng::new(mix64(name_seed)),
            removed: AtomicBool::new(false),
        })
    }

    /// The stages in force.
    #[inline]
    pub(super) fn stages(&self) -> &Stages {
        // Acquire: pairs with the Release store in `install`, so everything written while
        // the stages were built is visible before they are used here.
        let current = self.current.load(Ordering::Acquire);
        // SAFETY: `current` is the address of a `Stages` that an `Arc` in
        // `self.versions` owns: `with_clock` and `install` store only such addresses,
        // after the Arc is in the vector, and nothing removes the Arc of the stages in
        // force. Arcs leave `versions` only through `&mut self` (`reclaim_replaced`, or
        // dropping the handle), which cannot coexist with the `&self` this borrow is tied
        // to; so the stages outlive the returned reference. They are only ever accessed
        // through shared references (their state is atomics and locks).
        unsafe { &*current }
    }

    /// Builds the stages of `config` for this handle (same clock, counters and events),
    /// without installing them.
    pub(crate) fn build_stages(&self, config: PolicyConfig) -> Result<Arc<Stages>, ConfigError> {
        if config.name != self.shared.name {
            return Err(ConfigError::new(
                "name",
                format!(
                    "a policy named {:?} cannot take the configuration of {:?}",
                    self.shared.name, config.name
                ),
            ));
        }
        Stages::build(config, &self.clock, &self.shared)
    }

    /// Makes `stages` (from [`build_stages`](Self::build_stages) of this handle) the
    /// ones every later acquire uses. Permits issued before still complete against the
    /// stages that issued them, which the handle keeps until
    /// [`reclaim_replaced`](Self::reclaim_replaced).
    ///
    /// The replaced stages are retired: their fleet limits' background threads stop
    /// refreshing and exit once they hold nothing, closing their Redis connections
    /// (see the module docs), while the stages themselves stay until reclaimed.
    pub(crate) fn install(&self, stages: Arc<Stages>) {
        let address = stages_address(&stages);
        let mut versions = self.versions.lock();
        versions.push(stages);
        // Release: pairs with the Acquire load in `stages`: a thread that sees the new
        // address also sees the stages fully built. Stored after the push, so the
        // pointer never names stages `versions` does not own. The swap's load needs no
        // ordering: stores of `current` happen only here, under `versions`' lock.
        let replaced = self.current.swap(address, Ordering::Release);
        if let Some(old) = versions
            .iter()
            .find(|s| std::ptr::eq(stages_address(s), replaced))
        {
            retire(old);
        }
    }

    /// Drops every replaced stage set. `&mut self` proves that nothing else can reach
    /// them: no other handle, no borrow, no permit borrowing the handle. The engine gets
    /// it through `Arc::get_mut` on its own Arc (see the module docs). Raw permits of
    /// dropped stages (which only a caller that let go of every handle can still hold)
    /// are then ignored by [`complete_raw`](Self::complete_raw).
    pub(crate) fn reclaim_replaced(&mut self) {
        // Relaxed: `&mut self` already orders this after every store (loom's AtomicPtr
        // has no `get_mut`).
        let current = self.current.load(Ordering::Relaxed);
        self.versions
            .lock()
            .retain(|s| std::ptr::eq(stages_address(s), current));
    }

    /// How many stage sets the handle keeps: the one in force and those replaced but
    /// not yet reclaimed.
    pub fn retained_configurations(&self) -> usize {
        self.versions.lock().len()
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The configuration in force.
    pub fn config(&self) -> &PolicyConfig {
        &self.stages().config
    }

    /// A number unique in the process to the stages in force: it changes when a reload
    /// replaces the configuration.
    pub fn instance(&self) -> u64 {
        self.stages().instance
    }

    /// Whether stages of this handle with `instance` can still complete a permit: the
    /// ones in force, or replaced ones not yet reclaimed.
    pub fn issued(&self, instance: u64) -> bool {
        self.stages().instance == instance
            || self.versions.lock().iter().any(|s| s.instance == instance)
    }

    /// The clock the policy was built with.
    pub fn clock(&self) -> &AnyClock {
        &self.clock
    }

    /// Whether a reload removed this policy from its engine. The handle keeps working
    /// with the last configuration it had, and no longer follows reloads (a policy added
    /// again under the same name is a new handle). A handle whose configuration a reload
    /// changed is not superseded: it follows the change at its next acquire.
    pub fn is_superseded(&self) -> bool {
        // Relaxed: an advisory flag; it orders nothing else.
        self.removed.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_superseded(&self) {
        // Relaxed: see `is_superseded`.
        self.removed.store(true, Ordering::Relaxed);
    }

    /// The circuit breaker stage, if configured.
    pub fn breaker(&self) -> Option<&CircuitBreaker<AnyClock>> {
        self.stages().breaker.as_ref()
    }

    /// The rate limiter stage, if configured.
    pub fn limiter(&self) -> Option<&RateLimiter<AnyClock>> {
        self.stages().limiter.as_deref()
    }

    /// The bulkhead stage, if configured.
    pub fn bulkhead(&self) -> Option<&Bulkhead> {
        self.stages().bulkhead.as_ref()
    }

    /// The adaptive limit stage, if configured.
    pub fn adaptive(&self) -> Option<&AdaptiveLimiter<AnyClock>> {
        self.stages().adaptive.as_deref()
    }

    /// The client-side throttle stage, if configured.
    pub fn throttle(&self) -> Option<&ClientThrottle<AnyClock>> {
        self.stages().throttle.as_deref()
    }

    /// The chaos stage, if configured (switch it on and off, re-tune it at run time).
    pub fn chaos(&self) -> Option<&Chaos> {
        self.stages().chaos.as_deref()
    }

    /// The per-key limiter, if configured.
    pub fn per_key(&self) -> Option<&KeyedLimiter<AnyClock>> {
        self.stages().keyed.as_deref()
    }

    /// The retry budget, if configured.
    pub fn retry_budget(&self) -> Option<&RetryBudget<AnyClock>> {
        self.stages().budget.as_deref()
    }

    /// The policy's counters and latency histogram. They belong to the handle, so they
    /// keep counting across reloads that change the configuration.
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
        let stages = self.stages();
        stages
            .acquire(priority, &self.shared, &self.clock)
            .map(|raw| PolicyPermit {
                stages,
                metrics: &self.shared.metrics,
                raw: Some(raw),
            })
    }

    /// Asks the per-key limits of `key` first, then every stage, at the default
    /// priority. The permit also gives back the key's concurrency slot when completed
    /// or dropped; a rejection by a later stage gives back what the key's limits
    /// granted. On a policy without `per_key` the key is not looked at.
    ///
    /// ```
    /// use breakwater::keyed::PerKeyConfig;
    /// use breakwater::policy::{Policy, PolicyConfig};
    /// use std::time::Duration;
    ///
    /// let policy = Policy::new(PolicyConfig::new("api").with_per_key(
    ///     PerKeyConfig::new(100, Duration::from_secs(1)).with_max_concurrent(1),
    /// )).unwrap();
    /// let permit = policy.acquire_keyed(b"tenant-7").unwrap();
    /// assert!(policy.acquire_keyed(b"tenant-7").is_err(), "one call at a time per tenant");
    /// assert!(policy.acquire_keyed(b"tenant-8").is_ok());
    /// permit.success();
    /// assert!(policy.acquire_keyed(b"tenant-7").is_ok());
    /// ```
    #[inline]
    pub fn acquire_keyed(&self, key: &[u8]) -> Result<PolicyPermit<'_>, Rejection> {
        self.acquire_keyed_with(key, Priority::Default)
    }

    /// [`Policy::acquire_keyed`] at `priority`.
    #[inline]
    pub fn acquire_keyed_with(
        &self,
        key: &[u8],
        priority: Priority,
    ) -> Result<PolicyPermit<'_>, Rejection> {
        let stages = self.stages();
        stages
            .acquire_keyed(key, priority, &self.shared, &self.clock)
            .map(|raw| PolicyPermit {
                stages,
                metrics: &self.shared.metrics,
                raw: Some(raw),
            })
    }

    /// [`Policy::acquire_keyed_with`] returning the plain-data permit; it must be given
    /// back to [`Policy::complete_raw`] of this same handle exactly once.
    #[inline]
    pub fn acquire_keyed_raw(
        &self,
        key: &[u8],
        priority: Priority,
    ) -> Result<RawPolicyPermit, Rejection> {
        self.stages()
            .acquire_keyed(key, priority, &self.shared, &self.clock)
    }

    /// [`Policy::acquire_with`] returning the plain-data permit; it must be given back
    /// to [`Policy::complete_raw`] of this same handle exactly once.
    #[inline(always)]
    pub fn acquire_raw(&self, priority: Priority) -> Result<RawPolicyPermit, Rejection> {
        self.stages().acquire(priority, &self.shared, &self.clock)
    }

    /// The C ABI's cancellable acquire (`bw_policy_acquire_within`): the per-key stage
    /// for `key` when given, then every stage, a full bulkhead waiting at most `wait`;
    /// its refusal is left uncounted unless `count_full` (see `Stages::acquire_within`).
    #[cfg(all(feature = "capi", not(loom)))]
    pub(crate) fn acquire_raw_within(
        &self,
        key: Option<&[u8]>,
        priority: Priority,
        wait: Duration,
        count_full: bool,
    ) -> Result<RawPolicyPermit, super::NoWait> {
        self.stages()
            .acquire_within(key, priority, wait, count_full, &self.shared, &self.clock)
    }

    /// [`Policy::acquire_raw`] handing the permit to `ok` or the rejection to `err`
    /// (see `Stages::acquire_then`: the C ABI writes the permit straight to C).
    #[cfg(all(feature = "capi", not(loom)))]
    #[inline(always)]
    pub(crate) fn acquire_raw_then<R>(
        &self,
        priority: Priority,
        ok: impl FnOnce(RawPolicyPermit) -> R,
        err: impl FnOnce(Rejection) -> R,
    ) -> R {
        self.stages()
            .acquire_then(priority, &self.shared, &self.clock, ok, err)
    }

    /// The C ABI's common completion: when `instance` names the stages in force and
    /// `redeem` gives the permit (it checks the rest and marks it used), completes it
    /// against those stages and returns `true`; otherwise does nothing and returns
    /// `false`. One look at the stages: [`complete_raw`](Self::complete_raw) after a
    /// separate check of the instance loaded them and compared it twice.
    #[cfg(all(feature = "capi", not(loom)))]
    #[inline(always)]
    pub(crate) fn complete_current(
        &self,
        instance: u64,
        redeem: impl FnOnce() -> Option<RawPolicyPermit>,
        outcome: Outcome,
        duration: Option<Duration>,
    ) -> bool {
        let stages = self.stages();
        if stages.instance != instance {
            return false;
        }
        match redeem() {
            Some(permit) => {
                stages.complete(permit, outcome, duration, &self.shared.metrics);
                true
            }
            None => false,
        }
    }

    /// [`Policy::acquire_with`] for a call with the trace context `trace`: the events
    /// this acquire causes (an open breaker moving to half-open, a load-shed
    /// rejection) and those its permit's completion causes (a trip) carry it.
    ///
    /// ```
    /// use breakwater::policy::{Policy, PolicyConfig};
    /// use breakwater::adaptive::Priority;
    /// use breakwater::telemetry::TraceContext;
    ///
    /// let policy = Policy::new(PolicyConfig::new("search")).unwrap();
    /// let trace = TraceContext::new([7; 16], [9; 8], 1).unwrap();
    /// let permit = policy.acquire_traced(Priority::Default, trace).unwrap();
    /// assert_eq!(permit.trace(), trace);
    /// permit.success();
    /// ```
    pub fn acquire_traced(
        &self,
        priority: Priority,
        trace: TraceContext,
    ) -> Result<TracedPermit<'_>, Rejection> {
        let _cause = CauseScope::enter(Some(trace));
        self.acquire_with(priority).map(|permit| TracedPermit {
            permit: Some(permit),
            trace,
        })
    }

    /// [`Policy::acquire_raw`] for a call with the trace context `trace` (see
    /// [`Policy::acquire_traced`]); complete the permit with
    /// [`Policy::complete_raw_traced`] so the events of its completion carry it too.
    pub fn acquire_raw_traced(
        &self,
        priority: Priority,
        trace: TraceContext,
    ) -> Result<RawPolicyPermit, Rejection> {
        let _cause = CauseScope::enter(Some(trace));
        self.acquire_raw(priority)
    }

    /// [`Policy::complete_raw`] for a call with the trace context `trace`: the events
    /// this completion causes (a trip, a half-open breaker closing) carry it.
    pub fn complete_raw_traced(
        &self,
        permit: RawPolicyPermit,
        outcome: Outcome,
        duration: Option<Duration>,
        trace: TraceContext,
    ) {
        let _cause = CauseScope::enter(Some(trace));
        self.complete_raw(permit, outcome, duration);
    }

    /// Reports how the call of `permit` went. `duration` is the call's duration if the
    /// caller measured it; otherwise the policy uses its own measurement when it has
    /// one (it times calls itself when a `timeout`, an adaptive limit or a breaker's
    /// slow-call rule is configured). A call longer than
    /// `timeout` is recorded as `Timeout`.
    ///
    /// The permit completes against the stages that issued it, also when a reload has
    /// replaced them since. A permit of another handle, or of stages already reclaimed,
    /// is counted nowhere and ignored.
    #[inline(always)]
    pub fn complete_raw(
        &self,
        permit: RawPolicyPermit,
        outcome: Outcome,
        duration: Option<Duration>,
    ) {
        let stages = self.stages();
        // The replaced stages, when the permit is theirs; held here so the borrow below
        // outlives the lookup.
        let replaced;
        let issuer = if permit.instance == stages.instance {
            stages
        } else {
            match self.replaced_stages(permit.instance) {
                Some(found) => {
                    replaced = found;
                    &*replaced
                }
                None => return,
            }
        };
        // One completion site, on the permit by value: it stays in registers (a
        // by-value hand-off to a cold function instead made every caller build it in
        // memory, 46 more instructions per C acquire+complete under callgrind).
        issuer.complete(permit, outcome, duration, &self.shared.metrics);
    }

    /// The replaced stages with `instance`, if the handle still keeps them.
    #[cold]
    #[inline(never)]
    fn replaced_stages(&self, instance: u64) -> Option<Arc<Stages>> {
        // Cloned out of the lock: completion may call listeners, which may use this
        // handle again.
        self.versions
            .lock()
            .iter()
            .find(|s| s.instance == instance)
            .cloned()
    }
}

/// A permit of every stage of a [`Policy`]. Complete it with [`success`](Self::success),
/// [`failure`](Self::failure) or [`record`](Self::record); dropped without, it reports
/// `Ignored` and frees everything it holds.
#[must_use = "a permit must be completed with success(), failure() or record()"]
pub struct PolicyPermit<'a> {
    /// The stages that issued the permit: completion goes to them whatever a reload
    /// installed meanwhile.
    stages: &'a Stages,
    metrics: &'a PolicyMetrics,
    raw: Option<RawPolicyPermit>,
}

impl std::fmt::Debug for PolicyPermit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPermit")
            .field("instance", &self.stages.instance)
            .field("raw", &self.raw)
            .finish()
    }
}

impl PolicyPermit<'_> {
    permit_verbs!(raw, RawPolicyPermit);

    /// The call ended with `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.stages.complete(raw, outcome, None, self.metrics);
        }
    }

    /// The call ended with `outcome` after `duration`.
    pub fn record_with_duration(mut self, outcome: Outcome, duration: Duration) {
        if let Some(raw) = self.raw.take() {
            self.stages
                .complete(raw, outcome, Some(duration), self.metrics);
        }
    }
}

impl Drop for PolicyPermit<'_> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.stages
                .complete(raw, Outcome::Ignored, None, self.metrics);
        }
    }
}

/// A [`PolicyPermit`] of a traced call ([`Policy::acquire_traced`]): the events its
/// completion causes carry the call's trace context. Complete it like a
/// `PolicyPermit`; dropped without, it reports `Ignored`, also under the trace.
#[must_use = "a permit must be completed with success(), failure() or record()"]
#[derive(Debug)]
pub struct TracedPermit<'a> {
    /// Taken by the completion; `None` only inside it.
    permit: Option<PolicyPermit<'a>>,
    trace: TraceContext,
}

impl TracedPermit<'_> {
    /// The call's trace context.
    pub fn trace(&self) -> TraceContext {
        self.trace
    }

    permit_verbs!(permit, PolicyPermit<'_>);

    /// The call ended with `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            let _cause = CauseScope::enter(Some(self.trace));
            permit.record(outcome);
        }
    }

    /// The call ended with `outcome` after `duration`.
    pub fn record_with_duration(mut self, outcome: Outcome, duration: Duration) {
        if let Some(permit) = self.permit.take() {
            let _cause = CauseScope::enter(Some(self.trace));
            permit.record_with_duration(outcome, duration);
        }
    }
}

impl Drop for TracedPermit<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let _cause = CauseScope::enter(Some(self.trace));
            drop(permit);
        }
    }
}

/// The address the `current` pointer stores for `stages`.
fn stages_address(stages: &Arc<Stages>) -> *mut Stages {
    (&**stages as *const Stages).cast_mut()
}
