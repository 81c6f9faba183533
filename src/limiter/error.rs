//! What a weighted limiter request can answer besides "yes".

use crate::rejection::Rejection;
use std::fmt;

/// Why a weighted request or a reservation did not pass.
///
/// A [`Rejected`](LimiterError::Rejected) is an answer ("not now", with `retry_after`);
/// [`ExceedsBurst`](LimiterError::ExceedsBurst) is a caller error: the request asks for
/// more permits than the limiter can ever grant at once, so no wait would help.
///
/// ```
/// use breakwater::limiter::{LimiterError, RateLimiter, RateLimiterConfig};
/// use breakwater::clock::ManualClock;
/// use std::time::Duration;
///
/// let limiter = RateLimiter::with_clock(
///     RateLimiterConfig::new(10, Duration::from_secs(1)),
///     ManualClock::new(),
/// ).unwrap();
/// assert_eq!(
///     limiter.try_acquire_n(11),
///     Err(LimiterError::ExceedsBurst { requested: 11, burst: 10 })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterError {
    /// Not enough permits now; `retry_after` says when the same request would pass.
    Rejected(Rejection),
    /// More permits were requested than `burst`: the request can never pass.
    ExceedsBurst {
        /// Permits asked for.
        requested: u64,
        /// The limiter's burst.
        burst: u64,
    },
}

impl LimiterError {
    /// The rejection, if this is one.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            LimiterError::Rejected(r) => Some(r),
            LimiterError::ExceedsBurst { .. } => None,
        }
    }
}

impl From<Rejection> for LimiterError {
    fn from(r: Rejection) -> Self {
        LimiterError::Rejected(r)
    }
}

impl fmt::Display for LimiterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimiterError::Rejected(r) => r.fmt(f),
            LimiterError::ExceedsBurst { requested, burst } => write!(
                f,
                "{requested} permits requested but the burst is {burst}: the request can never pass"
            ),
        }
    }
}

impl std::error::Error for LimiterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LimiterError::Rejected(r) => Some(r),
            LimiterError::ExceedsBurst { .. } => None,
        }
    }
}
