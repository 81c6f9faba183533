//! Observability: exact counters, latency histograms, events, Prometheus text and health.
//!
//! - [`PolicyMetrics`]: exact lock-free counters per policy, and the plain
//!   [`MetricsSnapshot`] with its consistency invariant.
//! - `shard` — a policy's per-thread shards, created by a thread's first record, and the
//!   carries of their 32-bit latency buckets.
//! - `thread_slot` — which shard the current thread writes, and how.
//! - [`LatencyHistogram`]: fixed log-linear buckets, 1 µs to 60 s at
//!   ≤ 10 % relative error; [`HistogramSnapshot`] with quantiles.
//! - [`Exposition`]: a writer of the Prometheus text format 0.0.4 that
//!   enforces its rules.
//! - The `breakwater_*` families and their writers for policies ([`write_policy_metrics`]
//!   and its siblings).
//! - [`write_per_key`]: the `breakwater_per_key_*` families: a policy's per-key table and
//!   its most-rejected keys (bounded labels).
//! - [`HealthReport`]: `healthy | degraded | unhealthy` with reasons, as JSON.
//! - [`Metered`]: exact counters for a standalone breaker, limiter or
//!   bulkhead, by opting in (the plain primitives count nothing).
//! - [`Event`] and [`EventSink`]: a synchronous listener for transitions,
//!   budget exhaustion, rejections and reloads (and `tracing` events behind a feature).

mod counters;
mod events;
mod exposition;
mod health;
mod histogram;
mod metered;
mod per_key;
mod prometheus;
pub(crate) mod shard;
pub(crate) mod slot_table;
pub(crate) mod thread_slot;

pub use counters::{MetricsSnapshot, PolicyMetrics};
pub use events::{state_name, Event, EventSink, Listener, ListenerAlreadySet};
pub use exposition::{
    Exposition, ExpositionError, Family, MetricType, SampleValue, STANDARD_BUCKETS,
};
pub use health::{HealthReason, HealthReport, HealthStatus, PolicyHealth, ReasonKind, Usage};
pub use histogram::{HistogramSnapshot, LatencyHistogram};
pub use metered::Metered;
// Every family name and writer: these two modules hold nothing else that is public.
pub use per_key::*;
pub use prometheus::*;

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
