//! breakwater's metric families in the Prometheus text format: one name per family
//! (defined once here), and the writers that fill them from a policy's snapshots through
//! the generic [`Exposition`] writer.

use crate::breaker::BreakerState;
use crate::metrics::counters::MetricsSnapshot;
use crate::metrics::exposition::{Exposition, ExpositionError};
use crate::{Outcome, RejectReason};

/// `breakwater_permits_total{policy}`: calls let through.
pub const PERMITS_TOTAL: &str = "breakwater_permits_total";
/// `breakwater_calls_total{policy,outcome}`: completed calls by outcome.
pub const CALLS_TOTAL: &str = "breakwater_calls_total";
/// `breakwater_slow_calls_total{policy}`: completions slower than the slow threshold.
pub const SLOW_CALLS_TOTAL: &str = "breakwater_slow_calls_total";
/// `breakwater_rejections_total{policy,reason}`: refused calls by reason (a retry the
/// retry budget refused is `reason="retry_budget_exhausted"`).
pub const REJECTIONS_TOTAL: &str = "breakwater_rejections_total";
/// `breakwater_retries_total{policy}`: retry attempts started.
pub const RETRIES_TOTAL: &str = "breakwater_retries_total";
/// `breakwater_circuit_transitions_total{policy,to}`: breaker transitions by state entered.
pub const CIRCUIT_TRANSITIONS_TOTAL: &str = "breakwater_circuit_transitions_total";
/// `breakwater_call_duration_seconds{policy}`: latency histogram.
pub const CALL_DURATION_SECONDS: &str = "breakwater_call_duration_seconds";
/// `breakwater_circuit_state{policy,state}`: 1 for the current state, 0 for the others.
pub const CIRCUIT_STATE: &str = "breakwater_circuit_state";
/// `breakwater_limiter_available{policy}`: permits the rate limiter would grant now.
pub const LIMITER_AVAILABLE: &str = "breakwater_limiter_available";
/// `breakwater_bulkhead_in_flight{policy}`: calls inside the bulkhead.
pub const BULKHEAD_IN_FLIGHT: &str = "breakwater_bulkhead_in_flight";
/// `breakwater_bulkhead_max_concurrent{policy}`: the bulkhead's limit.
pub const BULKHEAD_MAX_CONCURRENT: &str = "breakwater_bulkhead_max_concurrent";
/// `breakwater_adaptive_limit{policy}`: the adaptive concurrency limit now.
pub const ADAPTIVE_LIMIT: &str = "breakwater_adaptive_limit";
/// `breakwater_adaptive_in_flight{policy}`: calls inside the adaptive limit.
pub const ADAPTIVE_IN_FLIGHT: &str = "breakwater_adaptive_in_flight";
/// `breakwater_fleet_unavailable{policy}`: 1 while a fleet limit cannot reach its Redis.
pub const FLEET_UNAVAILABLE: &str = "breakwater_fleet_unavailable";
/// `breakwater_fleet_local_tokens{policy}`: leased tokens not yet spent.
pub const FLEET_LOCAL_TOKENS: &str = "breakwater_fleet_local_tokens";
/// `breakwater_fleet_batch{policy}`: the current lease batch size.
pub const FLEET_BATCH: &str = "breakwater_fleet_batch";
/// `breakwater_fleet_stranded_bound{policy}`: the most tokens this process can hold
/// unspent (the fleet's stranded tokens are at most N times this).
pub const FLEET_STRANDED_BOUND: &str = "breakwater_fleet_stranded_bound";
/// `breakwater_fleet_burst_bound{policy}`: the quota's burst (the fleet admits at most
/// `rate·T/period` plus this from a start with nothing leased).
pub const FLEET_BURST_BOUND: &str = "breakwater_fleet_burst_bound";
/// `breakwater_fleet_round_trips_total{policy}`: Redis calls made.
pub const FLEET_ROUND_TRIPS_TOTAL: &str = "breakwater_fleet_round_trips_total";
/// `breakwater_fleet_fallback_admissions_total{policy}`: calls admitted by the
/// `on_unavailable` fallback.
pub const FLEET_FALLBACK_ADMISSIONS_TOTAL: &str = "breakwater_fleet_fallback_admissions_total";

/// Writes one policy's counters and latency histogram into the families
/// [`PERMITS_TOTAL`], [`CALLS_TOTAL`] (`outcome` = success, failure, timeout, ignored),
/// [`SLOW_CALLS_TOTAL`], [`REJECTIONS_TOTAL`] (`reason` = every [`RejectReason`]),
/// [`RETRIES_TOTAL`], [`CIRCUIT_TRANSITIONS_TOTAL`]
/// (`to` = every state name) and [`CALL_DURATION_SECONDS`]. Every series is written, zero
/// or not, so rates start from a known zero. Call it once per policy, then render once.
pub fn write_policy_metrics(
    exp: &mut Exposition,
    policy: &str,
    snap: &MetricsSnapshot,
) -> Result<(), ExpositionError> {
    let p = ("policy", policy);
    exp.counter_family(PERMITS_TOTAL, "Calls let through (permits handed out).")?
        .sample(&[p], snap.permitted)?;
    let calls = exp.counter_family(CALLS_TOTAL, "Completed calls by outcome.")?;
    for o in Outcome::ALL {
        calls.sample(&[p, ("outcome", o.as_str())], snap.outcome(o))?;
    }
    exp.counter_family(
        SLOW_CALLS_TOTAL,
        "Completed calls slower than the slow-call threshold.",
    )?
    .sample(&[p], snap.slow)?;
    let rejections = exp.counter_family(REJECTIONS_TOTAL, "Refused calls by reason.")?;
    for r in RejectReason::ALL {
        rejections.sample(&[p, ("reason", r.as_str())], snap.rejected_by(r))?;
    }
    exp.counter_family(RETRIES_TOTAL, "Retry attempts started.")?
        .sample(&[p], snap.retries)?;
    let transitions = exp.counter_family(
        CIRCUIT_TRANSITIONS_TOTAL,
        "Circuit breaker transitions by the state entered.",
    )?;
    for (state, &n) in BreakerState::ALL.iter().zip(snap.transitions.iter()) {
        transitions.sample(&[p, ("to", state.as_str())], n)?;
    }
    exp.histogram_family(
        CALL_DURATION_SECONDS,
        "Duration of completed calls, seconds.",
    )?
    .histogram_sample(&[p], &snap.latency)?;
    Ok(())
}

