//! The engine's reports: the Prometheus text exposition and the health status.

use super::Engine;
use crate::metrics::{
    write_adaptive, write_bulkhead, write_circuit_state, write_fleet_limiter,
    write_limiter_available, write_per_key, write_policy_metrics, Exposition, HealthReport,
    PolicyHealth, Usage,
};
use crate::policy::PolicySnapshot;

impl Engine {
    /// The Prometheus text exposition (format 0.0.4) of every policy:
    /// `breakwater_calls_total{policy,outcome}`, `breakwater_rejections_total{policy,reason}`,
    /// `breakwater_circuit_state{policy,state}`, `breakwater_call_duration_seconds`,
    /// limiter, bulkhead and adaptive gauges, and more. Serve it with
    /// [`Exposition::CONTENT_TYPE`].
    pub fn prometheus(&self) -> String {
        let snapshots: Vec<PolicySnapshot> = self.policies().iter().map(|p| p.snapshot()).collect();
        render_prometheus(&snapshots)
    }

    /// The engine's health, by the rule documented in [`HealthReport`]:
    /// degraded when any breaker is open, forced open or half-open, a retry budget is
    /// exhausted, or a bulkhead or adaptive limit is saturated; unhealthy when every
    /// (enabled) breaker is open. `to_json()` gives the body for a health endpoint.
    pub fn health(&self) -> HealthReport {
        let snapshots: Vec<PolicySnapshot> = self.policies().iter().map(|p| p.snapshot()).collect();
        HealthReport::evaluate(snapshots.iter().map(policy_health))
    }
}

fn policy_health(s: &PolicySnapshot) -> PolicyHealth<'_> {
    PolicyHealth {
        policy: &s.name,
        breaker_state: s.breaker.as_ref().map(|b| b.state as u8),
        budget_exhausted: s.budget.as_ref().is_some_and(|b| b.available == 0),
        bulkhead: s.bulkhead.as_ref().map(|b| Usage {
            in_use: b.in_flight as u64,
            limit: b.max_concurrent as u64,
        }),
        adaptive: s.adaptive.as_ref().map(|a| Usage {
            in_use: a.in_flight as u64,
            limit: a.limit as u64,
        }),
        fleet_unavailable: s.fleet_limiter.as_ref().and_then(|f| f.message.as_deref()),
    }
}

/// Renders policy snapshots as one exposition (families grouped across policies).
pub fn render_prometheus(snapshots: &[PolicySnapshot]) -> String {
    let mut exp = Exposition::new();
    for s in snapshots {
        // Names are validated (letters, digits, `_ - . :`) and the family names are
        // fixed, so writing cannot fail; a failure would be a bug, reported in the text.
        let result = (|| {
            write_policy_metrics(&mut exp, &s.name, &s.metrics)?;
            if let Some(b) = &s.breaker {
                write_circuit_state(&mut exp, &s.name, b.state as u8)?;
            }
            if let Some(l) = &s.limiter {
                write_limiter_available(&mut exp, &s.name, l.available as f64)?;
            }
            if let Some(f) = &s.fleet_limiter {
                write_fleet_limiter(&mut exp, &s.name, f)?;
            }
            if let Some(b) = &s.bulkhead {
                write_bulkhead(
                    &mut exp,
                    &s.name,
                    b.in_flight as u64,
                    b.max_concurrent as u64,
                )?;
            }
            if let Some(a) = &s.adaptive {
                write_adaptive(&mut exp, &s.name, a.limit as u64, a.in_flight as u64)?;
            }
            if let Some(k) = &s.per_key {
                write_per_key(&mut exp, &s.name, k)?;
            }
            Ok::<(), crate::metrics::ExpositionError>(())
        })();
        if let Err(e) = result {
            return format!(
                "# breakwater: exposition error for policy {}: {e}\n",
                s.name
            );
        }
    }
    exp.render()
}
