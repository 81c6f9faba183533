//! What a breaker can tell about itself: snapshots and transition events.

use super::state::BreakerState;
use std::time::Duration;

/// One state transition, as given to the transition listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// The generation the transition started (every permit of an older one is stale).
    pub generation: u64,
    /// The clock reading (ns) of the thread that performed the transition.
    pub at_nanos: u64,
}

/// How many transitions into each state have happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransitionCounts {
    /// Into `Closed`: passed half-open trials and `reset()` calls.
    pub to_closed: u64,
    /// Into `Open`: trips from `Closed` and failed half-open trials.
    pub to_open: u64,
    /// Into `HalfOpen`.
    pub to_half_open: u64,
    /// Into `ForcedOpen` (`force_open()` calls).
    pub to_forced_open: u64,
    /// Into `Disabled` (`disable()` calls).
    pub to_disabled: u64,
}

/// A cheap, consistent-enough view of a breaker: its state word is read once; the other
/// numbers are read right after it and belong to the same generation (a concurrent
/// record may or may not be included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSnapshot {
    /// The state. An `Open` breaker whose open duration has passed still shows `Open`
    /// until the next acquire moves it to `HalfOpen`.
    pub state: BreakerState,
    /// The generation (bumped by every transition).
    pub generation: u64,
    /// Failed half-open trials since the last close (what the open duration grows with).
    pub open_level: u32,
    /// Outcomes in the window (only in `Closed` and `Disabled`; the window of a
    /// generation is empty once the breaker leaves it).
    pub calls: u64,
    /// Failures and timeouts among them.
    pub failures: u64,
    /// Slow calls among them (0 unless the slow-call rule is on).
    pub slow_calls: u64,
    /// Failures in a row at the end of the window's generation.
    pub consecutive_failures: u64,
    /// Half-open probes let through and not completed yet.
    pub half_open_in_flight: u32,
    /// Half-open probes that completed (success, failure or timeout).
    pub half_open_completed: u32,
    /// Completed half-open probes that failed.
    pub half_open_failures: u32,
    /// When the breaker may let calls through again (clock nanoseconds): the end of the
    /// open period in `Open`, the trial deadline (`half_open_max_wait`) in `HalfOpen`.
    pub open_until_nanos: Option<u64>,
    /// `open_until_nanos` minus the snapshot time (zero if already passed).
    pub retry_after: Option<Duration>,
    /// Transitions so far, by target state.
    pub transitions: TransitionCounts,
    /// Outcomes reported with a generation other than the current one (or for a probe
    /// that was not in flight); they are counted here and change nothing else.
    pub stale_outcomes: u64,
    /// The clock reading (ns) the snapshot was taken at.
    pub at_nanos: u64,
}
