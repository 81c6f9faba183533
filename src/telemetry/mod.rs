//! Telemetry: the OpenTelemetry names table, trace context on events, and (feature
//! `opentelemetry`) observable instruments over the policies' snapshots.
//!
//! - [`names`] — the one table of instrument names, units and attributes every language
//!   uses (`docs/telemetry.md`).
//! - [`trace`] — [`TraceContext`] (W3C) and the cause of events: the trace context of
//!   the call whose acquire or completion emitted them.
//! - `otel` (feature `opentelemetry`) — `register`: the instruments of the table on
//!   an application's `Meter`, read from an engine's snapshots at collection time.

pub mod names;
#[cfg(feature = "opentelemetry")]
pub mod otel;
pub mod trace;

#[cfg(feature = "opentelemetry")]
pub use otel::{add_rejection_event, current_trace_context, register, Registration};
pub(crate) use trace::CauseScope;
pub use trace::{
    current_cause, with_cause, Hex, TraceContext, TraceContextError, TRACE_FLAG_SAMPLED,
};
