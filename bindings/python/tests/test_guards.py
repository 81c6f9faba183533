"""Policies and standalone guards: decorators, context managers, errors, threads."""
from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
from datetime import timedelta
from typing import List

import pytest

import breakwater as bw


def test_lookup_names_and_keyerror(engine: bw.Engine) -> None:
    assert engine.names() == ["payments", "search.v2", "flaky"]
    assert "payments" in engine and "nope" not in engine
    assert engine["payments"] is engine["payments"]
    with pytest.raises(KeyError) as caught:
        engine["nope"]
    assert "payments, search.v2, flaky" in str(caught.value)
    assert isinstance(caught.value, bw.PolicyNotFoundError)
    assert engine.get("nope") is None


def test_breaker_policy_opens_and_carries_retry_after(engine: bw.Engine, clock: bw.ManualClock) -> None:
    payments = engine["payments"]
    calls: List[bool] = []

    @payments
    def pay(ok: bool) -> str:
        calls.append(ok)
        if not ok:
            raise ConnectionError("down")
        return "paid"

    assert pay(True) == "paid" and pay(True) == "paid"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            pay(False)
    with pytest.raises(bw.CircuitOpenError) as caught:
        pay(True)
    assert caught.value.policy == "payments"
    assert caught.value.retry_after == pytest.approx(30.0)
    assert isinstance(caught.value, bw.RejectedError) and isinstance(caught.value, bw.BreakwaterError)
    assert len(calls) == 4  # the rejected call never ran
    clock.advance(timedelta(seconds=30))
    assert pay(True) == "paid"  # a half-open probe
    snap = payments.snapshot()
    assert (snap.permitted, snap.success, snap.failure) == (5, 3, 2)
    assert snap.rejected["circuit_open"] == 1


def test_exclude_by_type_and_predicate_counts_as_success() -> None:
    breaker = bw.CircuitBreaker(consecutive_failures=2, exclude=KeyError)

    @breaker
    def lookup() -> None:
        raise KeyError("missing")

    @breaker(exclude=lambda e: "benign" in str(e))
    def other(message: str) -> None:
        raise RuntimeError(message)

    for _ in range(5):
        with pytest.raises(KeyError):
            lookup()
    with pytest.raises(RuntimeError):
        other("benign")
    assert breaker.state == "closed"
    m = breaker.metrics()
    assert (m.success, m.failure) == (6, 0)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            other("bad")
    assert breaker.state == "open"


def test_fallback_gets_the_error() -> None:
    breaker = bw.CircuitBreaker()
    breaker.force_open()

    @breaker(fallback=lambda e: f"cached ({type(e).__name__})")
    def fetch() -> str:
        return "fresh"

    assert fetch() == "cached (CircuitOpenError)"


def test_context_manager_records_success_and_failure() -> None:
    breaker = bw.CircuitBreaker(consecutive_failures=3)
    with breaker:
        pass
    with pytest.raises(ValueError):
        with breaker:
            raise ValueError("boom")
    m = breaker.metrics()
    assert (m.permitted, m.success, m.failure) == (2, 1, 1)


def test_methods_bind_self() -> None:
    limiter = bw.RateLimiter(rate=100)

    class Client:
        def __init__(self) -> None:
            self.base = "x"

        @limiter
        def get(self, path: str) -> str:
            return self.base + path

    assert Client().get("/y") == "x/y"
    assert Client.get.__name__ == "get"


def test_policy_retry_retries_failures_then_succeeds(engine: bw.Engine) -> None:
    flaky = engine["flaky"]
    attempts = [0]

    @flaky
    def call() -> int:
        attempts[0] += 1
        if attempts[0] < 3:
            raise TimeoutError("slow")
        return attempts[0]

    assert call() == 3
    assert flaky.snapshot().retries == 2


def test_standalone_retry_and_budget() -> None:
    attempts = [0]

    @bw.Retry(max_attempts=4, initial=0.001, max=0.001, jitter="none", retry_on=(IOError,))
    def call() -> int:
        attempts[0] += 1
        if attempts[0] < 4:
            raise IOError("again")
        return attempts[0]

    assert call() == 4

    @bw.Retry(max_attempts=5, initial=0.001, max=0.001, retry_on=IOError)
    def never_retried() -> None:
        raise ValueError("not retryable")

    with pytest.raises(ValueError):
        never_retried()

    budget = bw.RetryBudget(ratio=0.01, min_per_second=0)

    @bw.Retry(max_attempts=5, initial=0.001, max=0.001, budget=budget)
    def always_fails() -> None:
        raise IOError("down")

    with pytest.raises(bw.RetryBudgetExhaustedError) as caught:
        always_fails()
    assert isinstance(caught.value.__cause__, IOError)


