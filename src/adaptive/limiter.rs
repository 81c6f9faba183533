//! The adaptive limiter: lock-free in-flight tracking against a limit that moves with
//! observed latency and drops.

use super::config::{AdaptiveAlgorithm, AdaptiveConfig};
use super::gradient::Gradient2State;
use super::priority::Priority;
use super::sample::Sample;
use crate::clock::{duration_to_nanos, AnyClock, Clock};
use crate::error::ConfigError;
use crate::outcome::Outcome;
use crate::rejection::{RejectReason, Rejection};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::fmt;
use std::time::Duration;

/// Weight of a new sample in the latency average, as a right shift (1/8).
const EWMA_SHIFT: u32 = 3;

/// The mutable state, a pointer-free block of atomics (see the module docs' table),
/// aligned to one cache line: acquire and complete touch only this line, so a thread
/// that owns it does the whole round trip without further coherence traffic.
#[repr(C, align(64))]
struct AdaptiveState {
    in_flight: AtomicU32,
    limit: AtomicU32,
    latency_ewma_ns: AtomicU64,
    estimate_bits: AtomicU64,
    long_rtt_bits: AtomicU64,
    warmup_samples: AtomicU32,
    updating: AtomicBool,
    skipped_samples: AtomicU64,
}

/// A concurrency limit that adapts to latency and drops, with priority-based shedding.
///
/// ```
/// use breakwater::adaptive::{AdaptiveConfig, AdaptiveLimiter, Priority};
/// use breakwater::clock::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter = AdaptiveLimiter::with_clock(AdaptiveConfig::default(), clock.clone())?;
/// let permit = limiter.try_acquire(Priority::Default).expect("idle");
/// clock.advance(Duration::from_millis(3));
/// permit.success();
/// assert_eq!(limiter.in_flight(), 0);
/// assert_eq!(limiter.snapshot().latency, Some(Duration::from_millis(3)));
/// # Ok::<(), breakwater::ConfigError>(())
/// ```
///
/// # Acquire (lock-free, allocation-free)
///
/// One load of the limit and one compare-exchange loop on the in-flight counter: the
/// counter is incremented only if [`AdaptiveConfig::admits`] says yes for the value it
/// replaces, so admission is exact against the limit read in the same iteration. The
/// start time is read from the clock after admission.
///
/// # Complete (lock-free)
///
/// The in-flight counter is decremented (never below 0: completing a forged or
/// duplicated raw permit is ignored), then, unless the outcome is `Ignored`, one
/// [`Sample`] goes to the algorithm:
///
/// - AIMD's whole state is the limit, updated by one compare-exchange loop over the pure
///   [`AimdConfig::next_limit`](super::AimdConfig::next_limit).
/// - Gradient2's state (estimate, baseline RTT, warm-up count) sits in atomics guarded by
///   a *try*-lock flag: the completion that takes the flag applies the pure
///   [`Gradient2Config::update`](super::Gradient2Config::update) and publishes the new limit; a completion that finds the
///   flag taken skips its sample (counted in [`AdaptiveSnapshot::skipped_samples`])
///   instead of waiting. Nobody ever waits, and acquire never touches the flag.
///
/// The limit is always inside `min_limit..=max_limit`. Lowering it never recalls permits
/// already out: `in_flight` may exceed a freshly lowered limit until those complete.
///
/// # `retry_after`
///
/// A rejection is [`RejectReason::LoadShed`] with `retry_after` = the smoothed latency of
/// recently completed calls (an exponentially weighted moving average with weight 1/8,
/// as TCP's SRTT), i.e. about how long the calls now in flight take to free a slot.
/// `None` before the first recorded completion.
///
/// # State block
///
/// | field | type | meaning |
/// |---|---|---|
/// | `in_flight` | `u32` | permits out now |
/// | `limit` | `u32` | the published limit, inside `min_limit..=max_limit` |
/// | `latency_ewma_ns` | `u64` | smoothed completion latency, 0 = no sample yet |
/// | `estimate_bits` | `f64` bits | Gradient2 estimate (AIMD: unused) |
/// | `long_rtt_bits` | `f64` bits | Gradient2 baseline RTT in ns |
/// | `warmup_samples` | `u32` | Gradient2 warm-up count |
/// | `updating` | `bool` | Gradient2 try-lock flag |
/// | `skipped_samples` | `u64` | samples dropped because the flag was taken |
pub struct AdaptiveLimiter<C: Clock = AnyClock> {
    state: AdaptiveState,
    config: AdaptiveConfig,
    clock: C,
}

