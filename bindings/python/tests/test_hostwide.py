"""Host-wide policies (``scope = "host"``) from Python: real forked processes share one
rate limit and one bulkhead, a killed holder's permit comes back, and a segment of
another configuration is refused with a typed error."""
from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Iterator, List

import pytest

import breakwater as bw

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


@pytest.fixture
def segment() -> Iterator[str]:
    name = f"pytest-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        try:
            os.unlink(f"/dev/shm/breakwater.{name}")
        except FileNotFoundError:
            pass


def limited(segment: str, rate: int) -> str:
    return f"""
[policies.p]
scope = "host"
segment = "{segment}"
[policies.p.rate_limiter]
rate = {rate}
period = "1s"
burst = {rate}
"""


def in_children(count: int, body: "object") -> List[int]:
    """Runs ``body()`` (returning an int) in ``count`` forked processes; their results."""
    readers = []
    pids = []
    for _ in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running pytest's teardown
            code = 0
            try:
                os.close(read_end)
                result = body()  # type: ignore[operator]
                os.write(write_end, str(result).encode())
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        readers.append(read_end)
        pids.append(pid)
    results = []
    for pid, read_end in zip(pids, readers):
        with os.fdopen(read_end, "rb") as reader:
            text = reader.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child failed: {status}"
        results.append(int(text))
    return results


def test_forked_processes_share_one_rate_limit(segment: str) -> None:
    rate, processes = 7, 8
    text = limited(segment, rate)

    def spend() -> int:
        policy = bw.Engine.from_toml(text)["p"]
        admitted = 0
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            try:
                permit = policy.acquire()
            except bw.RateLimitedError:
                continue
            permit.complete("success")
            admitted += 1
        return admitted

    started = time.monotonic()
    admitted = in_children(processes, spend)
    elapsed = time.monotonic() - started
    # Whatever the scheduling, every call happened within `elapsed`: the shared schedule
    # lets at most burst + rate * elapsed through, where 8 separate limiters would let
    # 8 bursts (56) through at once. The fresh segment's burst is always there to take.
    assert rate <= sum(admitted) <= rate + rate * elapsed + 1, (admitted, elapsed)


def test_a_killed_holders_bulkhead_permit_comes_back(segment: str) -> None:
    text = f"""
[policies.p]
scope = "host"
segment = "{segment}"
[policies.p.bulkhead]
max_concurrent = 1
"""
    policy = bw.Engine.from_toml(text)["p"]
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            held = bw.Engine.from_toml(text)["p"].acquire()
            os.write(ready_write, b"held")
            time.sleep(600)
            held.complete("success")
        finally:
            os._exit(0)
    os.close(ready_write)
    with os.fdopen(ready_read, "rb") as ready:
        assert ready.read(4) == b"held"
    try:
        with pytest.raises(bw.BulkheadFullError):
            policy.acquire()  # the child's permit counts here too
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    # A rejection scans for dead owners at most every 10 ms: the permit comes back after
    # a few tries. The deadline only keeps a broken reclaim from hanging the suite.
    give_up = time.monotonic() + 30
    while True:
        try:
            permit = policy.acquire()
            break
        except bw.BulkheadFullError:
            assert time.monotonic() < give_up, "the dead holder's permit never came back"
            time.sleep(0.02)
    permit.complete("success")


def test_another_configuration_under_the_same_segment_is_a_host_segment_error(
    segment: str,
) -> None:
    first = bw.Engine.from_toml(limited(segment, 7))
    with pytest.raises(bw.HostSegmentError) as raised:
        bw.Engine.from_toml(limited(segment, 8))
    assert raised.value.cause == "config_mismatch"
    assert isinstance(raised.value, bw.InvalidConfigError)
    assert "`segment`" in str(raised.value)
    first["p"].acquire().complete("success")  # the first engine still works
