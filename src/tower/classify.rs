//! Judging a response: [`Classify`] turns what the inner service returned into the
//! [`Outcome`] the policy records, and a hint of when to try again.
//!
//! The default for HTTP is [`HttpClassifier`]: 5xx fail, 408 and 504 are timeouts, 429
//! fails, and a `Retry-After` of 429 or 503 sets the earliest retry. Anything else
//! is [`ResultClassifier`] (`Ok` succeeds, `Err` fails) or a closure of your own.

use std::time::Duration;

use crate::Outcome;

/// What a response says about the dependency: the outcome to record (and to retry on,
/// when the policy's `retry_on` lists its class), and the earliest time to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The outcome recorded for the attempt. `Failure` and `Timeout` are retried when
    /// the policy's `retry_on` lists them; `Success` and `Ignored` end the call.
    pub outcome: Outcome,
    /// The earliest a retry may start (a `Retry-After`); the backoff waits at least this.
    pub retry_after: Option<Duration>,
}

impl Classification {
    /// The outcome, with no hint.
    pub const fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            retry_after: None,
        }
    }

    /// The same classification with a retry hint.
    pub const fn with_retry_after(self, retry_after: Option<Duration>) -> Self {
        Self {
            retry_after,
            ..self
        }
    }
}

impl From<Outcome> for Classification {
    fn from(outcome: Outcome) -> Self {
        Self::new(outcome)
    }
}

/// Judges what an inner service returned. Implemented for closures
/// `Fn(&Result<Res, E>) -> Classification`, so a predicate of your own is one line:
///
/// ```
/// use breakwater::tower::{Classification, Classify};
/// use breakwater::Outcome;
///
/// // An empty answer counts as a failure of the dependency.
/// let classify = |r: &Result<String, std::io::Error>| match r {
///     Ok(body) if !body.is_empty() => Classification::new(Outcome::Success),
///     _ => Classification::new(Outcome::Failure),
/// };
/// assert_eq!(classify.classify(&Ok(String::new())).outcome, Outcome::Failure);
/// ```
pub trait Classify<Res, E>: Send + Sync + 'static {
    /// The classification of one attempt's result.
    fn classify(&self, result: &Result<Res, E>) -> Classification;
}

impl<Res, E, F> Classify<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> Classification + Send + Sync + 'static,
{
    #[inline]
    fn classify(&self, result: &Result<Res, E>) -> Classification {
        self(result)
    }
}

/// `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultClassifier;

impl<Res, E> Classify<Res, E> for ResultClassifier {
    #[inline]
    fn classify(&self, result: &Result<Res, E>) -> Classification {
        Classification::new(Outcome::of(result))
    }
}

/// The default for [`http::Response`]s: an error (no response: connection refused,
/// reset) and any 5xx fail; 408 Request Timeout and 504 Gateway Timeout are timeouts;
/// 429 Too Many Requests fails; 429 and 503 carry their `Retry-After` (delay-seconds;
/// an HTTP date is not read) as the earliest retry. Every other status succeeds: a 404
/// says nothing bad about the dependency's health.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClassifier;

impl<B, E> Classify<http::Response<B>, E> for HttpClassifier {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Classification {
        let response = match result {
            Ok(response) => response,
            Err(_) => return Classification::new(Outcome::Failure),
        };
        let status = response.status();
        let outcome = match status {
            http::StatusCode::REQUEST_TIMEOUT | http::StatusCode::GATEWAY_TIMEOUT => {
                Outcome::Timeout
            }
            http::StatusCode::TOO_MANY_REQUESTS => Outcome::Failure,
            s if s.is_server_error() => Outcome::Failure,
            _ => Outcome::Success,
        };
        let honours_retry_after = matches!(
            status,
            http::StatusCode::TOO_MANY_REQUESTS | http::StatusCode::SERVICE_UNAVAILABLE
        );
        let retry_after = if honours_retry_after {
            retry_after_seconds(response.headers())
        } else {
            None
        };
        Classification::new(outcome).with_retry_after(retry_after)
    }
}

/// A `Retry-After` in delay-seconds (RFC 9110 §10.2.3); `None` when absent or not a
/// plain number of seconds.
fn retry_after_seconds(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> http::Response<()> {
        let mut builder = http::Response::builder().status(status);
        if let Some(v) = retry_after {
            builder = builder.header(http::header::RETRY_AFTER, v);
        }
        builder.body(()).unwrap()
    }

    fn classify(status: u16, retry_after: Option<&str>) -> Classification {
        HttpClassifier.classify(&Ok::<_, ()>(response(status, retry_after)))
    }

    #[test]
    fn server_errors_fail_and_timeouts_are_timeouts() {
        assert_eq!(classify(200, None).outcome, Outcome::Success);
        assert_eq!(classify(404, None).outcome, Outcome::Success);
        assert_eq!(classify(500, None).outcome, Outcome::Failure);
        assert_eq!(classify(503, None).outcome, Outcome::Failure);
        assert_eq!(classify(429, None).outcome, Outcome::Failure);
        assert_eq!(classify(504, None).outcome, Outcome::Timeout);
        assert_eq!(classify(408, None).outcome, Outcome::Timeout);
        let no_response: Result<http::Response<()>, &str> = Err("reset");
        assert_eq!(
            HttpClassifier.classify(&no_response).outcome,
            Outcome::Failure
        );
    }

    #[test]
    fn retry_after_is_read_on_429_and_503_only() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(classify(429, Some("3")).retry_after, secs(3));
        assert_eq!(classify(503, Some(" 120 ")).retry_after, secs(120));
        assert_eq!(classify(500, Some("3")).retry_after, None);
        assert_eq!(classify(200, Some("3")).retry_after, None);
        assert_eq!(
            classify(503, Some("Wed, 21 Oct 2015 07:28:00 GMT")).retry_after,
            None
        );
        assert_eq!(classify(503, Some("-1")).retry_after, None);
        assert_eq!(classify(503, Some("")).retry_after, None);
        assert_eq!(
            classify(503, Some("99999999999999999999999")).retry_after,
            None
        );
    }
}
