"""Exports a policy's instruments to the console (docs/telemetry.md)."""
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

import breakwater as bw
from breakwater import otel

reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)
provider = MeterProvider(metric_readers=[reader])
engine = bw.Engine.from_toml("[policies.payments.bulkhead]\nmax_concurrent = 8\n")
payments = engine["payments"]
otel.register(engine, meter_provider=provider)  # follows the engine's reloads
otel.install()  # decorators and `with payments:` attach the current span to each call

for n in range(10):
    try:
        with payments:
            if n % 3 == 0:
                raise ValueError("declined")
    except ValueError:
        pass
provider.shutdown()  # collects and prints once
