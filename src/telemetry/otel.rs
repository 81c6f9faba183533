//! OpenTelemetry (feature `opentelemetry`, the API crate only: the application picks
//! and configures the SDK):
//!
//! - [`register`]: the instruments of the names table on the application's `Meter`,
//!   observing an engine's policies;
//! - [`current_trace_context`]: the trace context of the active span, to attach to a
//!   permit ([`Policy::acquire_traced`](crate::policy::Policy::acquire_traced));
//! - [`add_rejection_event`]: the `breakwater.rejection` span event on the active span.
//!
//! Every instrument is observable: at each collection its callback takes the exact
//! snapshot of every policy the engine holds then (policies a reload adds appear, those
//! it removes disappear), so a call costs nothing more than without OpenTelemetry. Each
//! instrument takes its own snapshot, so under load two instruments of one collection
//! may be a few calls apart; each is exact at its own instant, and at rest they agree.
//!
//! ```
//! # #[cfg(feature = "opentelemetry")] {
//! use std::sync::Arc;
//! use breakwater::engine::Engine;
//!
//! let engine = Arc::new(Engine::from_toml_str("[policies.search]\n").unwrap());
//! // The application's meter (here the global one, a no-op until an SDK is installed).
//! let meter = opentelemetry::global::meter(breakwater::telemetry::METER_NAME);
//! let _registration = breakwater::telemetry::register(&meter, &engine);
//! # }
//! ```

use std::sync::{Arc, Weak};

use opentelemetry::metrics::{
    AsyncInstrument, Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter,
};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use super::names::{
    self, Instrument, ATTR_OUTCOME, ATTR_POLICY, ATTR_REASON, ATTR_STATE, INSTRUMENTS,
};
use crate::engine::Engine;
use crate::metrics::MetricsSnapshot;
use crate::policy::Policy;
use crate::{Outcome, RejectReason, Rejection};

use super::TraceContext;

impl TraceContext {
    /// The trace context of an OpenTelemetry span context; `None` when it is invalid
    /// (no active span).
    pub fn from_span_context(span: &SpanContext) -> Option<TraceContext> {
        if !span.is_valid() {
            return None;
        }
        TraceContext::new(
            span.trace_id().to_bytes(),
            span.span_id().to_bytes(),
            span.trace_flags().to_u8(),
        )
        .ok()
    }
}

/// The trace context of the span active in the current OpenTelemetry context, if any.
pub fn current_trace_context() -> Option<TraceContext> {
    let context = Context::current();
    TraceContext::from_span_context(context.span().span_context())
}

/// Adds the span event `breakwater.rejection` (attributes `policy`, `reason`,
/// `retry_after` in seconds when known) to the span active in the current
/// OpenTelemetry context; nothing when no span is active.
pub fn add_rejection_event(policy: &str, rejection: &Rejection) {
    let context = Context::current();
    let span = context.span();
    if !span.span_context().is_valid() {
        return;
    }
    let mut attributes = vec![
        KeyValue::new(ATTR_POLICY, policy.to_owned()),
        KeyValue::new(ATTR_REASON, rejection.reason.as_str()),
    ];
    if let Some(after) = rejection.retry_after {
        attributes.push(KeyValue::new("retry_after", after.as_secs_f64()));
    }
    span.add_event(names::REJECTION_SPAN_EVENT, attributes);
}

/// The instruments [`register`] created. The SDK keeps their callbacks for the life of
/// its meter provider; the callbacks hold the engine weakly, so they observe nothing
/// once it is dropped.
#[derive(Debug)]
pub struct Registration {
    counters: Vec<ObservableCounter<u64>>,
    up_down_counters: Vec<ObservableUpDownCounter<i64>>,
    gauges: Vec<ObservableGauge<u64>>,
}

impl Registration {
    /// How many instruments were registered (the whole table).
    pub fn instruments(&self) -> usize {
        self.counters.len() + self.up_down_counters.len() + self.gauges.len()
    }
}

