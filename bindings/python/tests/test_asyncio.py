"""asyncio: async decorators and context managers, timeouts that cancel, waits that
never block the loop, cancellation."""
from __future__ import annotations

import asyncio
import time

import pytest

import breakwater as bw

TIMED = """
[policies.timed]
timeout = "50ms"
[policies.timed.circuit_breaker]
minimum_calls = 100
"""


def test_async_decorator_and_context_manager(engine: bw.Engine) -> None:
    payments = engine["payments"]

    @payments
    async def pay() -> str:
        await asyncio.sleep(0)
        return "paid"

    async def main() -> None:
        assert await pay() == "paid"
        async with payments:
            await asyncio.sleep(0)
        with pytest.raises(ValueError):
            async with payments:
                raise ValueError("declined")

    asyncio.run(main())
    snap = payments.snapshot()
    assert (snap.success, snap.failure) == (2, 1)


def test_policy_timeout_cancels_the_task_and_records_timeout() -> None:
    engine = bw.Engine.from_toml(TIMED)
    timed = engine["timed"]
    cancelled = []

    @timed
    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(bw.CallTimeoutError) as caught:
            await slow()
        assert time.monotonic() - started < 5
        assert isinstance(caught.value, TimeoutError)

    asyncio.run(main())
    assert cancelled == [True]
    assert timed.snapshot().timeout == 1


def test_outer_cancellation_is_ignored_not_failure(engine: bw.Engine) -> None:
    payments = engine["payments"]

    @payments
    async def hang() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(hang())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    snap = payments.snapshot()
    assert (snap.failure, snap.ignored) == (0, 1)


def test_async_limiter_waits_with_asyncio_sleep() -> None:
    limiter = bw.RateLimiter(rate=10, period=0.1, burst=1, max_wait=1.0)

    @limiter
    async def tick() -> None:
        pass

    async def main() -> int:
        ticks = 0

        async def counter() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        bg = asyncio.ensure_future(counter())
        for _ in range(3):
            await tick()  # the 2nd and 3rd wait ~10 ms each
        bg.cancel()
        return ticks

    assert asyncio.run(main()) > 2  # the loop kept running while we waited


def test_async_bulkhead_waits_for_a_slot() -> None:
    bulkhead = bw.Bulkhead(max_concurrent=1, max_wait=2.0)
    order = []

    @bulkhead
    async def one(i: int) -> None:
        order.append(("in", i))
        await asyncio.sleep(0.01)
        order.append(("out", i))

    async def main() -> None:
        await asyncio.gather(one(1), one(2))

    asyncio.run(main())
    # Which call gets the slot first is up to the worker threads that wait for it;
    # what the bulkhead promises is that the second enters only after the first left.
    first, second = order[0][1], order[2][1]
    assert {first, second} == {1, 2}
    assert order == [("in", first), ("out", first), ("in", second), ("out", second)]
    assert bulkhead.metrics().rejected == 0


def test_async_retry_of_a_policy(engine: bw.Engine) -> None:
    flaky = engine["flaky"]
    attempts = [0]

    @flaky
    async def call() -> int:
        attempts[0] += 1
        if attempts[0] < 2:
            raise ConnectionError("reset")
        return attempts[0]

    assert asyncio.run(call()) == 2
    assert flaky.snapshot().retries == 1