/// A granted slot as plain data, for the pipeline and the C ABI: complete it exactly
/// once with [`AdaptiveLimiter::complete_raw`]. Completing a permit twice, or one that
/// did not come from this limiter, never drives the in-flight count below 0, but it can
/// release another caller's slot early; the safe [`AdaptivePermit`] rules that out.
#[derive(Debug, PartialEq, Eq)]
#[repr(C)]
pub struct RawAdaptivePermit {
    /// Clock reading (ns) when the slot was granted; the RTT is measured from it.
    pub start_ns: u64,
    /// In-flight count right after this permit was granted (itself included).
    pub in_flight: u32,
    /// The class the slot was granted to.
    pub priority: Priority,
}

/// A granted slot, released when completed or dropped (a drop reports `Ignored`: the
/// slot is freed and the limit learns nothing).
#[must_use = "dropping a permit at once releases it as ignored"]
pub struct AdaptivePermit<'a, C: Clock = AnyClock> {
    limiter: &'a AdaptiveLimiter<C>,
    raw: Option<RawAdaptivePermit>,
}

/// A point-in-time view of an [`AdaptiveLimiter`] (fields read one by one, so not one
/// atomic cut).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveSnapshot {
    /// The algorithm's name (`"aimd"` or `"gradient2"`).
    pub algorithm: &'static str,
    /// The published limit.
    pub limit: u32,
    /// Permits out now.
    pub in_flight: u32,
    /// `in_flight / limit`, clamped to `0..=1`.
    pub pressure: f64,
    /// The configured lower bound.
    pub min_limit: u32,
    /// The configured upper bound.
    pub max_limit: u32,
    /// Smoothed completion latency (the `retry_after` of rejections); `None` before the
    /// first recorded completion.
    pub latency: Option<Duration>,
    /// Gradient2's fractional estimate (AIMD: the limit).
    pub estimated_limit: f64,
    /// Gradient2's baseline (long) RTT; `None` for AIMD and before the first sample.
    pub baseline_rtt: Option<Duration>,
    /// Gradient2 samples skipped because another completion was updating.
    pub skipped_samples: u64,
}

impl AdaptiveLimiter<AnyClock> {
    /// A limiter on [`AnyClock::Monotonic`] (RTTs need sub-millisecond precision). See
    /// `clock.rs` for the rule every type follows.
    pub fn new(config: AdaptiveConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, AnyClock::Monotonic)
    }
}

