"""asyncio: async decorators and context managers, timeouts that cancel, waits that
never block the loop, cancellation."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, List, Tuple, Union

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
            await asyncio.sleep(3600)  # only the policy's 50 ms cut ends it
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        with pytest.raises(bw.CallTimeoutError) as caught:
            await slow()
        assert isinstance(caught.value, TimeoutError)

    asyncio.run(main())
    assert cancelled == [True]
    assert timed.snapshot().timeout == 1


def test_outer_cancellation_is_ignored_not_failure(engine: bw.Engine) -> None:
    payments = engine["payments"]

    running = asyncio.Event()

    @payments
    async def hang() -> None:
        running.set()
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.ensure_future(hang())
        # Cancelled inside the call (admitted: "payments" has a bulkhead, so its admission
        # came from a waiting thread), not while it was being admitted.
        await running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    snap = payments.snapshot()
    assert (snap.failure, snap.ignored) == (0, 1)


def test_async_limiter_waits_with_asyncio_sleep(clock: bw.ManualClock) -> None:
    # On a manual clock that never moves, the second call must wait exactly 10 s: a
    # wait that blocked the loop would finish it before the loop ran anything else.
    limiter = bw.RateLimiter(rate=1, period=10, burst=1, max_wait=60, clock=clock)

    @limiter
    async def tick() -> None:
        pass

    async def main() -> None:
        await tick()
        waiting = asyncio.ensure_future(tick())
        await asyncio.sleep(0)  # the waiting task runs its first step: the reservation
        assert not waiting.done(), "the loop ran on while the limiter's wait went on"
        assert limiter.available == 0
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        clock.advance(10)
        assert limiter.available == 1, "cancelling the wait gave its permit back"

    asyncio.run(main())


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


BULKHEADED = """
[policies.db.bulkhead]
max_concurrent = 1
max_wait = "%s"
"""


def _one_slot(kind: str, max_wait: str) -> Tuple[Union[bw.Bulkhead, bw.Policy], Callable[[], None], Callable[[], Any]]:
    """A guard with one slot waiting up to ``max_wait``, and a hold of that slot
    (taken now) with its release."""
    if kind == "bulkhead":
        bulkhead = bw.Bulkhead(max_concurrent=1, max_wait=float(max_wait.rstrip("s")))
        bulkhead.acquire()
        return bulkhead, bulkhead.release, lambda: bulkhead.metrics()
    policy = bw.Engine.from_toml(BULKHEADED % max_wait)["db"]
    held = policy.acquire()
    return policy, lambda: held.complete("success"), lambda: policy.snapshot()


@pytest.mark.parametrize("kind", ["bulkhead", "policy"])
def test_async_bulkhead_waiters_leave_the_default_executor_free_and_count_once(kind: str) -> None:
    # Twenty coroutines wait for the one slot (held), on a loop whose default executor
    # has two threads. The waits must not sit in that executor: a no-op sent there
    # completes while all twenty still wait; then each is admitted, one at a time,
    # each counted once.
    guard, release, counters = _one_slot(kind, "60s")
    admitted: List[int] = []
    inside = [0, 0]  # now, most

    async def call(i: int) -> None:
        inside[0] += 1
        inside[1] = max(inside[1], inside[0])
        admitted.append(i)
        await asyncio.sleep(0)
        inside[0] -= 1

    one: Callable[[int], Awaitable[None]] = guard(call)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        tasks = [asyncio.ensure_future(one(i)) for i in range(20)]
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            ran = threading.Event()
            # Only a guard against hanging when waits do occupy the executor (they
            # would hold it for their 60 s max_wait); never reached otherwise.
            await asyncio.wait_for(loop.run_in_executor(None, ran.set), timeout=10)
            assert ran.is_set() and admitted == [], "the no-op ran while every waiter waited"
        finally:
            release()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert sorted(admitted) == list(range(20)) and inside[1] == 1
    c = counters()
    rejected = c.rejected if kind == "bulkhead" else sum(c.rejected.values())
    assert (c.permitted, rejected) == (21, 0)


@pytest.mark.parametrize("kind", ["bulkhead", "policy"])
def test_async_bulkhead_waiters_that_time_out_are_each_rejected_once(kind: str) -> None:
    guard, release, counters = _one_slot(kind, "0.05s")
    refused: List[int] = []

    async def call(i: int) -> None:
        raise AssertionError("the slot is held throughout")

    one: Callable[[int], Awaitable[None]] = guard(call)

    async def attempt(i: int) -> None:
        try:
            await one(i)
        except bw.BulkheadFullError as e:
            assert e.policy == guard.name
            refused.append(i)

    async def main() -> None:
        await asyncio.gather(*(attempt(i) for i in range(20)))

    try:
        asyncio.run(main())
    finally:
        release()
    assert sorted(refused) == list(range(20))
    c = counters()
    if kind == "bulkhead":
        assert (c.permitted, c.rejected) == (1, 20)
    else:
        assert (c.permitted, c.rejected["bulkhead_full"], sum(c.rejected.values())) == (1, 20, 20)


def test_async_with_policy_cuts_the_block_at_the_policy_timeout() -> None:
    timed = bw.Engine.from_toml(TIMED)["timed"]
    reached: List[str] = []

    async def cut_block() -> int:
        try:
            async with timed:
                try:
                    await asyncio.sleep(3600)  # only the policy's 50 ms cut ends it
                except asyncio.CancelledError:
                    reached.append("cancelled")
                    raise
                reached.append("not cut")
        except bw.CallTimeoutError as e:
            assert isinstance(e, TimeoutError) and e.policy == "timed" and e.timeout == 0.05
            reached.append("timed out")
        task = asyncio.current_task()
        assert task is not None
        # Python 3.11+: the cut's cancellation was taken back (`uncancel`).
        return int(getattr(task, "cancelling", lambda: 0)())

    async def main() -> None:
        # wait_for only guards against hanging if the block were never cut.
        assert await asyncio.wait_for(cut_block(), timeout=10) == 0
        # A block that ends in time stops its timer: nothing cancels this task later
        # (an unstopped 50 ms timer would fire before this 200 ms sleep ends).
        async with timed:
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        reached.append("still running")

    asyncio.run(main())
    assert reached == ["cancelled", "timed out", "still running"]
    snap = timed.snapshot()
    assert (snap.permitted, snap.timeout, snap.success, snap.failure, snap.ignored) == (2, 1, 1, 0, 0)


def test_async_with_policy_outer_cancellation_stays_a_cancellation() -> None:
    timed = bw.Engine.from_toml(TIMED)["timed"]

    async def block() -> None:
        async with timed:
            await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.ensure_future(block())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    snap = timed.snapshot()
    assert (snap.permitted, snap.timeout, snap.ignored) == (1, 0, 1)


def test_the_wait_pool_runs_every_wait_at_once_and_reuses_idle_threads() -> None:
    from breakwater._waiters import WaitPool

    pool = WaitPool(name="test-wait")
    release = threading.Event()
    started = [threading.Event() for _ in range(5)]

    def wait(i: int) -> int:
        started[i].set()
        release.wait()
        return i

    futures = [pool.submit(wait, i) for i in range(5)]
    # Each blocking call has a thread of its own: all five run at once.
    for event in started:
        event.wait()
    assert pool.threads == 5
    release.set()
    assert [f.result() for f in futures] == list(range(5))
    # Idle threads take the next calls: none is added.
    assert [pool.submit(lambda i=i: i * 2).result() for i in range(10)] == [i * 2 for i in range(10)]
    assert pool.threads == 5
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 // 0).result()


def test_a_cancelled_bulkhead_waiter_leaves_no_slot_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    from breakwater import _waiters

    bulkhead = bw.Bulkhead(max_concurrent=1, max_wait=60)
    waits: List["concurrent.futures.Future[Any]"] = []
    submit = _waiters.submit

    def recorded(fn: Callable[..., Any], *args: Any) -> "concurrent.futures.Future[Any]":
        waits.append(submit(fn, *args))
        return waits[-1]

    monkeypatch.setattr(_waiters, "submit", recorded)

    @bulkhead
    async def call() -> None:
        raise AssertionError("never admitted: cancelled while waiting")

    async def main() -> None:
        bulkhead.acquire()
        waiter = asyncio.ensure_future(call())
        while not (waits and waits[0].running()):  # its thread is asking the engine
            await asyncio.sleep(0.001)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        bulkhead.release()  # the slot goes to the waiting thread ...

    asyncio.run(main())
    # ... whose permit nobody takes: given back as ignored as soon as it arrives. The
    # thread may still be between the hand-off and that completion: ask until then.
    for _ in range(10_000):
        if bulkhead.metrics().ignored == 2:
            break
        threading.Event().wait(0.001)
    m = bulkhead.metrics()
    assert (bulkhead.in_flight, m.permitted, m.ignored, m.rejected) == (0, 2, 2, 0)


def test_idle_wait_threads_do_not_hold_up_interpreter_exit() -> None:
    # The pool's threads are not daemons (a wait in the engine ends before the
    # interpreter goes); idle ones, which would linger 30 s, are told to exit at once.
    import subprocess
    import sys

    program = (
        "import asyncio, breakwater as bw\n"
        "b = bw.Bulkhead(max_concurrent=1, max_wait=60)\n"
        "@b\n"
        "async def f() -> None:\n"
        "    await asyncio.sleep(0)\n"
        "async def main() -> None:\n"
        "    await asyncio.gather(*(f() for _ in range(4)))\n"
        "asyncio.run(main())\n"
        "from breakwater import _waiters\n"
        "assert _waiters.pool().threads >= 1\n"
    )
    # The timeout only guards against a hang (30 s of idle threads); never reached.
    done = subprocess.run([sys.executable, "-c", program], timeout=20, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
