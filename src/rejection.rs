//! Why a call was not let through.
//!
//! A rejection is an answer, not an error: the policy worked and said "not now". Every
//! primitive and the pipeline return the same [`Rejection`], so a caller handles them in
//! one place and a service can turn `retry_after` into a `Retry-After` header.

use std::fmt;
use std::time::Duration;

/// The stage that refused a call.
///
/// The numeric values are part of the C ABI (they are the `bw_status` codes of the
/// rejections) and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    /// The circuit breaker is open (or forced open, or out of half-open probes).
    CircuitOpen = 1,
    /// The rate limiter has no token now.
    RateLimited = 2,
    /// The bulkhead is at `max_concurrent` (after any allowed wait).
    BulkheadFull = 3,
    /// The adaptive limit or the client-side throttle shed the call.
    LoadShed = 4,
    /// A retry was refused because the retry budget is spent.
    RetryBudgetExhausted = 5,
    /// Fault injection forced a rejection.
    Injected = 6,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::CircuitOpen,
        RejectReason::RateLimited,
        RejectReason::BulkheadFull,
        RejectReason::LoadShed,
        RejectReason::RetryBudgetExhausted,
        RejectReason::Injected,
    ];

    /// The stable snake_case name, used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::CircuitOpen => "circuit_open",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::BulkheadFull => "bulkhead_full",
            RejectReason::LoadShed => "load_shed",
            RejectReason::RetryBudgetExhausted => "retry_budget_exhausted",
            RejectReason::Injected => "injected",
        }
    }

    /// A dense index `0..ALL.len()`, for per-reason counter arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize - 1
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused call: which stage refused it, and when trying again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The stage that refused.
    pub reason: RejectReason,
    /// When a new attempt may pass, where the stage knows (an open breaker's remaining
    /// open time, the limiter's next token). `None` when unknown.
    pub retry_after: Option<Duration>,
}

impl Rejection {
    /// A rejection with a known `retry_after`.
    #[inline]
    pub fn new(reason: RejectReason, retry_after: Option<Duration>) -> Self {
        Self {
            reason,
            retry_after,
        }
    }

    /// A rejection whose `retry_after` is `nanos` nanoseconds.
    #[inline]
    pub fn after_nanos(reason: RejectReason, nanos: u64) -> Self {
        Self::new(reason, Some(Duration::from_nanos(nanos)))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after {
            Some(after) => write!(f, "rejected: {} (retry after {:?})", self.reason, after),
            None => write!(f, "rejected: {}", self.reason),
        }
    }
}

impl std::error::Error for Rejection {}
