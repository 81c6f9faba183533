"""The by-hand API (what the decorator drives, for frameworks of one's own): the
two-step ``Policy.acquire``, the policy's retry loop, limiter reservations, exact
nanoseconds on the manual clock."""
from __future__ import annotations

import pytest

import breakwater as bw

CHAOS = """
[policies.c.chaos]
enabled = true
failure_probability = 1.0
latency_probability = 1.0
latency = "7ms"
[policies.r.retry]
max_attempts = 3
backoff = { initial = "100ms", multiplier = 2.0, max = "1s", jitter = "none" }
"""


def test_acquire_says_what_fault_injection_decided() -> None:
    engine = bw.Engine.from_toml(CHAOS)
    policy = engine["c"]
    permit = policy.acquire(priority="critical")
    assert permit.injected_failure
    assert (permit.injected_latency_ns, permit.injected_latency) == (7_000_000, 0.007)
    permit.complete("failure")
    with pytest.raises(bw.PermitUsedError):
        permit.complete("failure")
    snap = policy.snapshot()
    assert (snap.permitted, snap.failure) == (1, 1)
    with pytest.raises(bw.InvalidArgumentError):
        policy.acquire(priority="urgent")


def test_retry_loop_by_hand_follows_the_policys_schedule() -> None:
    clock = bw.ManualClock()
    clock.set_ns(5_000_000_001)
    policy = bw.Engine.from_toml(CHAOS, clock=clock)["r"]
    assert policy.now_ns() == 5_000_000_001
    run = policy.retry_begin(seed=1)
    assert run.next_ns("failure") == (True, 100_000_000)
    assert run.next_ns("timeout") == (True, 200_000_000)
    assert run.next_ns("failure") == (False, "attempts_exhausted")
    # retry_on defaults to failures and timeouts: a rejection is not retried.
    assert policy.retry_begin().next_ns("circuit_open", 10**9) == (False, "not_retryable")
    near = policy.retry_begin(seed=1, deadline_ns=policy.now_ns() + 50_000_000)
    assert near.next_ns("failure") == (False, "deadline_exceeded")
    with pytest.raises(bw.InvalidArgumentError):
        policy.retry_begin().next_ns("on fire")
    with pytest.raises(bw.NoStageError):
        bw.Engine.from_toml(CHAOS)["c"].retry_begin()


def test_reservation_waits_exactly_and_cancel_refunds() -> None:
    clock = bw.ManualClock()
    limiter = bw.RateLimiter(rate=10, period=1, burst=1, clock=clock)
    assert limiter.try_acquire()
    reservation = limiter.reserve(1, max_wait=1)
    assert (reservation.wait_ns, reservation.wait) == (100_000_000, 0.1)
    assert reservation.cancel()
    with pytest.raises(bw.PermitUsedError):
        reservation.cancel()
    with pytest.raises(bw.RateLimitedError) as caught:
        limiter.reserve(1, max_wait=0.05)
    assert caught.value.retry_after == pytest.approx(0.05)
    with pytest.raises(bw.NeverPassesError):
        limiter.reserve(2, max_wait=10)
    clock.advance_ns(100_000_000)
    assert limiter.available == 1
