"""breakwater beside its Python peers, measured in one run (timeit, best of N).

    python bindings/python/bench/bench.py [--quick]

Not a test: it prints a Markdown table (ns per call, and how many times faster
breakwater is than the peer on the same row). Peers: pybreaker, limits, token-bucket,
tenacity (pip install pybreaker limits token-bucket tenacity).
"""
from __future__ import annotations

import sys
import timeit
from typing import Callable, List, Tuple

import pybreaker
import tenacity
import token_bucket
from limits import RateLimitItemPerSecond, storage, strategies

import breakwater as bw

QUICK = "--quick" in sys.argv
NUMBER = 20_000 if QUICK else 200_000
REPEAT = 3 if QUICK else 7


def ns_per_call(fn: Callable[[], object]) -> float:
    return min(timeit.repeat(fn, number=NUMBER, repeat=REPEAT)) / NUMBER * 1e9


def main() -> None:
    engine = bw.Engine.from_toml(
        """
[policies.closed.circuit_breaker]
minimum_calls = 100
[policies.open.circuit_breaker]
minimum_calls = 100
[policies.retrying.retry]
max_attempts = 3
"""
    )

    def noop() -> None:
        return None

    closed = engine["closed"](noop)
    open_policy = engine["open"]
    open_policy.force_open()
    opened = open_policy(noop)
    retrying = engine["retrying"](noop)

    def bw_open() -> None:
        try:
            opened()
        except bw.CircuitOpenError:
            pass

    pb_closed = pybreaker.CircuitBreaker()(noop)
    pb_open_breaker = pybreaker.CircuitBreaker()
    pb_opened = pb_open_breaker(noop)
    pb_open_breaker.open()

    def pb_open() -> None:
        try:
            pb_opened()
        except pybreaker.CircuitBreakerError:
            pass

    limiter = bw.RateLimiter(rate=10**9)
    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerSecond(10**9)
    tb = token_bucket.Limiter(10**9, 10**9, token_bucket.MemoryStorage())

    bw_retry = bw.Retry(max_attempts=3)(noop)
    ten_retry = tenacity.retry(stop=tenacity.stop_after_attempt(3))(noop)

    rows: List[Tuple[str, str, float, str, float]] = []
    empty = ns_per_call(noop)
    rows.append(("decorated no-op, breaker closed", "pybreaker", ns_per_call(closed), "pybreaker", ns_per_call(pb_closed)))
    rows.append(("decorated no-op, breaker open (raise + catch)", "pybreaker", ns_per_call(bw_open), "pybreaker", ns_per_call(pb_open)))
    rows.append(("limiter check, 1 permit", "limits", ns_per_call(limiter.try_acquire), "limits (moving window)", ns_per_call(lambda: moving.hit(item))))
    rows.append(("limiter check, 1 permit", "token-bucket", ns_per_call(limiter.try_acquire), "token-bucket", ns_per_call(lambda: tb.consume(b"k"))))
    rows.append(("retry, success path (standalone Retry)", "tenacity", ns_per_call(bw_retry), "tenacity", ns_per_call(ten_retry)))
    rows.append(("retry, success path (policy with retry)", "tenacity", ns_per_call(retrying), "tenacity", ns_per_call(ten_retry)))

    print(f"Python {sys.version.split()[0]}; an empty Python call: {empty:.0f} ns; best of {REPEAT} × {NUMBER:,}\n")
    print("| what | breakwater (ns) | peer | peer (ns) | breakwater is |")
    print("|---|---:|---|---:|---:|")
    for what, _, ours, peer, theirs in rows:
        print(f"| {what} | {ours:.0f} | {peer} | {theirs:.0f} | {theirs / ours:.1f}× faster |")


if __name__ == "__main__":
    main()