def test_standalone_retry_starts_max_elapsed_before_the_first_attempt_sync_and_async() -> None:
    # The first attempt alone takes 10 s on the retry's clock, past max_elapsed (5 s):
    # counted from before it (as the policy's loop and Go count), no retry starts. Timed
    # from the first failure instead, the run would look 0 s old and retry.
    clock = bw.ManualClock()
    retry = bw.Retry(max_attempts=3, initial=0.001, max=0.001, multiplier=1.0, jitter="none",
                     max_elapsed=5, clock=clock)
    attempts = [0, 0]

    @retry
    def call() -> None:
        attempts[0] += 1
        clock.advance(10)
        raise OSError("slow, then reset")

    @retry
    async def acall() -> None:
        attempts[1] += 1
        clock.advance(10)
        raise OSError("slow, then reset")

    with pytest.raises(OSError):
        call()
    with pytest.raises(OSError):
        asyncio.run(acall())
    assert attempts == [1, 1]

    # Within max_elapsed both retry to max_attempts.
    fast = bw.Retry(max_attempts=3, initial=0.001, max=0.001, multiplier=1.0, jitter="none",
                    max_elapsed=5, clock=clock)
    tries = [0, 0]

    @fast
    def flaky() -> None:
        tries[0] += 1
        raise OSError("reset")

    @fast
    async def aflaky() -> None:
        tries[1] += 1
        raise OSError("reset")

    with pytest.raises(OSError):
        flaky()
    with pytest.raises(OSError):
        asyncio.run(aflaky())
    assert tries == [3, 3]


def test_limiter_and_bulkhead(clock: bw.ManualClock) -> None:
    limiter = bw.RateLimiter(rate=2, period=1.0, clock=clock)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    with pytest.raises(bw.RateLimitedError) as caught:
        with limiter:
            pass
    assert caught.value.retry_after == pytest.approx(0.5)
    with pytest.raises(bw.NeverPassesError):
        limiter.try_acquire(3)
    clock.advance(0.5)
    assert limiter.try_acquire()

    bulkhead = bw.Bulkhead(max_concurrent=1)
    with bulkhead:
        assert bulkhead.in_flight == 1
        with pytest.raises(bw.BulkheadFullError):
            with bulkhead:
                pass
    assert bulkhead.in_flight == 0 and bulkhead.available == 1
    with pytest.raises(bw.PermitUsedError):
        bulkhead.release()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"rate": -1}, bw.InvalidConfigError),
        ({"rate": 1.5}, TypeError),
        ({"rate": True}, TypeError),
        ({"rate": 1, "period": -1.0}, bw.InvalidConfigError),
        ({"rate": 1, "period": math.nan}, bw.InvalidConfigError),
        ({"rate": 1, "period": "1s"}, TypeError),
        ({"rate": 0}, bw.InvalidConfigError),
    ],
)
def test_bad_limiter_config_raises_typed_errors(kwargs: dict, error: type) -> None:  # type: ignore[type-arg]
    with pytest.raises(error):
        bw.RateLimiter(**kwargs)


def test_bad_inputs() -> None:
    with pytest.raises(bw.InvalidConfigError):
        bw.Engine.from_toml("[policies.a.circuit_breaker\n")
    with pytest.raises(bw.PolicyFileError):
        bw.Engine.from_file("/nonexistent/policies.toml")
    with pytest.raises(bw.InvalidConfigError):
        bw.CircuitBreaker(failure_rate_threshold=150)
    with pytest.raises(bw.InvalidConfigError):
        bw.Bulkhead(max_concurrent=0)
    with pytest.raises(TypeError):
        bw.CircuitBreaker(exclude=42)  # type: ignore[arg-type]
    with pytest.raises(bw.InvalidConfigError):
        bw.Retry(jitter="sometimes")
    with pytest.raises(TypeError):
        bw.Engine.from_toml(b"bytes")  # type: ignore[arg-type]


def test_use_after_close_raises(engine: bw.Engine) -> None:
    payments = engine["payments"]
    breaker = bw.CircuitBreaker()
    breaker.close()
    with pytest.raises(bw.ClosedError):
        breaker.state
    with pytest.raises(bw.ClosedError):
        with breaker:
            pass
    engine.close()
    with pytest.raises(bw.ClosedError):
        engine.names()
    with pytest.raises(bw.ClosedError):
        payments.snapshot()


def test_permit_complete_twice_raises() -> None:
    breaker = bw.CircuitBreaker()
    with breaker as permit:
        pass
    assert permit.done
    with pytest.raises(bw.PermitUsedError):
        permit.complete("success")


def test_listener_exceptions_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    breaker = bw.CircuitBreaker(consecutive_failures=1)
    seen: List[bw.Event] = []

    def broken(event: bw.Event) -> None:
        raise RuntimeError("listener bug")

    breaker.on_transition(seen.append)
    breaker.on_transition(broken)
    with caplog.at_level(logging.ERROR, logger="breakwater"):
        with pytest.raises(ValueError):
            with breaker:
                raise ValueError("x")
    assert [(e.kind, e.from_state, e.to_state) for e in seen] == [("transition", "closed", "open")]
    assert "listener bug" in caplog.text


