//! One call through a [`PolicyService`](super::PolicyService): attempts, hedged when
//! configured, retried with backoff on tokio's timers under the policy's retry settings,
//! its budget and the call's deadline.
//!
//! The retry decisions are the policy's own ([`Policy::retry_begin`],
//! [`Policy::retry_next`]), so a call here and a synchronous [`Policy::call`] decide the
//! same for the same outcomes; only the waiting differs (`tokio::time::sleep`).
//!
//! Cancellation: dropping the call's future drops whatever it is awaiting — an inner
//! future, a backoff sleep, a bulkhead wait — and every permit it holds completes as
//! `Ignored`, so nothing stays taken.
//!
//! [`Policy::retry_begin`]: crate::policy::Policy::retry_begin
//! [`Policy::retry_next`]: crate::policy::Policy::retry_next
//! [`Policy::call`]: crate::policy::Policy::call

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use tower_service::Service;

use crate::retry::{GiveUpReason, RetryDecision};
use crate::{RejectReason, Rejection};

use super::attempt::{after, attempt, AttemptEnd};
use super::classify::Classify;
use super::error::PolicyError;
use super::layer::Shared;

/// Runs `request` through the policy on `service` (already ready). `copy` makes the
/// request of a further attempt (a retry or a hedge); without it the call is one
/// attempt, neither retried nor hedged (the layer's
/// [`SingleAttempt`](super::SingleAttempt)).
pub(super) async fn run<S, Req, C>(
    shared: Arc<Shared<C>>,
    service: S,
    request: Req,
    copy: Option<fn(&Req) -> Req>,
) -> Result<S::Response, PolicyError<S::Error>>
where
    S: Service<Req> + Clone,
    C: Classify<S::Response, S::Error>,
{
    let policy = &shared.policy;
    let deadline = shared.deadline.map(|d| after(policy.now(), d));
    let Some(copy) = copy else {
        // One attempt: no retry state begun, so no budget or seed drawn.
        return into_result(attempt(&shared, service, true, request, deadline).await);
    };
    let mut retry = policy.retry_begin(shared.seeds.next_u64(), deadline);
    if retry.is_none() && shared.hedge.is_none() {
        // One attempt, nothing to clone.
        return into_result(attempt(&shared, service, true, request, deadline).await);
    }
    // The first attempt uses the service the caller drove ready; later ones (and
    // hedges) a clone of `spare`, driven ready in the attempt.
    let spare = service.clone();
    let mut ready = Some(service);
    loop {
        let (this, was_ready) = match ready.take() {
            Some(s) => (s, true),
            None => (spare.clone(), false),
        };
        let end = match shared.hedge.is_some() {
            false => attempt(&shared, this, was_ready, copy(&request), deadline).await,
            true => {
                // Boxed: the two attempts in flight would otherwise double the size of
                // every call's future, hedged or not.
                let second = (spare.clone(), copy(&request));
                Box::pin(hedged(
                    &shared,
                    this,
                    was_ready,
                    copy(&request),
                    second,
                    deadline,
                ))
                .await
            }
        };
        let (what, retry_after) = end.retry_class();
        let Some(state) = retry.as_mut() else {
            return into_result(end);
        };
        if what.bits() == 0 {
            return into_result(end);
        }
        match policy.retry_next(state, what, retry_after) {
            RetryDecision::RetryAfter(delay) => tokio::time::sleep(delay).await,
            RetryDecision::GiveUp(GiveUpReason::BudgetExhausted) => {
                return Err(PolicyError::Rejected(Rejection::new(
                    RejectReason::RetryBudgetExhausted,
                    None,
                )))
            }
            RetryDecision::GiveUp(_) => return into_result(end),
        }
    }
}

/// An attempt, and a second one if the first has not answered after the hedge delay and
/// the retry budget grants it. The first to answer wins (a refused attempt does not
/// answer: the other one is awaited); the other is dropped, its permit completed as
/// `Ignored`. `second`: the service and request of the hedge (cloned up front, as the
/// future must be `Send` without asking `S` or `Req` to be `Sync`).
async fn hedged<S, Req, C>(
    shared: &Shared<C>,
    first: S,
    ready: bool,
    request: Req,
    second: (S, Req),
    deadline: Option<u64>,
) -> AttemptEnd<S::Response, S::Error>
where
    S: Service<Req> + Clone,
    C: Classify<S::Response, S::Error>,
{
    let mut primary = pin!(attempt(shared, first, ready, request, deadline));
    let delay = shared.hedge_delay();
    if let Ok(end) = tokio::time::timeout(delay, primary.as_mut()).await {
        return end;
    }
    let granted = shared
        .policy
        .retry_budget()
        .is_none_or(|budget| budget.try_withdraw());
    if !granted {
        return primary.await;
    }
    let (service, request) = second;
    let mut secondary = pin!(attempt(shared, service, false, request, deadline));
    let mut primary_done = None;
    let mut secondary_done = None;
    poll_fn(|cx| {
        if primary_done.is_none() {
            if let Poll::Ready(end) = primary.as_mut().poll(cx) {
                primary_done = Some(end);
            }
        }
        if secondary_done.is_none() {
            if let Poll::Ready(end) = secondary.as_mut().poll(cx) {
                secondary_done = Some(end);
            }
        }
        let answered = |e: &Option<AttemptEnd<_, _>>| {
            matches!(e, Some(end) if !matches!(end, AttemptEnd::Rejected(_)))
        };
        let both = primary_done.is_some() && secondary_done.is_some();
        if answered(&primary_done) || both {
            if let Some(end) = primary_done.take() {
                return Poll::Ready(end);
            }
        }
        if answered(&secondary_done) {
            if let Some(end) = secondary_done.take() {
                return Poll::Ready(end);
            }
        }
        Poll::Pending
    })
    .await
}

fn into_result<R, E>(end: AttemptEnd<R, E>) -> Result<R, PolicyError<E>> {
    match end {
        AttemptEnd::Answered { result, .. } => result.map_err(PolicyError::Inner),
        AttemptEnd::NotReady(e) => Err(PolicyError::Inner(e)),
        AttemptEnd::Rejected(r) => Err(PolicyError::Rejected(r)),
        AttemptEnd::TimedOut => Err(PolicyError::Timeout),
        AttemptEnd::Injected => Err(PolicyError::Injected),
    }
}
