//! Telemetry: the OpenTelemetry names table, trace context on events, and (feature
//! `opentelemetry`) observable instruments over the policies' snapshots.
//!
//! - `names` — the one table of instrument names, units and attributes every language
//!   uses (`docs/telemetry.md`): [`INSTRUMENTS`], [`ATTRIBUTES`], [`METER_NAME`] and the
//!   rest of its constants, as Markdown and JSON ([`names_markdown_table`],
//!   [`names_json`]).
//! - `trace` — [`TraceContext`] (W3C) and the cause of events: the trace context of
//!   the call whose acquire or completion emitted them ([`with_cause`],
//!   [`current_cause`]).
//! - `otel` (feature `opentelemetry`) — `register`: the instruments of the table on
//!   an application's `Meter`, read from an engine's snapshots at collection time.

mod names;
#[cfg(feature = "opentelemetry")]
mod otel;
mod trace;

pub use names::{
    json as names_json, markdown_table as names_markdown_table, Instrument, InstrumentKind,
    ACTIVE_CALLS, ATTRIBUTES, ATTR_OUTCOME, ATTR_POLICY, ATTR_REASON, ATTR_STATE, BREAKER_STATE,
    BREAKER_TRANSITIONS, CALLS, INSTRUMENTS, LOG_FIELDS, METER_NAME, OUTCOME_VALUES, PERMITS,
    REASON_VALUES, REJECTIONS, REJECTION_SPAN_EVENT, RETRIES, SLOW_CALLS, STATE_VALUES,
};
#[cfg(feature = "opentelemetry")]
pub use otel::{add_rejection_event, current_trace_context, register, Registration};
pub(crate) use trace::CauseScope;
pub use trace::{
    current_cause, with_cause, Hex, TraceContext, TraceContextError, TRACE_FLAG_SAMPLED,
};
