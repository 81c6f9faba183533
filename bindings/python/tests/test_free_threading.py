"""The module declares that it does not need the GIL (`gil_used = false`). Where a
free-threaded CPython runs these tests, importing it must leave the GIL off, and
threads sharing one policy still count exactly. Skipped on a GIL build."""
from __future__ import annotations

import sys
import sysconfig
import threading

import pytest

import breakwater as bw

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython (3.13t or later)")
def test_import_keeps_the_gil_disabled_and_counts_stay_exact() -> None:
    is_gil_enabled = getattr(sys, "_is_gil_enabled")
    assert not is_gil_enabled()
    policy = bw.Engine.from_toml("[policies.p.bulkhead]\nmax_concurrent = 64\n")["p"]

    @policy
    def work() -> None:
        pass

    def run() -> None:
        for _ in range(5000):
            work()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert policy.snapshot().success == 40000
    assert not is_gil_enabled()
