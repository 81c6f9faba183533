//! Owned permits: a permit that holds its policy (`Arc<Policy>`) instead of borrowing
//! it, so it can live across an `.await` in a future that must be `'static`, and a
//! non-blocking acquire for asynchronous callers, which wait for a full bulkhead
//! themselves instead of blocking a thread.
//!
//! Counting follows the borrowed permit exactly: an owned permit completes once, with the
//! outcome it is given, or as `Ignored` when dropped (a cancelled future).

use std::sync::Arc;
use std::time::Duration;

use crate::adaptive::Priority;
use crate::{Outcome, Rejection};

use super::pipeline::{Policy, RawPolicyPermit};

/// Why [`Policy::try_acquire_owned`] gave no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoWait {
    /// A stage refused; counted in the policy's rejections as [`Policy::acquire`] counts
    /// it.
    Rejected(Rejection),
    /// The bulkhead is full and its configuration allows waiting up to `max_wait`.
    /// Nothing is held and nothing is counted: wait (without blocking a thread) and ask
    /// again, and when the wait is over count the refusal once with
    /// [`Policy::count_rejection`].
    BulkheadFull {
        /// The bulkhead's configured `max_wait`.
        max_wait: Duration,
    },
}

impl Policy {
    /// [`Policy::acquire`] with a permit that owns a reference to the policy, so it can
    /// be held across `.await` points and moved between tasks. Like `acquire`, a full
    /// bulkhead with a `max_wait` blocks the thread; asynchronous code uses
    /// [`Policy::try_acquire_owned`] instead.
    ///
    /// ```
    /// use breakwater::policy::{Policy, PolicyConfig};
    /// use breakwater::bulkhead::BulkheadConfig;
    /// use std::sync::Arc;
    ///
    /// let policy = Arc::new(Policy::new(
    ///     PolicyConfig::new("db").with_bulkhead(BulkheadConfig::new(1)),
    /// ).unwrap());
    /// let permit = policy.acquire_owned().unwrap();
    /// let handle = std::thread::spawn(move || permit.success());
    /// handle.join().unwrap();
    /// assert_eq!(policy.metrics().snapshot().success, 1);
    /// ```
    pub fn acquire_owned(self: &Arc<Self>) -> Result<OwnedPolicyPermit, Rejection> {
        self.acquire_raw(Priority::Default)
            .map(|raw| OwnedPolicyPermit::new(self.clone(), raw))
    }

    /// Asks every stage for a permit without ever blocking: a full bulkhead whose
    /// configuration allows a wait answers [`NoWait::BulkheadFull`] (uncounted, nothing
    /// held) for the caller to wait asynchronously and ask again; every other answer is
    /// counted as [`Policy::acquire_with`] counts it.
    ///
    /// ```
    /// use breakwater::bulkhead::BulkheadConfig;
    /// use breakwater::policy::{NoWait, Policy, PolicyConfig};
    /// use breakwater::adaptive::Priority;
    /// use breakwater::RejectReason;
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let bulkhead = BulkheadConfig::new(1).with_max_wait(Duration::from_millis(50));
    /// let policy = Arc::new(Policy::new(PolicyConfig::new("db").with_bulkhead(bulkhead)).unwrap());
    /// let held = policy.try_acquire_owned(Priority::Default).unwrap();
    /// let busy = policy.try_acquire_owned(Priority::Default).unwrap_err();
    /// assert_eq!(busy, NoWait::BulkheadFull { max_wait: Duration::from_millis(50) });
    /// assert_eq!(policy.metrics().snapshot().rejected_total(), 0, "not counted yet");
    /// policy.count_rejection(RejectReason::BulkheadFull);
    /// assert_eq!(policy.metrics().snapshot().rejected_by(RejectReason::BulkheadFull), 1);
    /// held.success();
    /// ```
    pub fn try_acquire_owned(
        self: &Arc<Self>,
        priority: Priority,
    ) -> Result<OwnedPolicyPermit, NoWait> {
        self.stages()
            .acquire_within(
                None,
                priority,
                Duration::ZERO,
                false,
                &self.shared,
                &self.clock,
            )
            .map(|raw| OwnedPolicyPermit::new(self.clone(), raw))
    }