def test_engine_events_and_reload(engine: bw.Engine) -> None:
    events: List[bw.Event] = []
    engine.on_event(events.append)
    engine.reload("[policies.only.bulkhead]\nmax_concurrent = 1\n")
    assert engine.names() == ["only"]
    assert events[-1].kind == "reload" and events[-1].removed == 3
    with pytest.raises(bw.InvalidConfigError):
        engine.reload("[policies.bad.bulkhead]\nmax_concurrent = -1\n")
    assert engine.names() == ["only"]


def test_global_engine_is_one_object() -> None:
    assert bw.global_engine() is bw.global_engine()


def test_eight_threads_hammering_one_policy_count_exactly() -> None:
    engine = bw.Engine.from_toml("[policies.hot.bulkhead]\nmax_concurrent = 4\n")
    hot = engine["hot"]
    threads, per_thread = 8, 2000
    barrier = threading.Barrier(threads)
    outcomes = {"ok": 0, "failed": 0, "rejected": 0}
    lock = threading.Lock()

    @hot
    def work(i: int) -> None:
        if i % 3 == 0:
            raise ValueError(i)

    def run() -> None:
        local = {"ok": 0, "failed": 0, "rejected": 0}
        barrier.wait()
        for i in range(per_thread):
            try:
                work(i)
                local["ok"] += 1
            except ValueError:
                local["failed"] += 1
            except bw.BulkheadFullError:
                local["rejected"] += 1
        with lock:
            for k, v in local.items():
                outcomes[k] += v

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    snap = hot.snapshot()
    assert sum(outcomes.values()) == threads * per_thread
    assert snap.success == outcomes["ok"] and snap.failure == outcomes["failed"]
    assert snap.rejected["bulkhead_full"] == outcomes["rejected"]
    assert snap.permitted == snap.success + snap.failure
    assert snap.bulkhead_in_flight == 0


def test_rejection_classes_keep_the_base_constructor(engine: bw.Engine) -> None:
    # The native side makes a rejection with its class's tp_new on (policy,
    # retry_after), no __init__ call: a rejection class must not define either.
    from breakwater._errors import REJECTIONS

    for cls in REJECTIONS:
        assert cls.__init__ is Exception.__init__, cls
        assert cls.__new__ is Exception.__new__, cls
    payments = engine["payments"]
    payments.force_open()
    with pytest.raises(bw.CircuitOpenError) as caught:
        payments.acquire()
    assert caught.value.args == ("payments", None)
    assert str(caught.value) == "'payments': circuit open"


def test_standalone_policy_from_toml_owns_its_engine() -> None:
    clock = bw.ManualClock()
    payments = bw.Policy.from_toml("""
[policies.payments.circuit_breaker]
consecutive_failures = 2
open_duration = "30s"
""", clock=clock)
    assert isinstance(payments, bw.Policy) and payments.name == "payments"

    @payments
    def pay() -> None:
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            pay()
    with pytest.raises(bw.CircuitOpenError):
        pay()
    clock.advance(30)
    with payments:  # a half-open probe, on the policy's manual clock
        pass
    snap = payments.snapshot()
    assert (snap.failure, snap.success, snap.rejected["circuit_open"]) == (2, 1, 1)

    # The engine it was built from lives as long as the policy: reload and events.
    engine = payments.engine
    assert engine is not None and engine.names() == ["payments"]
    events: List[bw.Event] = []
    engine.on_event(events.append)
    engine.reload("[policies.payments.bulkhead]\nmax_concurrent = 1\n")
    assert [e.kind for e in events] == ["reload"]
    with payments:
        with pytest.raises(bw.BulkheadFullError):
            with payments:
                pass
    del engine
    gc.collect()
    assert payments.engine is not None and payments.engine.names() == ["payments"]


def test_standalone_policy_names_one_of_several_and_refuses_a_bare_constructor() -> None:
    text = "[policies.a.bulkhead]\nmax_concurrent = 1\n[policies.b.bulkhead]\nmax_concurrent = 2\n"
    b = bw.Policy.from_toml(text, "b")
    assert b.name == "b" and b.snapshot().bulkhead_max_concurrent == 2
    assert bw.Engine.from_toml(text)["a"].engine is None
    with pytest.raises(bw.InvalidArgumentError, match="2 policies \\(a, b\\); name the one"):
        bw.Policy.from_toml(text)
    with pytest.raises(bw.PolicyNotFoundError, match="a, b"):
        bw.Policy.from_toml(text, "c")
    with pytest.raises(bw.InvalidConfigError):
        bw.Policy.from_toml("[policies.a.bulkhead]\nmax_concurrent = -1\n")
    with pytest.raises(TypeError, match="Policy.from_toml"):
        bw.Policy()
