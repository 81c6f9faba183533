"""Fault injection from the policy file: injected failures skip the call (sync and
async), injected rejections raise, and chaos can be switched at run time."""
from __future__ import annotations

import asyncio

import pytest

import breakwater as bw

CHAOS = """
[policies.faulty.chaos]
enabled = true
failure_probability = 1.0
seed = 7
[policies.refusing.chaos]
enabled = true
rejection_probability = 1.0
seed = 7
"""


def test_injected_failure_skips_the_call_and_counts_as_failure() -> None:
    engine = bw.Engine.from_toml(CHAOS)
    faulty = engine["faulty"]
    ran = []

    @faulty
    def call() -> None:
        ran.append(True)

    @faulty
    async def acall() -> None:
        ran.append(True)

    with pytest.raises(bw.InjectedFaultError):
        call()
    with pytest.raises(bw.InjectedFaultError):
        asyncio.run(acall())
    with pytest.raises(bw.InjectedFaultError):
        with faulty:
            ran.append(True)
    assert ran == []
    assert faulty.snapshot().failure == 3
    faulty.set_chaos(False)
    call()
    assert ran == [True]


def test_injected_rejection_and_missing_stage() -> None:
    engine = bw.Engine.from_toml(CHAOS)
    with pytest.raises(bw.InjectedRejectionError):
        with engine["refusing"]:
            pass
    with pytest.raises(bw.NoStageError):
        engine["refusing"].force_open()  # no circuit_breaker section
