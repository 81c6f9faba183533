//! [`register`]: the instruments of the names table on an application's OpenTelemetry
//! `Meter`, observing an engine's policies (feature `opentelemetry`, the API crate
//! only: the application picks and configures the SDK).
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
//! let meter = opentelemetry::global::meter(breakwater::telemetry::names::METER_NAME);
//! let _registration = breakwater::telemetry::register(&meter, &engine);
//! # }
//! ```

use std::sync::{Arc, Weak};

use opentelemetry::metrics::{
    AsyncInstrument, Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter,
};
use opentelemetry::KeyValue;

use super::names::{
    self, Instrument, ATTR_OUTCOME, ATTR_POLICY, ATTR_REASON, ATTR_STATE, INSTRUMENTS,
};
use crate::engine::Engine;
use crate::metrics::{MetricsSnapshot, STATE_NAMES};
use crate::policy::Policy;
use crate::{Outcome, RejectReason};

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
        match instrument.kind {
            names::InstrumentKind::Counter => registration.counters.push(
                meter
                    .u64_observable_counter(instrument.name)
                    .with_unit(instrument.unit)
                    .with_description(instrument.description)
                    .with_callback(move |observer| observe(&source, instrument, observer))
                    .build(),
            ),
            names::InstrumentKind::UpDownCounter => registration.up_down_counters.push(
                meter
                    .i64_observable_up_down_counter(instrument.name)
                    .with_unit(instrument.unit)
                    .with_description(instrument.description)
                    .with_callback(move |observer| observe(&source, instrument, observer))
                    .build(),
            ),
            names::InstrumentKind::Gauge => registration.gauges.push(
                meter
                    .u64_observable_gauge(instrument.name)
                    .with_unit(instrument.unit)
                    .with_description(instrument.description)
                    .with_callback(move |observer| observe(&source, instrument, observer))
                    .build(),
            ),
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
    if instrument == names::BREAKER_STATE {
        if let Some(breaker) = policy.breaker() {
            let current = breaker.state() as usize;
            for (code, state) in STATE_NAMES.iter().enumerate() {
                point(
                    u64::from(code == current),
                    &[name.clone(), KeyValue::new(ATTR_STATE, *state)],
                );
            }
        }
        return;
    }
    let s: MetricsSnapshot = policy.metrics().snapshot();
    match instrument.name {
        n if n == names::PERMITS.name => point(s.permitted, &[name]),
        n if n == names::CALLS.name => {
            for outcome in Outcome::ALL {
                point(
                    s.outcome(outcome),
                    &[name.clone(), KeyValue::new(ATTR_OUTCOME, outcome.as_str())],
                );
            }
        }
        n if n == names::SLOW_CALLS.name => point(s.slow, &[name]),
        n if n == names::ACTIVE_CALLS.name => point(s.in_flight(), &[name]),
        n if n == names::REJECTIONS.name => {
            for reason in RejectReason::ALL {
                point(
                    s.rejected_by(reason),
                    &[name.clone(), KeyValue::new(ATTR_REASON, reason.as_str())],
                );
            }
        }
        n if n == names::RETRIES.name => point(s.retries, &[name]),
        n if n == names::BREAKER_TRANSITIONS.name => {
            for (code, state) in STATE_NAMES.iter().enumerate() {
                point(
                    s.transitions[code],
                    &[name.clone(), KeyValue::new(ATTR_STATE, *state)],
                );
            }
        }
        _ => {}
    }
}
