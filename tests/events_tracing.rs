//! With the `tracing` feature, emitted events become structured `tracing` events.
//! Run: `cargo test --features tracing --test events_tracing`.
#![cfg(all(feature = "tracing", not(loom)))]

use breakwater::metrics::{Event, EventSink};
use breakwater::telemetry::TraceContext;
use breakwater::RejectReason;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

/// Records every event as `level target field=value …`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let m = event.metadata();
        let mut f = Fields(format!("{} {}", m.level(), m.target()));
        event.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn events_become_structured_tracing_events() {
    let recorder = Recorder::default();
    let sink = EventSink::new(); // no listener: tracing still sees the events
    tracing::subscriber::with_default(recorder.clone(), || {
        sink.emit(&Event::transition("payments", 0, 1, 3, 99));
        sink.emit(&Event::BudgetExhausted {
            policy: "payments",
            at_nanos: 5,
            trace: None,
        });
        sink.emit(&Event::Rejected {
            policy: "payments",
            reason: RejectReason::LoadShed,
            retry_after: None,
            at_nanos: 6,
            trace: None,
        });
        sink.emit(&Event::Rejected {
            policy: "payments",
            reason: RejectReason::RateLimited,
            retry_after: Some(Duration::from_millis(2)),
            at_nanos: 7,
            trace: None,
        });
        sink.emit(&Event::Reload {
            added: 1,
            removed: 2,
            changed: 3,
        });
    });
    let got = recorder.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            "INFO breakwater message=circuit breaker transition policy=payments from=closed to=open generation=3 at_nanos=99",
            "WARN breakwater message=retry budget exhausted policy=payments reason=retry_budget_exhausted at_nanos=5",
            "WARN breakwater message=load shed policy=payments reason=load_shed at_nanos=6",
            "DEBUG breakwater message=call rejected policy=payments reason=rate_limited retry_after_ns=2000000 at_nanos=7",
            "INFO breakwater message=configuration reloaded added=1 removed=2 changed=3",
        ]
    );
}

#[test]
fn events_of_a_traced_call_carry_its_trace_and_span_ids() {
    let recorder = Recorder::default();
    let sink = EventSink::new();
    let trace =
        TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
    tracing::subscriber::with_default(recorder.clone(), || {
        sink.emit(&Event::transition("payments", 0, 1, 3, 99).with_trace(Some(trace)));
        sink.emit(&Event::BudgetExhausted {
            policy: "payments",
            at_nanos: 5,
            trace: Some(trace),
        });
    });
    let got = recorder.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            "INFO breakwater message=circuit breaker transition trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 policy=payments from=closed to=open generation=3 at_nanos=99",
            "WARN breakwater message=retry budget exhausted trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 policy=payments reason=retry_budget_exhausted at_nanos=5",
        ]
    );
}
