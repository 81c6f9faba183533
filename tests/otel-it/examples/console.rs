//! Exports a policy's instruments to the console: run with
//! `cargo run --manifest-path tests/otel-it/Cargo.toml --target-dir target --example console`.
use std::sync::Arc;

use breakwater::engine::Engine;
use breakwater::telemetry::{self, METER_NAME};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

fn main() {
    let exporter = opentelemetry_stdout::MetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter).build())
        .build();
    let engine = Arc::new(
        Engine::from_toml_str("[policies.payments.bulkhead]\nmax_concurrent = 8\n").unwrap(),
    );
    let _instruments = telemetry::register(&provider.meter(METER_NAME), &engine);

    let payments = engine.policy("payments").unwrap();
    for n in 0..10 {
        let permit = payments.acquire().unwrap();
        if n % 3 == 0 {
            permit.failure()
        } else {
            permit.success()
        }
    }
    provider.shutdown().unwrap(); // collects and prints once
}
