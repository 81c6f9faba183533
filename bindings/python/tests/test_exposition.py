"""The engine's Prometheus exposition parses with the real prometheus_client parser and
says exactly what happened; the health JSON parses."""
from __future__ import annotations

import json
from typing import Dict, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

import breakwater as bw

Key = Tuple[str, Tuple[Tuple[str, str], ...]]


def samples(text: str) -> Dict[Key, float]:
    out: Dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_abi_version() -> None:
    assert bw.ABI_VERSION == 8
    assert bw._breakwater.abi_versions() == (8, 8)
    bw._check_abi()  # what the import ran: all three agree


@pytest.mark.parametrize("built, linked", [(8, 9), (7, 8), (9, 9)])
def test_an_abi_mismatch_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch, built: int,
                                                         linked: int) -> None:
    # The versions the import-time check reads: the native module's build-time ABI and
    # the linked engine's run-time ABI (`bw_abi_version()`), against the package's own.
    monkeypatch.setattr(bw._breakwater, "abi_versions", lambda: (built, linked))
    with pytest.raises(bw.AbiMismatchError) as caught:
        bw._check_abi()
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, bw.BreakwaterError)
    message = str(caught.value)
    assert message.startswith("breakwater: ABI mismatch:")
    assert f"speaks ABI 8, its native module was built for ABI {built} and runs engine ABI {linked}" in message
    assert "reinstall the package" in message


def test_exposition_parses_and_counts_exactly(engine: bw.Engine, clock: bw.ManualClock) -> None:
    payments, search = engine["payments"], engine["search.v2"]

    @payments
    def pay(ok: bool) -> None:
        clock.advance(0.005)  # the policy times its calls on the engine's clock
        if not ok:
            raise ConnectionError("down")

    @search
    def find() -> str:
        return "found"

    for ok in (True, True, False, False):
        try:
            pay(ok)
        except ConnectionError:
            pass
    with pytest.raises(bw.CircuitOpenError):
        pay(True)
    assert find() == "found"
    assert find() == "found"
    with pytest.raises(bw.RateLimitedError):
        find()

    got = samples(engine.prometheus())

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert value("breakwater_calls_total", policy="payments", outcome="success") == 2
    assert value("breakwater_calls_total", policy="payments", outcome="failure") == 2
    assert value("breakwater_permits_total", policy="search.v2") == 2
    assert value("breakwater_rejections_total", policy="payments", reason="circuit_open") == 1
    assert value("breakwater_rejections_total", policy="search.v2", reason="rate_limited") == 1
    assert value("breakwater_calls_total", policy="search.v2", outcome="success") == 2
    assert value("breakwater_circuit_state", policy="payments", state="open") == 1
    assert value("breakwater_circuit_state", policy="payments", state="closed") == 0
    assert value("breakwater_call_duration_seconds_count", policy="payments") == 4
    assert abs(value("breakwater_call_duration_seconds_sum", policy="payments") - 0.02) < 1e-9
    assert value("breakwater_call_duration_seconds_bucket", policy="payments", le="+Inf") == 4
    assert value("breakwater_bulkhead_in_flight", policy="payments") == 0

    health = bw.health(engine)
    assert health.status in ("healthy", "degraded", "unhealthy")
    assert json.loads(health.json)["status"] == health.status
    assert health.status == "unhealthy"  # its only breaker is open
    assert any(r["policy"] == "payments" for r in health.reasons)


def test_invalid_policy_file_names_the_field_and_line() -> None:
    with pytest.raises(bw.InvalidConfigError) as caught:
        bw.Engine.from_toml("[policies.a.bulkhead]\nmax_concurrent = 0\n")
    assert "bulkhead.max_concurrent" in str(caught.value)
    assert caught.value.line == 2
    assert isinstance(caught.value, ValueError)
