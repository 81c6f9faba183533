"""The caller's deadline (``breakwater.deadline``): retries of a policy or a standalone
``Retry`` start no wait that would end past it; a coroutine's attempt is cut at it."""
from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Awaitable, Callable, List, Tuple

import pytest

import breakwater as bw

# "retrying" waits 10 s before every retry (no jitter): inside a deadline of 5 s none may
# start, so a failing call is tried once, however late the loop runs. "quick" waits 1 ms:
# inside a deadline of 30 s it is tried max_attempts times.
RETRYING = """
[policies.retrying.retry]
max_attempts = 3
backoff = { initial = "10s", multiplier = 1.0, max = "10s", jitter = "none" }
[policies.quick.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
[policies.plain.circuit_breaker]
minimum_calls = 100
"""


def failing_retried_call(name: str = "retrying") -> Tuple[bw.Policy, Callable[[], None], List[int]]:
    """A fresh policy ``name`` of RETRYING, a call of it that always raises, and its
    attempts."""
    policy = bw.Engine.from_toml(RETRYING)[name]
    attempts = [0]

    @policy
    def call() -> None:
        attempts[0] += 1
        raise ConnectionError("reset")

    return policy, call, attempts


def test_policy_retries_start_no_wait_past_the_callers_deadline() -> None:
    policy, call, attempts = failing_retried_call()
    with bw.deadline(5):
        with pytest.raises(ConnectionError):
            call()
    assert attempts[0] == 1, "a 10 s wait cannot end before a 5 s deadline"
    assert policy.snapshot().retries == 0
    quick, call, attempts = failing_retried_call("quick")
    with bw.deadline(30):
        with pytest.raises(ConnectionError):
            call()
    assert attempts[0] == 3
    assert quick.snapshot().retries == 2


def test_async_policy_retries_start_no_wait_past_the_callers_deadline() -> None:
    engine = bw.Engine.from_toml(RETRYING)
    attempts = {"retrying": 0, "quick": 0}

    def failing(name: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            attempts[name] += 1
            raise ConnectionError("reset")
        guarded: Callable[[], Awaitable[None]] = engine[name](call)
        return guarded

    slow, quick = failing("retrying"), failing("quick")

    async def main() -> None:
        with bw.deadline(5):
            with pytest.raises(ConnectionError):
                await slow()
        assert attempts["retrying"] == 1
        async with bw.deadline(timedelta(seconds=30)):
            with pytest.raises(ConnectionError):
                await quick()
        assert attempts["quick"] == 3

    asyncio.run(main())


def test_nested_deadlines_keep_the_earliest() -> None:
    _, call, attempts = failing_retried_call()
    with bw.deadline(5), bw.deadline(30):
        assert (bw.deadline.remaining() or 0) <= 5
        with pytest.raises(ConnectionError):
            call()
    with bw.deadline(30), bw.deadline(5):
        with pytest.raises(ConnectionError):
            call()
    assert attempts[0] == 2
    assert bw.deadline.remaining() is None


def test_standalone_retry_starts_no_wait_past_the_callers_deadline() -> None:
    attempts = [0, 0]

    @bw.Retry(max_attempts=3, initial=10, max=10, multiplier=1.0, jitter="none")
    def slow() -> None:
        attempts[0] += 1
        raise OSError("reset")

    @bw.Retry(max_attempts=3, initial=0.001, max=0.001, multiplier=1.0, jitter="none")
    def quick() -> None:
        attempts[1] += 1
        raise OSError("reset")

    with bw.deadline(5):
        with pytest.raises(OSError):
            slow()
    with bw.deadline(30):
        with pytest.raises(OSError):
            quick()
    assert attempts == [1, 3]


def test_async_attempt_is_cut_at_the_deadline_and_recorded_as_ignored() -> None:
    policy = bw.Engine.from_toml(RETRYING)["plain"]

    @policy
    async def hangs() -> None:
        await asyncio.sleep(3600)  # only the deadline's cut ends it

    async def main() -> None:
        with bw.deadline(1):
            with pytest.raises(bw.DeadlineExceededError) as caught:
                await hangs()
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.policy == "plain"

    asyncio.run(main())
    snap = policy.snapshot()
    assert (snap.permitted, snap.ignored, snap.failure, snap.timeout) == (1, 1, 0, 0)


def test_async_call_with_no_time_left_is_not_attempted() -> None:
    policy = bw.Engine.from_toml(RETRYING)["plain"]

    @policy
    async def call() -> str:
        return "done"

    async def main() -> None:
        with bw.deadline(0):
            with pytest.raises(bw.DeadlineExceededError):
                await call()
        assert await call() == "done"

    asyncio.run(main())
    assert policy.snapshot().permitted == 1


@pytest.mark.parametrize("seconds, error", [(-1, ValueError), (math.nan, ValueError), ("1", TypeError),
                                            (True, TypeError)])
def test_bad_deadlines_raise_typed_errors(seconds: object, error: type) -> None:
    with pytest.raises(error):
        bw.deadline(seconds)  # type: ignore[arg-type]
