//! One attempt of a call: readiness, the permit (waiting asynchronously for a full
//! bulkhead), injected faults, and the inner call under a timeout that drops the inner
//! future when it fires.

use std::future::poll_fn;
use std::time::Duration;

use tower_service::Service;

use crate::clock::duration_to_nanos;
use crate::policy::RetryOn;
use crate::{Outcome, Rejection};

use super::classify::{Classification, Classify};
use super::layer::Shared;

/// How one attempt ended.
pub(super) enum AttemptEnd<R, E> {
    /// The inner service answered (a response or an error), judged by the classifier.
    Answered {
        result: Result<R, E>,
        class: Classification,
    },
    /// A stage refused the permit.
    Rejected(Rejection),
    /// The inner future ran past the cut and was dropped.
    TimedOut,
    /// Fault injection failed the attempt; the inner service was not called.
    Injected,
    /// The inner service failed to become ready; no permit was taken.
    NotReady(E),
}

impl<R, E> AttemptEnd<R, E> {
    /// The retry class of this ending and its retry hint ([`RetryOn::NONE`] ends the
    /// call).
    pub(super) fn retry_class(&self) -> (RetryOn, Option<Duration>) {
        match self {
            AttemptEnd::Answered { class, .. } => {
                let what = match class.outcome {
                    Outcome::Failure => RetryOn::FAILURE,
                    Outcome::Timeout => RetryOn::TIMEOUT,
                    Outcome::Success | Outcome::Ignored => RetryOn::NONE,
                };
                (what, class.retry_after)
            }
            AttemptEnd::Rejected(r) => (RetryOn::rejection(r.reason), r.retry_after),
            AttemptEnd::TimedOut => (RetryOn::TIMEOUT, None),
            AttemptEnd::Injected => (RetryOn::FAILURE, None),
            AttemptEnd::NotReady(_) => (RetryOn::NONE, None),
        }
    }
}

/// Runs one attempt of `request` on `service`. `ready`: whether `service` was already
/// driven to readiness (the first attempt's was, by the caller's `poll_ready`).
/// `deadline_nanos`: the call's deadline on the policy's clock, which cuts the attempt
/// like the policy's `timeout` does.
pub(super) async fn attempt<S, Req, C>(
    shared: &Shared<C>,
    mut service: S,
    ready: bool,
    request: Req,
    deadline_nanos: Option<u64>,
) -> AttemptEnd<S::Response, S::Error>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error>,
{
    if !ready {
        if let Err(e) = poll_fn(|cx| service.poll_ready(cx)).await {
            return AttemptEnd::NotReady(e);
        }
    }
    let policy = &shared.policy;
    let permit = match shared.gate.acquire(policy).await {
        Ok(permit) => permit,
        Err(rejection) => return AttemptEnd::Rejected(rejection),
    };
    let latency = permit.injected_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if permit.injected_failure() {
        permit.record(Outcome::Failure, None);
        return AttemptEnd::Injected;
    }
    let begin = policy.now();
    let cut = cut_after(policy.config().timeout, deadline_nanos, begin);
    let call = service.call(request);
    let result = match cut {
        None => Ok(call.await),
        Some(limit) => tokio::time::timeout(limit, call).await,
    };
    let elapsed = Duration::from_nanos(policy.now().saturating_sub(begin));
    match result {
        Ok(result) => {
            let class = shared.classifier.classify(&result);
            permit.record(class.outcome, Some(elapsed));
            AttemptEnd::Answered { result, class }
        }
        Err(_elapsed) => {
            // The inner future is already dropped: `timeout` owned it.
            permit.record(Outcome::Timeout, Some(elapsed));
            AttemptEnd::TimedOut
        }
    }
}

/// How long an attempt starting at `now` may run: the policy's timeout, shortened to
/// what is left before the call's deadline.
fn cut_after(timeout: Option<Duration>, deadline_nanos: Option<u64>, now: u64) -> Option<Duration> {
    let left = deadline_nanos.map(|d| Duration::from_nanos(d.saturating_sub(now)));
    match (timeout, left) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    }
}

/// Nanoseconds of `d` past `now` on the policy's clock (saturating).
pub(super) fn after(now: u64, d: Duration) -> u64 {
    now.saturating_add(duration_to_nanos(d))
}
