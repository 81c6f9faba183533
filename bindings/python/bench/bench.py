"""breakwater beside its Python peers, measured in one run (timeit, best of N).

    python bindings/python/bench/bench.py [--quick]

Not a test: it prints a Markdown table (ns per call, and how many times faster
breakwater is than the peer on the same row). Times are this thread's CPU time
(``time.thread_time``), not wall time: on a machine shared with other work, the time
the thread spends descheduled would otherwise land on whichever side of a pair was
running, and the ratio would measure the machine's load. Peers: pybreaker, limits, token-bucket,
tenacity (pip install pybreaker limits token-bucket tenacity).
"""
from __future__ import annotations

import sys
import time
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


def timer(fn: Callable[[], object]) -> timeit.Timer:
    return timeit.Timer(fn, timer=time.thread_time)


def ns_per_call(fn: Callable[[], object]) -> float:
    return min(timer(fn).repeat(number=NUMBER, repeat=REPEAT)) / NUMBER * 1e9


def pair(ours: Callable[[], object], theirs: Callable[[], object]) -> Tuple[float, float]:
    """Best of REPEAT for each, the two measured in alternation so that both see the
    same machine (a busy machine slows whichever runs during the busy spell)."""
    best = [float("inf"), float("inf")]
    # Each run lasts about 0.2 s (0.02 s with --quick) whatever the call costs.
    budget = 0.02 if QUICK else 0.2
    numbers = [max(100, int(budget / max(timer(fn).timeit(number=200) / 200, 1e-9))) for fn in (ours, theirs)]
    for _ in range(REPEAT):
        for i, fn in enumerate((ours, theirs)):
            best[i] = min(best[i], timer(fn).timeit(number=numbers[i]) / numbers[i] * 1e9)
    return best[0], best[1]


def main() -> None:
    engine = bw.Engine.from_toml(
        """
[policies.closed.circuit_breaker]
minimum_calls = 100
[policies.open.circuit_breaker]
minimum_calls = 100
[policies.retrying.retry]
max_attempts = 3
[policies.keyed.per_key]
rate = 1000000000
burst = 1000000000
max_keys = 1000
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

    keyed = engine["keyed"]

    def bw_keyed() -> None:
        keyed.acquire_key(b"tenant-1").complete("success")

    bw_retry = bw.Retry(max_attempts=3)(noop)
    ten_retry = tenacity.retry(stop=tenacity.stop_after_attempt(3))(noop)

    rows: List[Tuple[str, float, str, float]] = []
    empty = ns_per_call(noop)
    cases: List[Tuple[str, Callable[[], object], str, Callable[[], object]]] = [
        ("decorated no-op, breaker closed", closed, "pybreaker", pb_closed),
        ("decorated no-op, breaker open (raise + catch)", bw_open, "pybreaker", pb_open),
        ("limiter check, 1 permit", limiter.try_acquire, "limits (moving window)", lambda: moving.hit(item)),
        ("limiter check, 1 permit", limiter.try_acquire, "token-bucket", lambda: tb.consume(b"k")),
        ("per-key check (acquire_key + complete)", bw_keyed, "limits (moving window, per key)",
         lambda: moving.hit(item, "tenant-1")),
        ("retry, success path (standalone Retry)", bw_retry, "tenacity", ten_retry),
        ("retry, success path (policy with retry)", retrying, "tenacity", ten_retry),
    ]
    for what, ours_fn, peer, theirs_fn in cases:
        ours, theirs = pair(ours_fn, theirs_fn)
        rows.append((what, ours, peer, theirs))

    print(f"Python {sys.version.split()[0]}; an empty Python call: {empty:.0f} ns; best of {REPEAT} runs of ~{0.02 if QUICK else 0.2} s of thread CPU time each\n")
    print("| what | breakwater (ns) | peer | peer (ns) | breakwater is |")
    print("|---|---:|---|---:|---:|")
    for what, ours, peer, theirs in rows:
        print(f"| {what} | {ours:.0f} | {peer} | {theirs:.0f} | {theirs / ours:.1f}× faster |")
    telemetry(closed)


def telemetry(closed: Callable[[], object]) -> None:
    """What the trace context costs a decorated call (``breakwater.otel.install()``):
    not installed, installed outside any span, and inside a recording span of the real
    SDK (no exporter: the span is only made current)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from breakwater import otel
    except ImportError:
        print("\n(opentelemetry-sdk not installed: no telemetry rows)")
        return
    span = TracerProvider().get_tracer("bench").start_span("bench")
    rows = [("not installed", ns_per_call(closed))]
    otel.install()
    try:
        rows.append(("installed, no span", ns_per_call(closed)))
        with trace.use_span(span, end_on_exit=True):
            rows.append(("installed, recording span", ns_per_call(closed)))
            rows.append(("(the hook alone: otel.current_trace_context())", ns_per_call(otel.current_trace_context)))
    finally:
        otel.uninstall()
    print("\n| decorated no-op, breaker closed, trace context | ns | added |")
    print("|---|---:|---:|")
    for what, ns in rows:
        print(f"| {what} | {ns:.0f} | {ns - rows[0][1]:+.0f} |")


if __name__ == "__main__":
    main()
