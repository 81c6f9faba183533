//! [`CallError`]: why a guarded call returned no value — the one error of
//! [`CircuitBreaker::call`](crate::breaker::CircuitBreaker::call) and
//! [`Policy::call`](crate::policy::Policy::call).

use crate::Rejection;
use std::fmt;

/// Why a guarded call did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// A stage did not let the (last) attempt through, so the operation did not run for
    /// it; for a policy also a retry the retry budget refused
    /// ([`RejectReason::RetryBudgetExhausted`](crate::RejectReason::RetryBudgetExhausted)).
    Rejected(Rejection),
    /// The operation ran and its (last) attempt failed with this error.
    Failed(E),
    /// Fault injection (a policy's chaos stage) failed the last attempt; the operation
    /// was not run. A standalone breaker never returns it.
    Injected,
}

impl<E> CallError<E> {
    /// The operation's error, if it ran and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Failed(e) => Some(e),
            CallError::Rejected(_) | CallError::Injected => None,
        }
    }

    /// The rejection, if the call was not let through.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            CallError::Rejected(r) => Some(r),
            CallError::Failed(_) | CallError::Injected => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(r) => write!(f, "{r}"),
            CallError::Failed(e) => write!(f, "call failed: {e}"),
            CallError::Injected => f.write_str("call failed: injected fault"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Rejected(r) => Some(r),
            CallError::Failed(e) => Some(e),
            CallError::Injected => None,
        }
    }
}
