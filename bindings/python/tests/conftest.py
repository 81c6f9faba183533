"""Shared fixtures: a manual clock and an engine on it."""
from __future__ import annotations

import pytest

import breakwater as bw

POLICIES = """
[policies.payments]
timeout = "3s"
[policies.payments.circuit_breaker]
minimum_calls = 4
window = { type = "count", size = 10 }
open_duration = "30s"
[policies.payments.bulkhead]
max_concurrent = 8
[policies."search.v2".rate_limiter]
rate = 2
period = "1s"
[policies.flaky.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
"""


@pytest.fixture
def clock() -> bw.ManualClock:
    return bw.ManualClock()


@pytest.fixture
def engine(clock: bw.ManualClock) -> bw.Engine:
    return bw.Engine.from_toml(POLICIES, clock=clock)
