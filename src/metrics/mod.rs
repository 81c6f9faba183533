//! Observability: exact counters, latency histograms, events, Prometheus text and health.
//!
//! - [`counters`] — [`PolicyMetrics`]: exact lock-free counters per policy, and the plain
//!   [`MetricsSnapshot`] with its consistency invariant.
//! - `shard` — a policy's per-thread shards, created by a thread's first record, and the
//!   carries of their 32-bit latency buckets.
//! - `thread_slot` — which shard the current thread writes, and how.
//! - [`histogram`] — [`LatencyHistogram`]: fixed log-linear buckets, 1 µs to 60 s at
//!   ≤ 10 % relative error; [`HistogramSnapshot`] with quantiles.
//! - [`exposition`] — [`Exposition`]: a writer of the Prometheus text format 0.0.4 that
//!   enforces its rules.
//! - [`prometheus`] — the `breakwater_*` families and their writers for policies.
//! - [`per_key`] — the `breakwater_per_key_*` families: a policy's per-key table and
//!   its most-rejected keys (bounded labels).
//! - [`health`] — [`HealthReport`]: `healthy | degraded | unhealthy` with reasons, as JSON.
//! - [`metered`] — [`Metered`]: exact counters for a standalone breaker, limiter or
//!   bulkhead, by opting in (the plain primitives count nothing).
//! - [`events`] — [`Event`] and [`EventSink`]: a synchronous listener for transitions,
//!   budget exhaustion, rejections and reloads (and `tracing` events behind a feature).

pub mod counters;
pub mod events;
pub mod exposition;
pub mod health;
pub mod histogram;
pub mod metered;
pub mod per_key;
pub mod prometheus;
pub(crate) mod shard;
pub(crate) mod thread_slot;

pub use counters::{MetricsSnapshot, PolicyMetrics};
pub use events::{state_name, Event, EventSink, Listener, ListenerAlreadySet};
pub use exposition::{Exposition, ExpositionError, Family, MetricType, SampleValue};
pub use health::{HealthReason, HealthReport, HealthStatus, PolicyHealth, ReasonKind, Usage};
pub use histogram::{HistogramSnapshot, LatencyHistogram};
pub use metered::Metered;
pub use per_key::write_per_key;
pub use prometheus::{
    write_adaptive, write_bulkhead, write_circuit_state, write_fleet_limiter,
    write_limiter_available, write_policy_metrics,
};

/// The current thread's metrics slot (`0` owns the only shard under loom; anything else
/// writes the shared one). For loom models only: it lets a model check that a slot
/// really passed from an exiting thread to a running one.
#[cfg(loom)]
#[doc(hidden)]
pub fn current_thread_slot() -> usize {
    thread_slot::current()
}

/// Gives the current thread's metrics slot back, as its thread-local destructor does at
/// thread exit (loom models only: loom cannot run atomics in destructors).
#[cfg(loom)]
#[doc(hidden)]
pub fn exit_current_thread() {
    thread_slot::exit_current_thread();
}
