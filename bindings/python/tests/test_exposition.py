"""The engine's Prometheus exposition parses with the real prometheus_client parser
and says exactly what happened; the health JSON parses with json."""
import ctypes
import json

from prometheus_client.parser import text_string_to_metric_families

from conftest import Permit, last_error, take_string

POLICIES = b"""
[policies.payments]
timeout = "3s"
[policies.payments.circuit_breaker]
minimum_calls = 4
window = { type = "count", size = 10 }
[policies.payments.bulkhead]
max_concurrent = 8
[policies."search.v2".rate_limiter]
rate = 2
period = "1s"
"""

SUCCESS, FAILURE = 0, 1
DEFAULT_PRIORITY = 1
DURATION_MS = 1_000_000


def make_engine(lib):
    engine = ctypes.c_void_p()
    assert lib.bw_engine_from_toml(POLICIES, None, ctypes.byref(engine)) == 0, last_error(lib)
    return engine


def policy(lib, engine, name):
    handle = ctypes.c_void_p()
    assert lib.bw_engine_policy(engine, name, ctypes.byref(handle)) == 0, last_error(lib)
    return handle


def call(lib, handle, outcome):
    permit = Permit()
    after = ctypes.c_uint64()
    status = lib.bw_policy_acquire(handle, DEFAULT_PRIORITY, ctypes.byref(permit), ctypes.byref(after))
    if status == 0:
        assert lib.bw_policy_complete(handle, ctypes.byref(permit), outcome, 5 * DURATION_MS) == 0
    return status


def samples(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_abi_version(lib):
    assert lib.bw_abi_version() == 2


def test_exposition_parses_and_counts_exactly(lib):
    engine = make_engine(lib)
    payments = policy(lib, engine, b"payments")
    search = policy(lib, engine, b"search.v2")
    for outcome in (SUCCESS, SUCCESS, FAILURE, FAILURE):
        assert call(lib, payments, outcome) == 0
    assert call(lib, payments, SUCCESS) == 1  # BW_CIRCUIT_OPEN: 50 % of 4 calls failed
    assert call(lib, search, SUCCESS) == 0
    assert call(lib, search, SUCCESS) == 0
    assert call(lib, search, SUCCESS) == 2  # BW_RATE_LIMITED

    out = ctypes.c_void_p()
    assert lib.bw_engine_prometheus(engine, ctypes.byref(out)) == 0
    text = take_string(lib, out)
    got = samples(text)

    def value(name, **labels):
        return got[(name, tuple(sorted(labels.items())))]

    assert value("breakwater_calls_total", policy="payments", outcome="success") == 2
    assert value("breakwater_calls_total", policy="payments", outcome="failure") == 2
    assert value("breakwater_rejections_total", policy="payments", reason="circuit_open") == 1
    assert value("breakwater_rejections_total", policy="search.v2", reason="rate_limited") == 1
    assert value("breakwater_calls_total", policy="search.v2", outcome="success") == 2
    assert value("breakwater_circuit_state", policy="payments", state="open") == 1
    assert value("breakwater_circuit_state", policy="payments", state="closed") == 0
    assert value("breakwater_call_duration_seconds_count", policy="payments") == 4
    assert abs(value("breakwater_call_duration_seconds_sum", policy="payments") - 0.02) < 1e-9
    assert value("breakwater_call_duration_seconds_bucket", policy="payments", le="+Inf") == 4
    assert value("breakwater_bulkhead_in_flight", policy="payments") == 0

    health = ctypes.c_void_p()
    status = ctypes.c_int32(-1)
    assert lib.bw_engine_health(engine, ctypes.byref(health), ctypes.byref(status)) == 0
    report = json.loads(take_string(lib, health))
    assert status.value == 2 and report["status"] == "unhealthy"  # its only breaker is open
    assert any(r["policy"] == "payments" for r in report["reasons"])

    lib.bw_policy_free(payments)
    lib.bw_policy_free(search)
    lib.bw_engine_free(engine)


def test_invalid_policy_file_names_the_field(lib):
    engine = ctypes.c_void_p()
    bad = b"[policies.a.bulkhead]\nmax_concurrent = 0\n"
    assert lib.bw_engine_from_toml(bad, None, ctypes.byref(engine)) == 102  # BW_INVALID_CONFIG
    message = last_error(lib)
    assert "bulkhead.max_concurrent" in message and "line 2" in message
    assert engine.value is None