impl<C: Clock> AdaptiveLimiter<C> {
    /// A limiter reading time from `clock`; fails if `config` is invalid.
    pub fn with_clock(config: AdaptiveConfig, clock: C) -> Result<Self, ConfigError> {
        config.validate()?;
        let initial = Gradient2State::new(config.initial_limit);
        Ok(Self {
            state: AdaptiveState {
                in_flight: AtomicU32::new(0),
                limit: AtomicU32::new(config.initial_limit),
                latency_ewma_ns: AtomicU64::new(0),
                estimate_bits: AtomicU64::new(initial.estimate.to_bits()),
                long_rtt_bits: AtomicU64::new(initial.long_rtt.to_bits()),
                warmup_samples: AtomicU32::new(initial.warmup_samples),
                updating: AtomicBool::new(false),
                skipped_samples: AtomicU64::new(0),
            },
            config,
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Asks for a slot for a call of `priority`; see [`AdaptiveConfig::admits`] for the
    /// rule. A refusal is [`RejectReason::LoadShed`] with the smoothed latency as
    /// `retry_after`.
    #[inline]
    pub fn try_acquire(&self, priority: Priority) -> Result<AdaptivePermit<'_, C>, Rejection> {
        let raw = self.try_acquire_raw(priority)?;
        Ok(AdaptivePermit {
            limiter: self,
            raw: Some(raw),
        })
    }

    /// [`try_acquire`](Self::try_acquire) returning the permit as plain data, to be
    /// completed exactly once with [`complete_raw`](Self::complete_raw).
    #[inline]
    pub fn try_acquire_raw(&self, priority: Priority) -> Result<RawAdaptivePermit, Rejection> {
        let in_flight = self.admit(priority)?;
        Ok(RawAdaptivePermit {
            start_ns: self.clock.now(),
            in_flight,
            priority,
        })
    }

    /// [`try_acquire_raw`](Self::try_acquire_raw) with the start time supplied by the
    /// caller (a pipeline that already read the clock for this call), so the limiter
    /// reads no clock; pair it with `complete_raw(.., Some(rtt))` to read none at all.
    #[inline]
    pub fn try_acquire_raw_at(
        &self,
        priority: Priority,
        now_ns: u64,
    ) -> Result<RawAdaptivePermit, Rejection> {
        let in_flight = self.admit(priority)?;
        Ok(RawAdaptivePermit {
            start_ns: now_ns,
            in_flight,
            priority,
        })
    }

    /// Takes a slot if the admission rule allows; returns the in-flight count right after
    /// (this call included).
    #[inline]
    fn admit(&self, priority: Priority) -> Result<u32, Rejection> {
        // Relaxed: the counter only counts; it publishes no other memory (a permit carries
        // nothing another thread wrote). Exactness comes from the compare-exchange below,
        // which is a read-modify-write on one location and so sees every other one.
        let mut in_flight = self.state.in_flight.load(Ordering::Relaxed);
        loop {
            // Relaxed: the limit is one independent word; a limit a moment stale only
            // shifts the admission by one update, which the algorithm tolerates by design.
            let limit = self.state.limit.load(Ordering::Relaxed);
            if !self.config.admits(priority, in_flight, limit) {
                return Err(self.shed());
            }
            // `in_flight < limit <= u32::MAX`, so `+ 1` cannot overflow.
            // Relaxed on both sides: see the load above.
            match self.state.in_flight.compare_exchange_weak(
                in_flight,
                in_flight + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(in_flight + 1),
                Err(actual) => in_flight = actual,
            }
        }
    }

    /// Releases a raw permit's slot and, unless `outcome` is `Ignored`, feeds the
    /// algorithm one sample: `Failure`/`Timeout` count as drops, and the RTT is `rtt`
    /// when given, else the clock now minus `permit.start_ns` (0 if the clock went back).
    #[inline]
    pub fn complete_raw(&self, permit: RawAdaptivePermit, outcome: Outcome, rtt: Option<Duration>) {
        // Relaxed: the decrement publishes nothing (see `try_acquire_raw`). `checked_sub`
        // keeps a duplicated completion from wrapping the counter to u32::MAX.
        let released = self
            .state
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !released || !outcome.is_recorded() {
            return;
        }
        let rtt_ns = match rtt {
            Some(rtt) => duration_to_nanos(rtt),
            None => self.clock.now().saturating_sub(permit.start_ns),
        };
        self.observe(Sample {
            rtt_ns,
            in_flight: permit.in_flight,
            dropped: outcome.is_failure(),
        });
    }

    /// Feeds one sample to the latency average and the algorithm.
    #[inline]
    fn observe(&self, sample: Sample) {
        self.record_latency(sample.rtt_ns);
        match &self.config.algorithm {
            AdaptiveAlgorithm::Aimd(aimd) => {
                let (min, max) = (self.config.min_limit, self.config.max_limit);
                // Relaxed: the limit is an independent word (see `try_acquire_raw`); the
                // compare-exchange alone makes concurrent updates compose (none is lost).
                let mut limit = self.state.limit.load(Ordering::Relaxed);
                loop {
                    let next = aimd.next_limit(limit, sample, min, max);
                    if next == limit {
                        return;
                    }
                    match self.state.limit.compare_exchange_weak(
                        limit,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return,
                        Err(actual) => limit = actual,
                    }
                }
            }
            AdaptiveAlgorithm::Gradient2(_) => self.observe_gradient(sample),
        }
    }

    /// Gradient2's update under the try-lock flag.
    #[inline]
    fn observe_gradient(&self, sample: Sample) {
        let AdaptiveAlgorithm::Gradient2(gradient) = &self.config.algorithm else {
            return;
        };
        // Test before test-and-set, so a busy flag costs no write. Relaxed: the
        // compare-exchange below is what synchronizes.
        // Acquire on the exchange's success: pairs with the Release store that cleared
        // the flag, so this holder reads the state the previous holder wrote. Relaxed on
        // failure: we then read nothing.
        if self.state.updating.load(Ordering::Relaxed)
            || self
                .state
                .updating
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            self.skip_sample();
            return;
        }
        // Relaxed inside the flag: the flag's Acquire/Release orders these accesses.
        let state = Gradient2State {
            estimate: f64::from_bits(self.state.estimate_bits.load(Ordering::Relaxed)),
            long_rtt: f64::from_bits(self.state.long_rtt_bits.load(Ordering::Relaxed)),
            warmup_samples: self.state.warmup_samples.load(Ordering::Relaxed),
        };
        let next = gradient.update(state, sample, self.config.min_limit, self.config.max_limit);
        self.state
            .estimate_bits
            .store(next.estimate.to_bits(), Ordering::Relaxed);
        self.state
            .long_rtt_bits
            .store(next.long_rtt.to_bits(), Ordering::Relaxed);
        self.state
            .warmup_samples
            .store(next.warmup_samples, Ordering::Relaxed);
        // The estimate is inside min..=max (both u32), so the cast is an exact floor.
        let limit = next.estimate as u32;
        // Relaxed: only this flag holder writes the limit under Gradient2, and readers
        // need no other memory with it (see `try_acquire_raw`).
        if self.state.limit.load(Ordering::Relaxed) != limit {
            self.state.limit.store(limit, Ordering::Relaxed);
        }
        // Release: publishes the state written above to the next holder's Acquire.
        self.state.updating.store(false, Ordering::Release);
    }

    #[cold]
    fn skip_sample(&self) {
        // Relaxed: a statistic.
        self.state.skipped_samples.fetch_add(1, Ordering::Relaxed);
    }

    /// Updates the latency average. A plain load and store, not a read-modify-write:
    /// two completions racing may lose one sample, which a smoothed hint tolerates, and
    /// the hot path stays one store.
    #[inline]
    fn record_latency(&self, rtt_ns: u64) {
        let rtt_ns = rtt_ns.max(1);
        // Relaxed: the average is an independent hint, read only for `retry_after`.
        let old = self.state.latency_ewma_ns.load(Ordering::Relaxed);
        let next = if old == 0 {
            rtt_ns
        } else {
            (old - (old >> EWMA_SHIFT))
                .saturating_add(rtt_ns >> EWMA_SHIFT)
                .max(1)
        };
        if next != old {
            self.state.latency_ewma_ns.store(next, Ordering::Relaxed);
        }
    }

    /// The rejection for a shed call.
    #[cold]
    #[inline(never)]
    fn shed(&self) -> Rejection {
        Rejection::new(RejectReason::LoadShed, self.latency())
    }

    /// The smoothed latency of completed calls; `None` before the first one.
    pub fn latency(&self) -> Option<Duration> {
        // Relaxed: an independent hint.
        match self.state.latency_ewma_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The current limit, inside `min_limit..=max_limit`.
    #[inline]
    pub fn limit(&self) -> u32 {
        // Relaxed: a reading for callers and metrics.
        self.state.limit.load(Ordering::Relaxed)
    }

    /// Permits out now.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        // Relaxed: a reading for callers and metrics.
        self.state.in_flight.load(Ordering::Relaxed)
    }

    /// `in_flight / limit`, clamped to `0..=1` (1 also while permits granted under a
    /// higher limit exceed a lowered one).
    #[inline]
    pub fn pressure(&self) -> f64 {
        pressure(self.in_flight(), self.limit())
    }

    /// A view of the state for metrics and debugging.
    pub fn snapshot(&self) -> AdaptiveSnapshot {
        let limit = self.limit();
        let in_flight = self.in_flight();
        // Relaxed: readings for metrics (see the struct docs: not one atomic cut).
        let (estimated_limit, baseline_rtt) = match self.config.algorithm {
            AdaptiveAlgorithm::Aimd(_) => (f64::from(limit), None),
            AdaptiveAlgorithm::Gradient2(_) => {
                let estimate = f64::from_bits(self.state.estimate_bits.load(Ordering::Relaxed));
                let long = f64::from_bits(self.state.long_rtt_bits.load(Ordering::Relaxed));
                let baseline = (long > 0.0).then(|| Duration::from_nanos(long as u64));
                (estimate, baseline)
            }
        };
        AdaptiveSnapshot {
            algorithm: self.config.algorithm.as_str(),
            limit,
            in_flight,
            pressure: pressure(in_flight, limit),
            min_limit: self.config.min_limit,
            max_limit: self.config.max_limit,
            latency: self.latency(),
            estimated_limit,
            baseline_rtt,
            skipped_samples: self.state.skipped_samples.load(Ordering::Relaxed),
        }
    }
}

#[inline]
fn pressure(in_flight: u32, limit: u32) -> f64 {
    if limit == 0 {
        return 1.0;
    }
    (f64::from(in_flight) / f64::from(limit)).min(1.0)
}

impl<C: Clock> fmt::Debug for AdaptiveLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiter")
            .field("config", &self.config)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl<'a, C: Clock> AdaptivePermit<'a, C> {
    /// The class this slot was granted to.
    pub fn priority(&self) -> Priority {
        self.raw.as_ref().map_or(Priority::Default, |r| r.priority)
    }

    /// The clock reading (ns) when the slot was granted.
    pub fn start_ns(&self) -> u64 {
        self.raw.as_ref().map_or(0, |r| r.start_ns)
    }

    /// Completes the call with `outcome`; the RTT is measured from the grant.
    #[inline]
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.limiter.complete_raw(raw, outcome, None);
        }
    }

    /// Completes the call with `outcome` and an RTT the caller measured.
    #[inline]
    pub fn complete_with_rtt(mut self, outcome: Outcome, rtt: Duration) {
        if let Some(raw) = self.raw.take() {
            self.limiter.complete_raw(raw, outcome, Some(rtt));
        }
    }

    /// Completes the call as a success.
    #[inline]
    pub fn success(self) {
        self.complete(Outcome::Success);
    }

    /// Completes the call as a failure (a drop for AIMD).
    #[inline]
    pub fn failure(self) {
        self.complete(Outcome::Failure);
    }

    /// Detaches the plain-data permit; the caller must then complete it with
    /// [`AdaptiveLimiter::complete_raw`].
    pub fn into_raw(mut self) -> RawAdaptivePermit {
        // The option is `Some` until the permit is consumed, and every consuming method
        // takes `self`, so it is always `Some` here.
        self.raw.take().unwrap_or(RawAdaptivePermit {
            start_ns: 0,
            in_flight: 0,
            priority: Priority::Default,
        })
    }
}

