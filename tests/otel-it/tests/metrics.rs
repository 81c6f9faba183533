//! Every instrument read through the real SDK (in-memory exporter) equals the policies'
//! snapshots after a multi-threaded run, each data point exactly once, with the names,
//! units and attributes of the names table.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use breakwater::engine::Engine;
use breakwater::telemetry::{InstrumentKind, INSTRUMENTS, METER_NAME, STATE_VALUES};
use breakwater::{Outcome, RejectReason};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

const POLICIES: &str = r#"
[policies.payments.circuit_breaker]
minimum_calls = 50
failure_rate_threshold = 40
open_duration = "1h"

[policies.search.bulkhead]
max_concurrent = 3

[policies.search.retry]
max_attempts = 3
"#;

/// `(instrument, sorted attributes) -> value` of one collection; panics on a repeat.
type Points = BTreeMap<(String, Vec<(String, String)>), i128>;

fn collect(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
) -> (Points, BTreeMap<String, (String, String)>) {
    exporter.reset();
    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    assert_eq!(exported.len(), 1, "one export");
    let mut points = Points::new();
    let mut shapes = BTreeMap::new();
    for scope in exported[0].scope_metrics() {
        assert_eq!(scope.scope().name(), METER_NAME);
        for metric in scope.metrics() {
            let kind = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) if sum.is_monotonic() => "counter",
                AggregatedMetrics::I64(MetricData::Sum(sum)) if !sum.is_monotonic() => {
                    "updowncounter"
                }
                AggregatedMetrics::U64(MetricData::Gauge(_)) => "gauge",
                other => panic!("{}: unexpected data {other:?}", metric.name()),
            };
            let previous = shapes.insert(
                metric.name().to_string(),
                (kind.to_string(), metric.unit().to_string()),
            );
            assert!(previous.is_none(), "{} exported twice", metric.name());
            let mut add = |attributes: Vec<(String, String)>, value: i128| {
                let key = (metric.name().to_string(), attributes);
                assert!(
                    points.insert(key.clone(), value).is_none(),
                    "{key:?} recorded twice"
                );
            };
            let attrs = |kvs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                let mut v: Vec<(String, String)> = kvs
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect();
                v.sort();
                v
            };
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    for p in sum.data_points() {
                        add(attrs(&mut p.attributes()), p.value().into());
                    }
                }
                AggregatedMetrics::I64(MetricData::Sum(sum)) => {
                    for p in sum.data_points() {
                        add(attrs(&mut p.attributes()), p.value().into());
                    }
                }
                AggregatedMetrics::U64(MetricData::Gauge(gauge)) => {
                    for p in gauge.data_points() {
                        add(attrs(&mut p.attributes()), p.value().into());
                    }
                }
                _ => unreachable!(),
            }
        }
    }
    (points, shapes)
}

fn key(instrument: &str, attributes: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut v: Vec<(String, String)> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    (instrument.to_string(), v)
}

#[test]
fn every_instrument_equals_the_snapshot_after_a_multi_threaded_run() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let engine = Arc::new(Engine::from_toml_str(POLICIES).unwrap());
    let registration = breakwater::telemetry::register(&provider.meter(METER_NAME), &engine);
    assert_eq!(registration.instruments(), INSTRUMENTS.len());

    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (engine, barrier) = (Arc::clone(&engine), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let payments = engine.policy("payments").unwrap();
                let search = engine.policy("search").unwrap();
                barrier.wait();
                let mut held = Vec::new();
                for i in 0..500u32 {
                    if let Ok(p) = payments.acquire() {
                        p.record(if (i + t as u32).is_multiple_of(2) {
                            Outcome::Failure
                        } else {
                            Outcome::Success
                        });
                    }
                    match search.acquire() {
                        Ok(p) if i % 7 == 0 => held.push(p),
                        Ok(p) => p.record(if i % 5 == 0 {
                            Outcome::Timeout
                        } else {
                            Outcome::Success
                        }),
                        Err(_) => {}
                    }
                    if held.len() > 1 {
                        held.remove(0).success();
                    }
                }
                // One permit stays out: `active_calls` must see it.
                let out = held.len() as u64;
                std::mem::forget(held);
                out
            })
        })
        .collect();
    let left_out: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let search = engine.policy("search").unwrap();
    let mut state = search.retry_begin(1, None).unwrap();
    let _ = search.retry_next(&mut state, breakwater::policy::RetryOn::FAILURE, None);

    let (points, shapes) = collect(&provider, &exporter);
    for instrument in INSTRUMENTS {
        let (kind, unit) = &shapes[instrument.name];
        let expected = match instrument.kind {
            InstrumentKind::Counter => "counter",
            InstrumentKind::UpDownCounter => "updowncounter",
            InstrumentKind::Gauge => "gauge",
        };
        assert_eq!(
            (kind.as_str(), unit.as_str()),
            (expected, instrument.unit),
            "{}",
            instrument.name
        );
    }
    let mut expected = Points::new();
    for policy in engine.policies() {
        let p = policy.name();
        let s = policy.metrics().snapshot();
        expected.insert(
            key("breakwater.permits", &[("policy", p)]),
            s.permitted.into(),
        );
        for o in Outcome::ALL {
            expected.insert(
                key(
                    "breakwater.calls",
                    &[("policy", p), ("outcome", o.as_str())],
                ),
                s.outcome(o).into(),
            );
        }
        expected.insert(
            key("breakwater.slow_calls", &[("policy", p)]),
            s.slow.into(),
        );
        expected.insert(
            key("breakwater.active_calls", &[("policy", p)]),
            s.in_flight().into(),
        );
        for r in RejectReason::ALL {
            expected.insert(
                key(
                    "breakwater.rejections",
                    &[("policy", p), ("reason", r.as_str())],
                ),
                s.rejected_by(r).into(),
            );
        }
        expected.insert(
            key("breakwater.retries", &[("policy", p)]),
            s.retries.into(),
        );
        if let Some(breaker) = policy.breaker() {
            for (code, state) in STATE_VALUES.iter().enumerate() {
                expected.insert(
                    key(
                        "breakwater.breaker.transitions",
                        &[("policy", p), ("state", state)],
                    ),
                    s.transitions[code].into(),
                );
                expected.insert(
                    key(
                        "breakwater.breaker.state",
                        &[("policy", p), ("state", state)],
                    ),
                    i128::from(breaker.state() as usize == code),
                );
            }
        }
    }
    assert_eq!(points, expected);
    // The run did what the comparison needs: contention, a trip, rejections, a retry.
    let payments = engine.policy("payments").unwrap().metrics().snapshot();
    assert_eq!(payments.transitions[1], 1, "{payments:?}");
    assert!(payments.rejected_by(RejectReason::CircuitOpen) > 0);
    let search = search.metrics().snapshot();
    assert!(
        search.rejected_by(RejectReason::BulkheadFull) > 0,
        "{search:?}"
    );
    assert!(left_out > 0);
    assert_eq!(search.in_flight(), left_out);
    assert_eq!(search.retries, 1);

    // A second collection reports the same cumulative values, still once each.
    let (again, _) = collect(&provider, &exporter);
    assert_eq!(again, expected);
}
