//! A policy's state at one moment: every stage's snapshot and the counters.

use crate::adaptive::{AdaptiveSnapshot, ThrottleSnapshot};
use crate::breaker::BreakerSnapshot;
use crate::bulkhead::BulkheadSnapshot;
use crate::fleet::FleetLimiterSnapshot;
use crate::keyed::KeyedSnapshot;
use crate::limiter::LimiterSnapshot;
use crate::metrics::MetricsSnapshot;
use crate::retry::BudgetSnapshot;

use super::pipeline::Policy;

/// The state of every configured stage of a policy and its counters. Each part is
/// read on its own (no global lock), so parts may be a few calls apart; within the
/// counters `success + failure + timeout + ignored ≤ permitted` always holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySnapshot {
    /// The policy's name.
    pub name: String,
    /// The circuit breaker, if configured.
    pub breaker: Option<BreakerSnapshot>,
    /// The rate limiter, if configured.
    pub limiter: Option<LimiterSnapshot>,
    /// The fleet-wide rate limiter (`scope = "fleet"`), if configured.
    pub fleet_limiter: Option<FleetLimiterSnapshot>,
    /// The client-side throttle, if configured.
    pub throttle: Option<ThrottleSnapshot>,
    /// The bulkhead, if configured.
    pub bulkhead: Option<BulkheadSnapshot>,
    /// The adaptive limit, if configured.
    pub adaptive: Option<AdaptiveSnapshot>,
    /// The retry budget, if configured.
    pub budget: Option<BudgetSnapshot>,
    /// The per-key limits, if configured.
    pub per_key: Option<KeyedSnapshot>,
    /// Whether fault injection is on (`None` without a chaos stage).
    pub chaos_enabled: Option<bool>,
    /// Counters and latency histogram.
    pub metrics: MetricsSnapshot,
}

impl Policy {
    /// The state of every stage and the counters.
    pub fn snapshot(&self) -> PolicySnapshot {
        // One read of the stages in force, so a reload during the snapshot cannot mix
        // the stages of two configurations.
        let stages = self.stages();
        PolicySnapshot {
            name: self.name().to_string(),
            breaker: stages.breaker.as_ref().map(|b| b.snapshot()),
            limiter: stages.limiter.as_ref().map(|l| l.snapshot()),
            fleet_limiter: stages.fleet_limiter_snapshot(),
            throttle: stages.throttle.as_ref().map(|t| t.snapshot()),
            bulkhead: stages.bulkhead.as_ref().map(|b| b.snapshot()),
            adaptive: stages.adaptive.as_ref().map(|a| a.snapshot()),
            budget: stages.budget.as_ref().map(|b| b.snapshot()),
            per_key: stages.keyed.as_ref().map(|k| k.snapshot()),
            chaos_enabled: stages.chaos.as_ref().map(|c| c.is_enabled()),
            metrics: self.metrics().snapshot(),
        }
    }
}
