"""Per-key limits from Python (`bw_policy_acquire_keyed`): `policy.acquire_key(key)`,
`policy.key(key)` as a decorator and a (sync and async) context manager; exact per-key
behaviour on the manual clock, bad input, the heavy hitters in the exposition, and 8
threads hammering with exact counts."""
from __future__ import annotations

import asyncio
import threading
from typing import Dict, List

import pytest
from prometheus_client.parser import text_string_to_metric_families

import breakwater as bw

POLICIES = """
[policies.api.per_key]
rate = 2
period = "1s"
burst = 2
max_concurrent = 1
max_keys = 1000
top_keys = 3
[policies.plain.circuit_breaker]
minimum_calls = 100
[policies.quota.per_key]
rate = 1
period = "1h"
burst = 100
max_keys = 100
"""


@pytest.fixture
def keyed(clock: bw.ManualClock) -> bw.Engine:
    return bw.Engine.from_toml(POLICIES, clock=clock)


def test_each_key_has_its_own_quota_on_the_manual_clock(keyed: bw.Engine, clock: bw.ManualClock) -> None:
    api = keyed["api"]
    for _ in range(2):
        api.acquire_key(b"tenant-1").complete("success")
    with pytest.raises(bw.RateLimitedError) as caught:
        api.acquire_key(b"tenant-1")
    assert caught.value.policy == "api"
    assert caught.value.retry_after == pytest.approx(0.5)
    # Another key is untouched by tenant-1's debt.
    for _ in range(2):
        api.acquire_key(b"tenant-2").complete("success")
    with pytest.raises(bw.RateLimitedError):
        api.acquire_key(b"tenant-2")
    clock.advance(0.499)
    with pytest.raises(bw.RateLimitedError):
        api.acquire_key(b"tenant-1")
    clock.advance(0.001)
    api.acquire_key(b"tenant-1").complete("success")
    with pytest.raises(bw.RateLimitedError):
        api.acquire_key(b"tenant-1")
    s = api.snapshot()
    assert (s.permitted, s.success) == (5, 5)
    assert s.rejected["rate_limited"] == 4


def test_a_str_key_is_its_utf8_bytes(keyed: bw.Engine) -> None:
    api = keyed["api"]
    api.acquire_key("zoë").complete("success")
    api.acquire_key("zoë".encode()).complete("success")
    with pytest.raises(bw.RateLimitedError):
        api.acquire_key("zoë")
    assert api.key("zoë").key == "zoë".encode()


def test_max_concurrent_per_key_and_with_blocks(keyed: bw.Engine, clock: bw.ManualClock) -> None:
    api = keyed["api"]
    with api.key(b"a") as permit:
        assert not permit.done
        with pytest.raises(bw.BulkheadFullError) as caught:
            api.acquire_key(b"a")
        assert caught.value.policy == "api"
        with api.key(b"b"):
            pass
    assert permit.done
    clock.advance(10)
    with api.key(b"a"):
        pass
    with pytest.raises(ValueError):
        with api.key(b"a"):
            raise ValueError("boom")
    s = api.snapshot()
    assert (s.permitted, s.success, s.failure) == (4, 3, 1)
    assert s.rejected["bulkhead_full"] == 1


def test_a_dropped_permit_gives_the_key_slot_back(keyed: bw.Engine) -> None:
    api = keyed["api"]
    permit = api.acquire_key(b"a")
    with pytest.raises(bw.BulkheadFullError):
        api.acquire_key(b"a")
    del permit
    api.acquire_key(b"a").complete("success")


def test_a_keyed_permit_completes_once(keyed: bw.Engine) -> None:
    permit = keyed["api"].acquire_key(b"a")
    permit.complete("failure")
    with pytest.raises(bw.PermitUsedError):
        permit.complete("success")
    with pytest.raises(bw.InvalidArgumentError):
        keyed["api"].acquire_key(b"b").complete("nope")


def test_the_decorator_form(keyed: bw.Engine, clock: bw.ManualClock) -> None:
    api = keyed["api"]
    seen: List[int] = []

    @api.key(b"t")
    def call(x: int) -> int:
        seen.append(x)
        if x < 0:
            raise ConnectionError("down")
        return x * 2

    assert call(3) == 6
    with pytest.raises(ConnectionError):
        call(-1)
    with pytest.raises(bw.RateLimitedError):
        call(4)
    assert seen == [3, -1]
    s = api.snapshot()
    assert (s.permitted, s.success, s.failure, s.rejected["rate_limited"]) == (2, 1, 1, 1)

    @api.key(b"u")(fallback=lambda e: "fallback")
    def shed() -> str:
        return "called"

    assert [shed(), shed(), shed()] == ["called", "called", "fallback"]