    /// Counts one refusal by `reason` in the policy's rejections: how a caller that
    /// waited after [`NoWait::BulkheadFull`] and gave up records that call.
    pub fn count_rejection(&self, reason: crate::RejectReason) {
        self.metrics().on_rejected(reason);
    }
}

/// A permit of every stage of a policy that owns a reference to the policy (see
/// [`Policy::acquire_owned`]). Complete it with [`success`](Self::success),
/// [`failure`](Self::failure) or [`record`](Self::record); dropped without, it reports
/// `Ignored` and frees everything it holds.
#[must_use = "a permit must be completed with success(), failure() or record()"]
pub struct OwnedPolicyPermit {
    policy: Arc<Policy>,
    raw: Option<RawPolicyPermit>,
}

impl std::fmt::Debug for OwnedPolicyPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedPolicyPermit")
            .field("policy", &self.policy.name())
            .field("raw", &self.raw)
            .finish()
    }
}

impl OwnedPolicyPermit {
    fn new(policy: Arc<Policy>, raw: RawPolicyPermit) -> Self {
        Self {
            policy,
            raw: Some(raw),
        }
    }

    /// The policy that issued the permit.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    permit_verbs!(raw, RawPolicyPermit);

    /// The call ended with `outcome` (the policy times it itself when it has a timeout).
    pub fn record(mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.policy.complete_raw(raw, outcome, None);
        }
    }

    /// The call ended with `outcome` after `duration`.
    pub fn record_with_duration(mut self, outcome: Outcome, duration: Duration) {
        if let Some(raw) = self.raw.take() {
            self.policy.complete_raw(raw, outcome, Some(duration));
        }
    }
}

impl Drop for OwnedPolicyPermit {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.policy.complete_raw(raw, Outcome::Ignored, None);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::bulkhead::BulkheadConfig;
    use crate::policy::PolicyConfig;
    use crate::RejectReason;

    fn policy(max_wait: Duration) -> Arc<Policy> {
        let bulkhead = BulkheadConfig::new(1).with_max_wait(max_wait);
        Arc::new(Policy::new(PolicyConfig::new("p").with_bulkhead(bulkhead)).unwrap())
    }

    #[test]
    fn a_dropped_owned_permit_frees_its_slot_as_ignored() {
        let policy = policy(Duration::ZERO);
        let permit = policy.acquire_owned().unwrap();
        assert_eq!(policy.bulkhead().unwrap().snapshot().in_flight, 1);
        drop(permit);
        let m = policy.metrics().snapshot();
        assert_eq!((m.permitted, m.ignored), (1, 1));
        assert_eq!(policy.bulkhead().unwrap().snapshot().in_flight, 0);
    }

    #[test]
    fn try_acquire_owned_never_waits_and_counts_a_full_bulkhead_without_wait() {
        let policy = policy(Duration::ZERO);
        let held = policy.try_acquire_owned(Priority::Default).unwrap();
        assert_eq!(
            policy.try_acquire_owned(Priority::Default).unwrap_err(),
            NoWait::Rejected(Rejection::new(RejectReason::BulkheadFull, None))
        );
        assert_eq!(
            policy
                .metrics()
                .snapshot()
                .rejected_by(RejectReason::BulkheadFull),
            1
        );
        held.success();
    }

    #[test]
    fn try_acquire_owned_leaves_a_waitable_refusal_uncounted() {
        // An hour of max_wait: a blocking acquire would hang this test.
        let policy = policy(Duration::from_secs(3600));
        let held = policy.try_acquire_owned(Priority::Default).unwrap();
        assert!(matches!(
            policy.try_acquire_owned(Priority::Default),
            Err(NoWait::BulkheadFull { .. })
        ));
        let m = policy.metrics().snapshot();
        assert_eq!((m.permitted, m.rejected_total()), (1, 0));
        held.success();
        assert!(policy.try_acquire_owned(Priority::Default).is_ok());
    }
}