/// Writes [`CIRCUIT_STATE`]: 1 for the state with code `state_code`, 0 for the other
/// states (an unknown code writes all zeros).
pub fn write_circuit_state(
    exp: &mut Exposition,
    policy: &str,
    state_code: u8,
) -> Result<(), ExpositionError> {
    let family = exp.gauge_family(
        CIRCUIT_STATE,
        "Circuit breaker state: 1 for the current state, 0 otherwise.",
    )?;
    for state in BreakerState::ALL {
        family.sample(
            &[("policy", policy), ("state", state.as_str())],
            state.code() == state_code,
        )?;
    }
    Ok(())
}

/// Writes [`LIMITER_AVAILABLE`].
pub fn write_limiter_available(
    exp: &mut Exposition,
    policy: &str,
    available: f64,
) -> Result<(), ExpositionError> {
    exp.gauge_family(
        LIMITER_AVAILABLE,
        "Permits the rate limiter would grant now.",
    )?
    .sample(&[("policy", policy)], available)?;
    Ok(())
}

/// Writes a fleet rate limit's families ([`FLEET_UNAVAILABLE`], [`FLEET_LOCAL_TOKENS`],
/// [`FLEET_BATCH`], [`FLEET_STRANDED_BOUND`], [`FLEET_BURST_BOUND`],
/// [`FLEET_ROUND_TRIPS_TOTAL`], [`FLEET_FALLBACK_ADMISSIONS_TOTAL`]).
pub fn write_fleet_limiter(
    exp: &mut Exposition,
    policy: &str,
    snap: &crate::fleet::FleetLimiterSnapshot,
) -> Result<(), ExpositionError> {
    let p = [("policy", policy)];
    exp.gauge_family(
        FLEET_UNAVAILABLE,
        "1 while the fleet limit cannot reach its Redis.",
    )?
    .sample(&p, u64::from(snap.unavailable))?;
    exp.gauge_family(FLEET_LOCAL_TOKENS, "Leased fleet tokens not yet spent.")?
        .sample(&p, snap.local_tokens)?;
    exp.gauge_family(FLEET_BATCH, "The fleet limit's lease batch size.")?
        .sample(&p, snap.batch)?;
    exp.gauge_family(
        FLEET_STRANDED_BOUND,
        "The most fleet tokens this process can hold unspent.",
    )?
    .sample(&p, snap.stranded_bound)?;
    exp.gauge_family(FLEET_BURST_BOUND, "The fleet quota's burst.")?
        .sample(&p, snap.burst_bound)?;
    exp.counter_family(
        FLEET_ROUND_TRIPS_TOTAL,
        "Redis calls made by the fleet limit.",
    )?
    .sample(&p, snap.round_trips)?;
    exp.counter_family(
        FLEET_FALLBACK_ADMISSIONS_TOTAL,
        "Calls admitted by the fleet limit's on_unavailable fallback.",
    )?
    .sample(&p, snap.admitted_fallback)?;
    Ok(())
}

/// Writes [`BULKHEAD_IN_FLIGHT`] and [`BULKHEAD_MAX_CONCURRENT`].
pub fn write_bulkhead(
    exp: &mut Exposition,
    policy: &str,
    in_flight: u64,
    max_concurrent: u64,
) -> Result<(), ExpositionError> {
    exp.gauge_family(BULKHEAD_IN_FLIGHT, "Calls inside the bulkhead.")?
        .sample(&[("policy", policy)], in_flight)?;
    exp.gauge_family(BULKHEAD_MAX_CONCURRENT, "The bulkhead's concurrency limit.")?
        .sample(&[("policy", policy)], max_concurrent)?;
    Ok(())
}

/// Writes [`ADAPTIVE_LIMIT`] and [`ADAPTIVE_IN_FLIGHT`].
pub fn write_adaptive(
    exp: &mut Exposition,
    policy: &str,
    limit: u64,
    in_flight: u64,
) -> Result<(), ExpositionError> {
    exp.gauge_family(ADAPTIVE_LIMIT, "The adaptive concurrency limit now.")?
        .sample(&[("policy", policy)], limit)?;
    exp.gauge_family(ADAPTIVE_IN_FLIGHT, "Calls inside the adaptive limit.")?
        .sample(&[("policy", policy)], in_flight)?;
    Ok(())
}
