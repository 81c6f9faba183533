//! Waiting for a full bulkhead without blocking a thread.
//!
//! The synchronous pipeline waits for a full bulkhead on a condition variable, which
//! would stall a tokio worker. Here the permit is asked for without waiting
//! ([`Policy::try_acquire_owned`]); when the bulkhead is full and its `max_wait` allows
//! a wait, the call waits on a [`Notify`] that every permit of the layer rings when it
//! is released, and asks again — until a permit comes or `max_wait` has passed on
//! tokio's clock, when the refusal is counted once. A release by another user of the
//! same policy (synchronous code, another layer) rings no bell, so a waiter also asks
//! again every `RECHECK`.
//!
//! Nothing is held while waiting: a breaker probe slot or a rate-limit token taken by an
//! attempt that then found the bulkhead full was given back by the stages. A waiter that
//! is cancelled (its future dropped) leaves nothing behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::adaptive::Priority;
use crate::policy::{NoWait, OwnedPolicyPermit, Policy};
use crate::{Outcome, RejectReason, Rejection};

/// How often a waiter asks again without being rung.
const RECHECK: Duration = Duration::from_millis(10);

/// The bell of a layer's bulkhead waiters.
#[derive(Debug, Default)]
pub(super) struct Gate {
    released: Notify,
}

impl Gate {
    /// A permit of `policy`, waiting asynchronously (up to the bulkhead's `max_wait`)
    /// when the bulkhead is full.
    pub(super) async fn acquire(
        self: &Arc<Self>,
        policy: &Arc<Policy>,
    ) -> Result<GatePermit, Rejection> {
        let max_wait = match policy.try_acquire_owned(Priority::Default) {
            Ok(permit) => return Ok(self.wrap(permit)),
            Err(NoWait::Rejected(rejection)) => return Err(rejection),
            Err(NoWait::BulkheadFull { max_wait }) => max_wait,
        };
        self.wait(policy, max_wait).await
    }

    #[cold]
    async fn wait(
        self: &Arc<Self>,
        policy: &Arc<Policy>,
        max_wait: Duration,
    ) -> Result<GatePermit, Rejection> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            // Registered before asking, so a release between the refusal and the wait
            // is not missed.
            let rung = self.released.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            match policy.try_acquire_owned(Priority::Default) {
                Ok(permit) => return Ok(self.wrap(permit)),
                Err(NoWait::Rejected(rejection)) => return Err(rejection),
                Err(NoWait::BulkheadFull { .. }) => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                policy.count_rejection(RejectReason::BulkheadFull);
                return Err(Rejection::new(RejectReason::BulkheadFull, None));
            }
            let until = deadline.min(now + RECHECK);
            let _ = tokio::time::timeout_at(until, rung).await;
        }
    }

    fn wrap(self: &Arc<Self>, permit: OwnedPolicyPermit) -> GatePermit {
        let waits = permit
            .policy()
            .bulkhead()
            .is_some_and(|b| !b.config().max_wait.is_zero());
        GatePermit {
            permit: Some(permit),
            gate: waits.then(|| self.clone()),
        }
    }
}

/// A policy permit that rings the gate when it is released (completed or dropped), so a
/// waiter for the bulkhead asks again.
#[derive(Debug)]
pub(super) struct GatePermit {
    permit: Option<OwnedPolicyPermit>,
    /// Set when the policy's bulkhead can have waiters.
    gate: Option<Arc<Gate>>,
}

impl GatePermit {
    pub(super) fn injected_failure(&self) -> bool {
        self.permit
            .as_ref()
            .is_some_and(OwnedPolicyPermit::injected_failure)
    }

    pub(super) fn injected_latency(&self) -> Duration {
        self.permit
            .as_ref()
            .map_or(Duration::ZERO, OwnedPolicyPermit::injected_latency)
    }

    /// Completes the permit with `outcome` after `duration`.
    pub(super) fn record(mut self, outcome: Outcome, duration: Option<Duration>) {
        if let Some(permit) = self.permit.take() {
            match duration {
                Some(d) => permit.record_with_duration(outcome, d),
                None => permit.record(outcome),
            }
        }
    }
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        // A permit still here was never completed: the call was cancelled.
        drop(self.permit.take());
        if let Some(gate) = &self.gate {
            gate.released.notify_one();
        }
    }
}