/// Registers every instrument of [`names::INSTRUMENTS`] on `meter`, observing the
/// policies of `engine`. Call it once per meter provider: calling it again registers
/// the instruments again, and the SDK then reports every value twice.
pub fn register(meter: &Meter, engine: &Arc<Engine>) -> Registration {
    let mut registration = Registration {
        counters: Vec::new(),
        up_down_counters: Vec::new(),
        gauges: Vec::new(),
    };
    for instrument in INSTRUMENTS {
        let source = Arc::downgrade(engine);
        // The three kinds differ only in the builder and the observer's value type.
        macro_rules! observable {
            ($builder:ident) => {
                meter
                    .$builder(instrument.name)
                    .with_unit(instrument.unit)
                    .with_description(instrument.description)
                    .with_callback(move |observer| observe(&source, instrument, observer))
                    .build()
            };
        }
        match instrument.kind {
            names::InstrumentKind::Counter => registration
                .counters
                .push(observable!(u64_observable_counter)),
            names::InstrumentKind::UpDownCounter => registration
                .up_down_counters
                .push(observable!(i64_observable_up_down_counter)),
            names::InstrumentKind::Gauge => {
                registration.gauges.push(observable!(u64_observable_gauge))
            }
        }
    }
    registration
}

/// A value an instrument observes: `u64` counts, or an `i64` for the up-down counter.
trait Observed: Copy {
    fn from_count(count: u64) -> Self;
}

impl Observed for u64 {
    fn from_count(count: u64) -> Self {
        count
    }
}

impl Observed for i64 {
    fn from_count(count: u64) -> Self {
        i64::try_from(count).unwrap_or(i64::MAX)
    }
}

/// Observes `instrument` for every policy of the engine behind `source`.
fn observe<T: Observed>(
    source: &Weak<Engine>,
    instrument: Instrument,
    observer: &dyn AsyncInstrument<T>,
) {
    let Some(engine) = source.upgrade() else {
        return;
    };
    for policy in engine.policies() {
        observe_policy(&policy, instrument, &|value, attributes| {
            observer.observe(T::from_count(value), attributes)
        });
    }
}

/// The data points of `instrument` for one policy, as `(value, attributes)`.
fn observe_policy(policy: &Policy, instrument: Instrument, point: &dyn Fn(u64, &[KeyValue])) {
    let name = KeyValue::new(ATTR_POLICY, policy.name().to_owned());
    if instrument == names::BREAKER_STATE || instrument == names::BREAKER_TRANSITIONS {
        // Breaker instruments only for policies that have a breaker.
        let Some(breaker) = policy.breaker() else {
            return;
        };
        if instrument == names::BREAKER_STATE {
            let current = breaker.state() as usize;
            for (code, state) in names::STATE_VALUES.iter().enumerate() {
                point(
                    u64::from(code == current),
                    &[name.clone(), KeyValue::new(ATTR_STATE, *state)],
                );
            }
            return;
        }
    }
    let s: MetricsSnapshot = policy.metrics().snapshot();
    match () {
        _ if instrument == names::PERMITS => point(s.permitted, &[name]),
        _ if instrument == names::CALLS => {
            for outcome in Outcome::ALL {
                point(
                    s.outcome(outcome),
                    &[name.clone(), KeyValue::new(ATTR_OUTCOME, outcome.as_str())],
                );
            }
        }
        _ if instrument == names::SLOW_CALLS => point(s.slow, &[name]),
        _ if instrument == names::ACTIVE_CALLS => point(s.in_flight(), &[name]),
        _ if instrument == names::REJECTIONS => {
            for reason in RejectReason::ALL {
                point(
                    s.rejected_by(reason),
                    &[name.clone(), KeyValue::new(ATTR_REASON, reason.as_str())],
                );
            }
        }
        _ if instrument == names::RETRIES => point(s.retries, &[name]),
        _ if instrument == names::BREAKER_TRANSITIONS => {
            for (code, state) in names::STATE_VALUES.iter().enumerate() {
                point(
                    s.transitions[code],
                    &[name.clone(), KeyValue::new(ATTR_STATE, *state)],
                );
            }
        }
        // BREAKER_STATE, answered above.
        _ => {}
    }
}