def test_async_with_and_async_decorator(keyed: bw.Engine) -> None:
    api = keyed["api"]

    @api.key(b"async")
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ok"

    async def main() -> List[str]:
        got = [await fetch()]
        async with api.key(b"other"):
            with pytest.raises(bw.BulkheadFullError):
                api.acquire_key(b"other")
        got.append(await fetch())
        with pytest.raises(bw.RateLimitedError):
            await fetch()
        return got

    assert asyncio.run(main()) == ["ok", "ok"]


def test_bad_keys_are_type_errors(keyed: bw.Engine) -> None:
    api = keyed["api"]
    for bad in (1, None, 2.5, bytearray(b"a"), ["a"]):
        with pytest.raises(TypeError, match="a key is bytes or str"):
            api.acquire_key(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="a key is bytes or str"):
            api.key(bad)  # type: ignore[arg-type]
    with pytest.raises(UnicodeEncodeError):
        api.acquire_key("\udcff")
    with pytest.raises(bw.InvalidArgumentError, match="unknown priority"):
        api.acquire_key(b"a", priority="urgent")
    with pytest.raises(ValueError, match="priority"):
        api.key(b"a")(priority="urgent")(lambda: None)


def test_keys_have_no_length_bound_and_the_empty_key_is_a_key(keyed: bw.Engine) -> None:
    api = keyed["api"]
    long = b"k" * (1 << 20)
    for _ in range(2):
        api.acquire_key(long).complete("success")
    with pytest.raises(bw.RateLimitedError):
        api.acquire_key(long)
    api.acquire_key(long[:-1]).complete("success")
    for _ in range(2):
        api.acquire_key(b"").complete("success")
    with pytest.raises(bw.RateLimitedError):
        api.acquire_key("")


def test_a_policy_without_per_key_ignores_the_key(keyed: bw.Engine) -> None:
    plain = keyed["plain"]
    for _ in range(50):
        plain.acquire_key(b"same").complete("success")
    with plain.key(b"same"), plain.key(b"same"):
        pass
    assert plain.snapshot().success == 52


def test_closed_policy_and_repr(keyed: bw.Engine) -> None:
    api = keyed["api"]
    k = api.key(b"t\x00")
    assert repr(k) == "KeyedPolicy('api', b't\\x00')"
    assert k.name == "api" and k.policy is api and k.key == b"t\x00"
    api.close()
    with pytest.raises(bw.ClosedError):
        api.acquire_key(b"t")
    with pytest.raises(bw.ClosedError):
        with k:
            pass


def test_heavy_hitters_in_the_exposition(keyed: bw.Engine) -> None:
    api = keyed["api"]
    for key, extra in ((b"noisy", 5), (b"quiet", 1)):
        for _ in range(2):
            api.acquire_key(key).complete("success")
        for _ in range(extra):
            with pytest.raises(bw.RateLimitedError):
                api.acquire_key(key)
    top: Dict[str, float] = {}
    for family in text_string_to_metric_families(keyed.prometheus()):
        for sample in family.samples:
            if sample.name == "breakwater_per_key_top_rejections" and sample.labels["policy"] == "api":
                top[sample.labels["rank"] + ":" + sample.labels["key"]] = sample.value
    assert top == {"1:noisy": 5.0, "2:quiet": 1.0}


def test_eight_threads_hammering_exact_counts(keyed: bw.Engine) -> None:
    # Time stands still on the manual clock: the shared key admits exactly its burst
    # (100) whatever the interleaving, and each thread's own key exactly its 100.
    quota = keyed["quota"]
    threads, per_thread = 8, 150
    admitted_shared = [0] * threads
    admitted_own = [0] * threads
    start = threading.Barrier(threads)

    def hammer(i: int) -> None:
        start.wait()
        for _ in range(per_thread):
            for key, counts in ((b"shared", admitted_shared), (f"own-{i}".encode(), admitted_own)):
                try:
                    permit = quota.acquire_key(key)
                except bw.RateLimitedError:
                    continue
                counts[i] += 1
                permit.complete("success")

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(admitted_shared) == 100
    assert admitted_own == [100] * threads
    s = quota.snapshot()
    assert s.permitted == s.success == 100 + 100 * threads
    assert s.rejected["rate_limited"] == 2 * threads * per_thread - s.permitted
