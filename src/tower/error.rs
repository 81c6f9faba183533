//! [`PolicyError`]: why a [`PolicyService`](super::PolicyService) returned no response.

use std::fmt;
use std::time::Duration;

use crate::{RejectReason, Rejection};

/// Why a call through a [`PolicyService`](super::PolicyService) produced no response.
/// A response the classifier judged a failure (an HTTP 503) is not an error: the
/// service returns it after the last attempt.
#[derive(Debug)]
pub enum PolicyError<E> {
    /// A stage refused the last attempt, or the retry budget refused a retry
    /// ([`RejectReason::RetryBudgetExhausted`]).
    Rejected(Rejection),
    /// The last attempt ran past the policy's `timeout` (or the call's deadline) and was
    /// cut: the inner future was dropped.
    Timeout,
    /// Fault injection failed the last attempt; the inner service was not called.
    Injected,
    /// The inner service failed (its `poll_ready` or its call).
    Inner(E),
}

impl<E> PolicyError<E> {
    /// The rejection, when a stage refused.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            PolicyError::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// When trying again may pass, where the refusing stage knows (a server turns it
    /// into a `Retry-After` header).
    pub fn retry_after(&self) -> Option<Duration> {
        self.rejection().and_then(|r| r.retry_after)
    }

    /// The HTTP status a server answers with: 429 for a rate limit, 503 for any other
    /// refusal, 504 for a timeout, 500 for an injected fault or an inner error.
    pub fn status_code(&self) -> http::StatusCode {
        match self {
            PolicyError::Rejected(r) if r.reason == RejectReason::RateLimited => {
                http::StatusCode::TOO_MANY_REQUESTS
            }
            PolicyError::Rejected(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            PolicyError::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
            PolicyError::Injected | PolicyError::Inner(_) => {
                http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The response a server answers with: [`status_code`](Self::status_code), a
    /// `Retry-After` in whole seconds (rounded up) when the refusal knows one, and an
    /// empty body.
    ///
    /// ```
    /// use breakwater::tower::PolicyError;
    /// use breakwater::{RejectReason, Rejection};
    /// use std::time::Duration;
    ///
    /// let limited: PolicyError<()> = PolicyError::Rejected(Rejection::new(
    ///     RejectReason::RateLimited,
    ///     Some(Duration::from_millis(1500)),
    /// ));
    /// let response = limited.to_http_response::<String>();
    /// assert_eq!(response.status(), 429);
    /// assert_eq!(response.headers()["retry-after"], "2");
    /// ```
    pub fn to_http_response<B: Default>(&self) -> http::Response<B> {
        let mut response = http::Response::new(B::default());
        *response.status_mut() = self.status_code();
        if let Some(after) = self.retry_after() {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl<E: fmt::Display> fmt::Display for PolicyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Rejected(r) => write!(f, "{r}"),
            PolicyError::Timeout => f.write_str("call timed out"),
            PolicyError::Injected => f.write_str("call failed: injected fault"),
            PolicyError::Inner(e) => write!(f, "call failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for PolicyError<E> {}
