//! With the real SDK's tracer and in-memory span exporter: the trip event carries the
//! trace of the failing call (span) that tripped the breaker, a rejection inside a span
//! becomes the `breakwater.rejection` span event, and untraced calls carry nothing.

use std::sync::{Arc, Mutex};

use breakwater::adaptive::Priority;
use breakwater::engine::Engine;
use breakwater::metrics::Event;
use breakwater::telemetry::{
    add_rejection_event, current_trace_context, TraceContext, REJECTION_SPAN_EVENT,
};
use breakwater::RejectReason;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

#[test]
fn the_trip_carries_the_trace_of_the_failing_span_and_a_rejection_is_a_span_event() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("checkout");
    let engine = Engine::from_toml_str(
        "[policies.payments.circuit_breaker]\nminimum_calls = 3\nfailure_rate_threshold = 50\nopen_duration = \"1h\"\n",
    )
    .unwrap();
    let trips: Arc<Mutex<Vec<Option<TraceContext>>>> = Arc::default();
    let seen = Arc::clone(&trips);
    engine
        .events()
        .set_listener(move |e: &Event<'_>| {
            if let Event::Transition { to: "open", .. } = e {
                seen.lock().unwrap().push(e.trace());
            }
        })
        .unwrap();
    let payments = engine.policy("payments").unwrap();
    assert_eq!(current_trace_context(), None, "no span active");

    let mut call_traces = Vec::new();
    for n in 0..3 {
        tracer.in_span(format!("charge {n}"), |cx: Context| {
            let trace = current_trace_context().expect("a span is active");
            assert_eq!(
                trace.trace_id(),
                cx.span().span_context().trace_id().to_bytes()
            );
            call_traces.push(trace);
            payments
                .acquire_traced(Priority::Default, trace)
                .unwrap()
                .failure();
        });
    }
    assert_eq!(*trips.lock().unwrap(), [Some(call_traces[2])]);
    assert_ne!(
        call_traces[1].trace_id(),
        call_traces[2].trace_id(),
        "separate traces"
    );

    tracer.in_span("charge rejected", |_cx| {
        let trace = current_trace_context().unwrap();
        let rejection = payments
            .acquire_traced(Priority::Default, trace)
            .unwrap_err();
        assert_eq!(rejection.reason, RejectReason::CircuitOpen);
        add_rejection_event(payments.name(), &rejection);
    });
    // Outside any span nothing is added anywhere.
    add_rejection_event("payments", &payments.acquire().unwrap_err());

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 4);
    let rejected = spans.iter().find(|s| s.name == "charge rejected").unwrap();
    let events: Vec<_> = rejected.events.iter().collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, REJECTION_SPAN_EVENT);
    let attributes: Vec<(String, String)> = events[0]
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect();
    assert_eq!(attributes[0], ("policy".into(), "payments".into()));
    assert_eq!(attributes[1], ("reason".into(), "circuit_open".into()));
    assert_eq!(attributes[2].0, "retry_after");
    assert!(spans
        .iter()
        .filter(|s| s.name != "charge rejected")
        .all(|s| s.events.is_empty()));
}
