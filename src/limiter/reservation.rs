//! A committed future slot of a rate limiter.

use super::rate_limiter::RateLimiter;
use crate::clock::Clock;
use std::fmt;
use std::time::Duration;

/// Permits reserved by [`RateLimiter::reserve`]: they are committed (counted against the
/// quota) as soon as the reservation exists, and are due after [`wait`](Self::wait).
///
/// * Dropping the reservation (or [`commit`](Self::commit)) keeps the slot: the caller
///   is expected to go ahead once `wait` has passed.
/// * [`cancel`](Self::cancel) gives the permits back as if they had never been taken,
///   as far as their slot has not elapsed yet, also when other permits were taken after
///   them (those move up, never to before now nor to before a waiting reservation
///   falls due); see [`RateLimiter::cancel_raw`].
/// * [`into_raw`](Self::into_raw) turns it into plain data for foreign callers, who hand
///   it back through [`RateLimiter::cancel_raw`].
///
/// ```
/// use breakwater::clock::ManualClock;
/// use breakwater::limiter::{RateLimiter, RateLimiterConfig};
/// use std::time::Duration;
///
/// let limiter = RateLimiter::with_clock(
///     RateLimiterConfig::new(10, Duration::from_secs(1)).with_burst(1),
///     ManualClock::new(),
/// ).unwrap();
/// limiter.try_acquire().unwrap();
/// let r = limiter.reserve(1, Duration::from_secs(1)).unwrap();
/// assert_eq!(r.wait(), Duration::from_millis(100));
/// let later = limiter.reserve(1, Duration::from_secs(1)).unwrap();
/// assert_eq!(later.wait(), Duration::from_millis(200));
/// assert!(later.cancel());
/// assert!(r.cancel());
/// assert_eq!(limiter.reserve(1, Duration::ZERO).unwrap_err().rejection().unwrap().retry_after,
///            Some(Duration::from_millis(100)));
/// ```
#[must_use = "dropping a reservation keeps its slot; wait for `wait()` before going ahead"]
pub struct Reservation<'a, C: Clock> {
    limiter: &'a RateLimiter<C>,
    raw: RawReservation,
}

/// A reservation as plain data, for the C ABI: `wait_ns` is for the caller; the other
/// fields identify the slot for [`RateLimiter::cancel_raw`].
///
/// It carries no pointer and no ownership: dropping it keeps the slot. Cancel a raw
/// reservation at most once: the limiter cannot tell two identical reservations apart,
/// so a second cancel may give back a later reservation that happens to be identical.
/// `refunds_seen` and `taken_at` only sharpen a refund: a caller that cannot keep them
/// may pass 0 for either, and its refunds then give back less, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct RawReservation {
    /// Nanoseconds to wait before going ahead (as of the reservation).
    pub wait_ns: u64,
    /// Permits reserved (0 for an empty reservation).
    pub permits: u64,
    /// The limiter's theoretical arrival time right after this reservation, in its
    /// internal units: where the slot ended when it was taken.
    pub tat: u64,
    /// The limiter's count of finished refunds when the slot was taken (internal).
    pub refunds_seen: u64,
    /// The limiter's reading the slot was taken at, in its internal units.
    pub taken_at: u64,
}

impl<'a, C: Clock> Reservation<'a, C> {
    pub(crate) fn new(limiter: &'a RateLimiter<C>, raw: RawReservation) -> Self {
        Self { limiter, raw }
    }

    /// How long to wait, as of the reservation, before the permits are due.
    pub fn wait(&self) -> Duration {
        Duration::from_nanos(self.raw.wait_ns)
    }

    /// Permits reserved.
    pub fn permits(&self) -> u64 {
        self.raw.permits
    }

    /// Keeps the slot (the same as dropping the reservation).
    pub fn commit(self) {}

    /// Gives the permits back as far as their slot has not elapsed (see
    /// [`RateLimiter::cancel_raw`]); returns whether anything went back. An empty
    /// reservation (0 permits) always cancels.
    pub fn cancel(self) -> bool {
        self.limiter.cancel_raw(self.raw)
    }

    /// The plain-data form; the slot stays committed until
    /// [`RateLimiter::cancel_raw`] gives it back.
    pub fn into_raw(self) -> RawReservation {
        self.raw
    }
}

impl<C: Clock> fmt::Debug for Reservation<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("raw", &self.raw)
            .finish()
    }
}
