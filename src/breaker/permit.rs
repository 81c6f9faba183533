//! Permits: the answer "yes" of a breaker, to be completed with an outcome.
//!
//! [`BreakerPermit`] is the Rust guard: complete it with `success()`, `failure()` or
//! `record(outcome)`; dropping it records [`Outcome::Ignored`], which gives a half-open
//! probe slot back. [`RawBreakerPermit`] is the same permit as plain data, for the policy
//! pipeline and the C ABI, completed with
//! [`CircuitBreaker::complete_raw`](super::CircuitBreaker::complete_raw).

use super::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::outcome::Outcome;
use std::fmt;
use std::time::Duration;

/// A permit as plain data: the generation it was granted in, when the call started (0 if
/// the breaker does not time calls), and whether it is a half-open probe.
///
/// It is deliberately neither `Copy` nor `Clone`: each permit is completed once. Across
/// the C ABI it travels as its parts ([`to_parts`](Self::to_parts) /
/// [`from_parts`](Self::from_parts)); the breaker treats parts it did not issue safely —
/// an unknown or old generation only counts as a stale outcome, and a probe completion
/// with no probe in flight is ignored, so no counter can underflow.
#[must_use = "a permit must be completed with `complete_raw` (Outcome::Ignored if the call was not made)"]
#[derive(Debug, PartialEq, Eq)]
pub struct RawBreakerPermit {
    pub(crate) generation: u64,
    pub(crate) started_at: u64,
    pub(crate) probe: bool,
}

impl RawBreakerPermit {
    /// `(generation, started_at_nanos, probe)`.
    pub fn to_parts(&self) -> (u64, u64, bool) {
        (self.generation, self.started_at, self.probe)
    }

    /// Rebuilds a permit from [`to_parts`](Self::to_parts). Any values are accepted.
    pub fn from_parts(generation: u64, started_at: u64, probe: bool) -> Self {
        Self {
            generation,
            started_at,
            probe,
        }
    }

    /// The generation the permit was granted in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The clock reading at acquire, or 0 when the breaker does not time calls.
    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    #[inline]
    fn duplicate(&self) -> Self {
        Self::from_parts(self.generation, self.started_at, self.probe)
    }
}

/// A permit of a [`CircuitBreaker`]: complete it with the outcome of the call.
///
/// Dropping it without completing records [`Outcome::Ignored`] (so a panicking call, or
/// one abandoned by its caller, frees its half-open slot and says nothing about health).
///
/// ```
/// use breakwater::breaker::{BreakerConfig, CircuitBreaker};
/// use breakwater::clock::ManualClock;
/// use breakwater::Outcome;
///
/// let breaker = CircuitBreaker::with_clock(BreakerConfig::default(), ManualClock::new()).unwrap();
/// let permit = breaker.try_acquire().expect("closed");
/// permit.record(Outcome::Timeout);
/// assert_eq!(breaker.snapshot().failures, 1);
/// ```
#[must_use = "dropping a permit records Outcome::Ignored; call success(), failure() or record()"]
pub struct BreakerPermit<'a, C: Clock> {
    breaker: &'a CircuitBreaker<C>,
    raw: RawBreakerPermit,
}

impl<'a, C: Clock> BreakerPermit<'a, C> {
    #[inline(always)]
    pub(crate) fn new(breaker: &'a CircuitBreaker<C>, raw: RawBreakerPermit) -> Self {
        Self { breaker, raw }
    }

    /// Takes the raw permit out without completing it (the guard is disarmed).
    #[inline(always)]
    fn disarm(self) -> (&'a CircuitBreaker<C>, RawBreakerPermit) {
        let breaker = self.breaker;
        let raw = self.raw.duplicate();
        std::mem::forget(self);
        (breaker, raw)
    }

    /// The call succeeded.
    #[inline(always)]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    #[inline(always)]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Reports `outcome`; the call's duration (for the slow-call rule) is measured from
    /// the acquire.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        let (breaker, raw) = self.disarm();
        breaker.complete_raw(raw, outcome, None);
    }

    /// Reports `outcome` of a call that took `duration` (used instead of measuring).
    #[inline]
    pub fn record_with_duration(self, outcome: Outcome, duration: Duration) {
        let (breaker, raw) = self.disarm();
        breaker.complete_raw(raw, outcome, Some(duration));
    }

    /// The permit's data.
    pub fn raw(&self) -> &RawBreakerPermit {
        &self.raw
    }

    /// Turns the guard into a raw permit, which must then be completed with
    /// [`CircuitBreaker::complete_raw`].
    pub fn into_raw(self) -> RawBreakerPermit {
        self.disarm().1
    }

    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.raw.probe
    }
}

impl<C: Clock> Drop for BreakerPermit<'_, C> {
    fn drop(&mut self) {
        self.breaker
            .complete_raw(self.raw.duplicate(), Outcome::Ignored, None);
    }
}

impl<C: Clock> fmt::Debug for BreakerPermit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("raw", &self.raw)
            .finish()
    }
}