impl<C: Clock> Drop for AdaptivePermit<'_, C> {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.limiter.complete_raw(raw, Outcome::Ignored, None);
        }
    }
}

impl<C: Clock> fmt::Debug for AdaptivePermit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptivePermit")
            .field("raw", &self.raw)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::adaptive::{AimdConfig, Gradient2Config};
    use crate::clock::ManualClock;

    fn aimd(initial: u32, min: u32, max: u32) -> AdaptiveConfig {
        AdaptiveConfig {
            algorithm: AdaptiveAlgorithm::Aimd(AimdConfig::default()),
            initial_limit: initial,
            min_limit: min,
            max_limit: max,
            ..AdaptiveConfig::default()
        }
    }

    #[test]
    fn admits_up_to_the_limit_and_sheds_with_latency_hint() {
        let clock = ManualClock::new();
        let l = AdaptiveLimiter::with_clock(aimd(2, 1, 10), clock.clone()).unwrap();
        let a = l.try_acquire(Priority::Critical).unwrap();
        let b = l.try_acquire(Priority::Critical).unwrap();
        let r = l.try_acquire(Priority::Critical).unwrap_err();
        assert_eq!(r.reason, RejectReason::LoadShed);
        assert_eq!(r.retry_after, None, "no latency observed yet");
        assert_eq!(l.pressure(), 1.0);
        clock.advance(Duration::from_millis(8));
        a.success();
        assert_eq!(l.limit(), 3, "in use, so AIMD grew");
        let c = l.try_acquire(Priority::Critical).unwrap();
        let d = l.try_acquire(Priority::Critical).unwrap();
        let r = l.try_acquire(Priority::Critical).unwrap_err();
        assert_eq!(
            r.retry_after,
            Some(Duration::from_millis(8)),
            "at {}",
            clock.now()
        );
        drop((b, c, d));
        assert_eq!(l.in_flight(), 0);
        assert_eq!(l.limit(), 3, "ignored outcomes teach nothing");
    }

    #[test]
    fn caller_supplied_time_reads_no_clock() {
        let clock = ManualClock::starting_at(5_000);
        let l = AdaptiveLimiter::with_clock(aimd(5, 1, 10), clock.clone()).unwrap();
        let p = l.try_acquire_raw_at(Priority::Default, 1_000).unwrap();
        assert_eq!((p.start_ns, p.in_flight), (1_000, 1));
        l.complete_raw(p, Outcome::Success, None);
        assert_eq!(l.latency(), Some(Duration::from_nanos(4_000)));
    }

    #[test]
    fn duplicate_raw_completion_does_not_underflow() {
        let l = AdaptiveLimiter::with_clock(aimd(5, 1, 10), ManualClock::new()).unwrap();
        let p = l.try_acquire_raw(Priority::Default).unwrap();
        let forged = RawAdaptivePermit {
            start_ns: p.start_ns,
            in_flight: p.in_flight,
            priority: p.priority,
        };
        l.complete_raw(p, Outcome::Success, None);
        l.complete_raw(forged, Outcome::Failure, None);
        assert_eq!(l.in_flight(), 0);
        assert_eq!(l.limit(), 5, "a duplicate teaches nothing either");
    }

    #[test]
    fn gradient_snapshot_reports_baseline() {
        let clock = ManualClock::new();
        let config = AdaptiveConfig {
            algorithm: AdaptiveAlgorithm::Gradient2(Gradient2Config::default()),
            ..AdaptiveConfig::default()
        };
        let l = AdaptiveLimiter::with_clock(config, clock.clone()).unwrap();
        assert_eq!(l.snapshot().baseline_rtt, None);
        let p = l.try_acquire(Priority::Critical).unwrap();
        clock.advance(Duration::from_micros(500));
        p.complete(Outcome::Success);
        let snap = l.snapshot();
        assert_eq!(snap.baseline_rtt, Some(Duration::from_micros(500)));
        assert_eq!(snap.algorithm, "gradient2");
        assert_eq!(snap.limit, 20);
        assert_eq!(snap.skipped_samples, 0);
    }

    #[test]
    fn explicit_rtt_and_clock_going_back_are_tolerated() {
        let clock = ManualClock::starting_at(1_000_000);
        let l = AdaptiveLimiter::with_clock(aimd(5, 1, 10), clock.clone()).unwrap();
        let p = l.try_acquire(Priority::Default).unwrap();
        clock.set(1);
        p.success();
        assert_eq!(l.latency(), Some(Duration::from_nanos(1)));
        let p = l.try_acquire(Priority::Default).unwrap();
        p.complete_with_rtt(Outcome::Success, Duration::from_secs(6));
        assert_eq!(l.limit(), 4, "slower than aimd.timeout is a drop");
    }
}
