"""breakwater.otel with the real SDK's in-memory reader and span exporter: every
instrument equals the snapshots after a multi-threaded run (each point once), the trip
event carries the trace of the failing span, a rejection is a span event, and the log
record has the documented fields; keyed calls are traced alike."""
from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import threading
from typing import Any, Dict, List, Tuple

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider  # type: ignore[import-not-found, unused-ignore] # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint  # type: ignore[import-not-found, unused-ignore] # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # type: ignore[import-not-found, unused-ignore] # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # type: ignore[import-not-found, unused-ignore] # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # type: ignore[import-not-found, unused-ignore] # noqa: E402

import breakwater as bw  # noqa: E402
from breakwater import otel  # noqa: E402

NAMES = pathlib.Path(__file__).resolve().parents[3] / "docs" / "telemetry-names.json"

POLICIES = """
[policies.payments.circuit_breaker]
minimum_calls = 50
failure_rate_threshold = 40
open_duration = "1h"
[policies.search.bulkhead]
max_concurrent = 3
"""


def test_the_table_is_the_one_the_rust_table_generates() -> None:
    table = json.loads(NAMES.read_text())
    assert table["meter"] == otel.METER_NAME
    assert table["rejection_span_event"] == otel.REJECTION_SPAN_EVENT
    assert [(i["name"], i["kind"], i["unit"], tuple(i["attributes"])) for i in table["instruments"]] == [
        (name, kind, unit, attributes) for name, kind, unit, _, attributes in otel.INSTRUMENTS
    ]


def _collect(reader: InMemoryMetricReader) -> Dict[Tuple[str, Tuple[Tuple[str, Any], ...]], int]:
    points: Dict[Tuple[str, Tuple[Tuple[str, Any], ...]], int] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == otel.METER_NAME
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint), f"{metric.name}: {point!r}"
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    assert key not in points, f"{key} recorded twice"
                    assert isinstance(point.value, int)
                    points[key] = point.value
    return points


def test_every_instrument_equals_the_snapshot_after_a_threaded_run() -> None:
    engine = bw.Engine.from_toml(POLICIES)
    payments, search = engine["payments"], engine["search"]
    reader = InMemoryMetricReader()
    otel.register([payments, search], meter_provider=MeterProvider(metric_readers=[reader]))

    def work(offset: int) -> None:
        for i in range(300):
            try:
                with payments:
                    if (i + offset) % 2 == 0:
                        raise ValueError("dependency failed")
            except (ValueError, bw.RejectedError):
                pass
            try:
                with search:
                    pass
            except bw.RejectedError:
                pass

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    points = _collect(reader)
    expected: Dict[Tuple[str, Tuple[Tuple[str, Any], ...]], int] = {}
    for policy in (payments, search):
        s = policy.snapshot()
        p = ("policy", s.name)
        expected[("breakwater.permits", (p,))] = s.permitted
        for outcome in ("success", "failure", "timeout", "ignored"):
            expected[("breakwater.calls", (("outcome", outcome), p))] = getattr(s, outcome)
        expected[("breakwater.slow_calls", (p,))] = s.slow
        expected[("breakwater.active_calls", (p,))] = s.permitted - s.success - s.failure - s.timeout - s.ignored
        for reason, count in s.rejected.items():
            expected[("breakwater.rejections", (p, ("reason", reason)))] = count
        expected[("breakwater.retries", (p,))] = s.retries
        if s.breaker_state is not None:
            for state, count in s.transitions.items():
                expected[("breakwater.breaker.transitions", (p, ("state", state)))] = count
                expected[("breakwater.breaker.state", (p, ("state", state)))] = int(state == s.breaker_state)
    assert points == expected
    assert payments.snapshot().transitions["open"] == 1
    assert payments.snapshot().rejected["circuit_open"] > 0


