"""A held ``Policy`` follows its engine's reloads, also in what the binding keeps of
its configuration (whether it retries, whether its acquire may wait)."""
from __future__ import annotations

import threading
import time
from typing import Callable, List

import pytest

import breakwater as bw

BREAKER_ONLY = """
[policies.p.circuit_breaker]
minimum_calls = 100
"""

WITH_RETRY = BREAKER_ONLY + """
[policies.p.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
"""

WITH_BULKHEAD = BREAKER_ONLY + """
[policies.p.bulkhead]
max_concurrent = 1
max_wait = "5s"
"""


def flaky_once(policy: bw.Policy, attempts: List[int]) -> Callable[[], str]:
    @policy
    def call() -> str:
        attempts[0] += 1
        if attempts[0] % 2:
            raise ConnectionError("reset")
        return "ok"

    return call


def test_held_policy_retries_after_a_reload_adds_a_retry_section() -> None:
    engine = bw.Engine.from_toml(BREAKER_ONLY)
    policy = engine["p"]
    attempts = [0]
    call = flaky_once(policy, attempts)
    with pytest.raises(ConnectionError):
        call()
    attempts[0] = 0
    engine.reload(WITH_RETRY)
    assert call() == "ok"
    assert attempts[0] == 2
    assert policy.snapshot().retries == 1


def test_held_policy_stops_retrying_after_a_reload_removes_its_retry_section() -> None:
    engine = bw.Engine.from_toml(WITH_RETRY)
    policy = engine["p"]
    attempts = [0]
    call = flaky_once(policy, attempts)
    assert call() == "ok"
    engine.reload(BREAKER_ONLY)
    attempts[0] = 0
    with pytest.raises(ConnectionError):
        call()
    assert attempts[0] == 1
    assert policy.snapshot().retries == 1


def test_async_held_policy_retries_after_a_reload_adds_a_retry_section() -> None:
    import asyncio

    engine = bw.Engine.from_toml(BREAKER_ONLY)
    policy = engine["p"]
    attempts = [0]

    @policy
    async def call() -> str:
        attempts[0] += 1
        if attempts[0] == 1:
            raise ConnectionError("reset")
        return "ok"

    engine.reload(WITH_RETRY)
    assert asyncio.run(call()) == "ok"
    assert policy.snapshot().retries == 1


def test_held_policy_waits_without_the_gil_after_a_reload_adds_a_bulkhead() -> None:
    engine = bw.Engine.from_toml(BREAKER_ONLY)
    policy = engine["p"]
    assert not policy._may_wait
    engine.reload(WITH_BULKHEAD)
    assert policy._may_wait

    # A thread holds the one slot; another waits for it inside the engine. The waiter
    # must release the GIL, or the holder could never run to give the slot back (the
    # waiter would give up after max_wait with BulkheadFullError).
    held = threading.Event()
    release = threading.Event()
    results: List[str] = []

    def holder() -> None:
        with policy:
            held.set()
            release.wait(30)

    @policy
    def call() -> str:
        return "got the slot"

    def waiter() -> None:
        try:
            results.append(call())
        except bw.BulkheadFullError as error:
            results.append(f"gave up: {error}")

    t1 = threading.Thread(target=holder)
    t1.start()
    assert held.wait(30)
    t2 = threading.Thread(target=waiter)
    t2.start()
    time.sleep(0.05)  # let the waiter block (if it has not, it simply does not wait)
    release.set()
    t1.join(30)
    t2.join(30)
    assert results == ["got the slot"]
    assert policy.snapshot().bulkhead_in_flight == 0


@pytest.mark.parametrize("make, shown", [
    (lambda: bw.CircuitBreaker(name="b"), "CircuitBreaker('b')"),
    (lambda: bw.RateLimiter(rate=5, name="l"), "RateLimiter('l')"),
    (lambda: bw.Bulkhead(max_concurrent=2, name="h"), "Bulkhead('h')"),
])
def test_every_standalone_guard_has_repr_metrics_and_close(make: object, shown: str) -> None:
    guard = make()  # type: ignore[operator]
    assert repr(guard) == shown
    with guard:
        pass
    metrics = guard.metrics()
    assert (metrics.name, metrics.permitted) == (guard.name, 1)
    assert not guard.closed
    guard.close()
    guard.close()
    assert guard.closed
    with pytest.raises(bw.ClosedError):
        guard.metrics()


def test_policy_repr_and_close(engine: bw.Engine) -> None:
    payments = engine["payments"]
    assert repr(payments) == "Policy('payments')"
    assert payments.name == "payments"
    payments.close()
    assert payments.closed
    with pytest.raises(bw.ClosedError):
        with payments:
            pass