def test_the_trip_carries_the_trace_of_the_failing_span(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("checkout")
    engine = bw.Engine.from_toml(
        '[policies.payments.circuit_breaker]\nminimum_calls = 3\nfailure_rate_threshold = 50\nopen_duration = "1h"\n')
    events: List[bw.Event] = []
    engine.on_event(events.append)
    engine.on_event(otel.log_events())
    payments = engine["payments"]

    @payments
    def charge() -> None:
        raise ValueError("declined")

    otel.install()
    try:
        last = None
        for n in range(3):
            with tracer.start_as_current_span(f"charge {n}") as span:
                last = span.get_span_context()
                with pytest.raises(ValueError):
                    charge()
        with caplog.at_level(logging.INFO, logger="breakwater"):
            with tracer.start_as_current_span("charge rejected"):
                with pytest.raises(bw.RejectedError):
                    charge()
        # Untraced: no span, nothing attached.
        with pytest.raises(bw.RejectedError):
            charge()
    finally:
        otel.uninstall()

    assert last is not None
    trips = [e for e in events if e.kind == "transition"]
    assert len(trips) == 1
    assert trips[0].trace_id == format(last.trace_id, "032x")
    assert trips[0].span_id == format(last.span_id, "016x")

    spans = {s.name: s for s in exporter.get_finished_spans()}
    rejected = spans["charge rejected"]
    assert [e.name for e in rejected.events] == [otel.REJECTION_SPAN_EVENT]
    attributes = dict(rejected.events[0].attributes or {})
    assert attributes["policy"] == "payments" and attributes["reason"] == "circuit_open"
    retry_after = attributes["retry_after"]
    assert isinstance(retry_after, float) and retry_after > 0
    assert all(not s.events for name, s in spans.items() if name != "charge rejected")


def test_a_trip_by_keyed_calls_carries_the_trace_of_the_failing_keyed_call() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("checkout")
    engine = bw.Engine.from_toml(
        '[policies.payments.circuit_breaker]\nminimum_calls = 3\nfailure_rate_threshold = 50\nopen_duration = "1h"\n'
        '[policies.payments.per_key]\nrate = 100\nperiod = "1s"\n')
    events: List[bw.Event] = []
    engine.on_event(events.append)
    payments = engine["payments"]
    tenant = payments.key(b"tenant-1")

    @tenant
    def charge() -> None:
        raise ValueError("declined")

    otel.install()
    try:
        with tracer.start_as_current_span("charge 0"):
            with pytest.raises(ValueError):
                charge()
        with tracer.start_as_current_span("charge 1"):
            with pytest.raises(ValueError):
                with payments.key("tenant-1"):
                    raise ValueError("declined")
        # The two-step form, completed after its span ended: the completion (which
        # trips) carries the acquire's context, not the current one (none).
        with tracer.start_as_current_span("charge 2") as span:
            last = span.get_span_context()
            permit = payments.acquire_key(b"tenant-1")
        permit.complete("failure")
        with tracer.start_as_current_span("charge rejected"):
            with pytest.raises(bw.RejectedError):
                charge()
    finally:
        otel.uninstall()

    trips = [e for e in events if e.kind == "transition"]
    assert len(trips) == 1
    assert trips[0].trace_id == format(last.trace_id, "032x")
    assert trips[0].span_id == format(last.span_id, "016x")

    spans = {s.name: s for s in exporter.get_finished_spans()}
    rejected = spans["charge rejected"]
    assert [e.name for e in rejected.events] == [otel.REJECTION_SPAN_EVENT]
    assert dict(rejected.events[0].attributes or {})["reason"] == "circuit_open"


def test_a_span_the_sampler_dropped_attaches_nothing() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF  # type: ignore[import-not-found, unused-ignore]

    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("checkout")
    recording = TracerProvider().get_tracer("checkout")
    engine = bw.Engine.from_toml(
        '[policies.payments.circuit_breaker]\nminimum_calls = 2\nfailure_rate_threshold = 50\nopen_duration = "1h"\n')
    events: List[bw.Event] = []
    engine.on_event(events.append)

    @engine["payments"]
    def charge() -> None:
        raise ValueError("declined")

    otel.install()
    try:
        with tracer.start_as_current_span("dropped") as span:
            assert span.get_span_context().is_valid and not span.is_recording()
            assert otel.current_trace_context() is None
            for _ in range(2):
                with pytest.raises(ValueError):
                    charge()
        with recording.start_as_current_span("kept") as kept:
            c = kept.get_span_context()
            assert otel.current_trace_context() == (
                c.trace_id.to_bytes(16, "big"), c.span_id.to_bytes(8, "big"), int(c.trace_flags))
        assert otel.current_trace_context() is None
    finally:
        otel.uninstall()
    trips = [e for e in events if e.kind == "transition"]
    assert len(trips) == 1 and trips[0].trace_id is None and trips[0].span_id is None


def test_the_log_record_of_a_traced_trip_has_the_documented_fields(caplog: pytest.LogCaptureFixture) -> None:
    tracer = TracerProvider().get_tracer("checkout")
    engine = bw.Engine.from_toml(
        '[policies.payments.circuit_breaker]\nminimum_calls = 2\nfailure_rate_threshold = 50\nopen_duration = "1h"\n')
    engine.on_event(otel.log_events())

    @engine["payments"]
    def charge() -> None:
        raise ValueError("declined")

    otel.install()
    try:
        with caplog.at_level(logging.INFO, logger="breakwater"):
            for n in range(2):
                with tracer.start_as_current_span(f"charge {n}") as span:
                    tripped_by = span.get_span_context()
                    with pytest.raises(ValueError):
                        charge()
    finally:
        otel.uninstall()
    records = [r for r in caplog.records if r.name == "breakwater"]
    assert [r.getMessage() for r in records] == ["circuit breaker transition"]
    fields = {name: getattr(records[0], name) for name in ("trace_id", "span_id", "policy", "from", "to")}
    assert fields == {"trace_id": format(tripped_by.trace_id, "032x"), "span_id": format(tripped_by.span_id, "016x"),
                      "policy": "payments", "from": "closed", "to": "open"}
    assert records[0].levelno == logging.INFO


BUDGETED = """
[policies.payments.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
budget = { ratio = 0.01, min_per_second = 0 }
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_refused_retry_carries_the_trace_of_its_call_and_is_a_span_event(mode: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("checkout")
    engine = bw.Engine.from_toml(BUDGETED)
    events: List[bw.Event] = []
    engine.on_event(events.append)
    payments = engine["payments"]

    @payments
    def charge() -> None:
        raise ConnectionError("reset")

    @payments
    async def acharge() -> None:
        raise ConnectionError("reset")

    otel.install()
    try:
        with tracer.start_as_current_span("charge") as span:
            caller = span.get_span_context()
            with pytest.raises(bw.RetryBudgetExhaustedError) as caught:
                if mode == "sync":
                    charge()
                else:
                    asyncio.run(acharge())
        assert isinstance(caught.value.__cause__, ConnectionError)
    finally:
        otel.uninstall()

    exhausted = [e for e in events if e.kind == "budget_exhausted"]
    assert len(exhausted) == 1
    assert exhausted[0].trace_id == format(caller.trace_id, "032x")
    assert exhausted[0].span_id == format(caller.span_id, "016x")
    (finished,) = exporter.get_finished_spans()
    assert [e.name for e in finished.events] == [otel.REJECTION_SPAN_EVENT]
    assert dict(finished.events[0].attributes or {}) == {"policy": "payments", "reason": "retry_budget_exhausted"}
    assert payments.snapshot().rejected["retry_budget_exhausted"] == 1


def test_register_an_engine_follows_its_reloads() -> None:
    engine = bw.Engine.from_toml("[policies.payments.bulkhead]\nmax_concurrent = 2\n"
                                 "[policies.search.bulkhead]\nmax_concurrent = 2\n")
    reader = InMemoryMetricReader()
    otel.register(engine, meter_provider=MeterProvider(metric_readers=[reader]))
    with engine["payments"]:
        pass

    def permits() -> Dict[str, int]:
        return {dict(k[1])["policy"]: v for k, v in _collect(reader).items() if k[0] == "breakwater.permits"}

    assert permits() == {"payments": 1, "search": 0}
    engine.reload("[policies.payments.bulkhead]\nmax_concurrent = 2\n"
                  "[policies.orders.bulkhead]\nmax_concurrent = 2\n")
    with engine["orders"]:
        pass
    with engine["orders"]:
        pass
    assert permits() == {"payments": 1, "orders": 2}
