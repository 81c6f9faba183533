"""Shared fixtures: a manual clock and an engine on it."""
from __future__ import annotations

import pytest

import breakwater as bw

POLICIES = """
[policies.payments]
timeout = "3s"
[policies.payments.circuit_breaker]
minimum_calls = 4
window = { type = "count", size = 10 }
open_duration = "30s"
[policies.payments.bulkhead]
max_concurrent = 8
[policies."search.v2".rate_limiter]
rate = 2
period = "1s"
[policies.flaky.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
"""


@pytest.fixture
def clock() -> bw.ManualClock:
    return bw.ManualClock()


@pytest.fixture
def engine(clock: bw.ManualClock) -> bw.Engine:
    return bw.Engine.from_toml(POLICIES, clock=clock)


# The conformance runner's summary (tests/conformance/README.md): one line per failed
# scenario, then `conformance: N scenarios passed[, M failed]`, at the end of the run
# whatever pytest's verbosity or capture.
_CONFORMANCE: dict = {"passed": 0, "failed": []}  # type: ignore[type-arg]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "test_conformance.py::test_scenario[" not in report.nodeid:
        return
    if report.when == "call" and report.passed:
        _CONFORMANCE["passed"] += 1
    elif report.failed:
        _CONFORMANCE["failed"].append(str(report.longrepr).strip().splitlines()[-1])


def pytest_terminal_summary(terminalreporter: "pytest.TerminalReporter") -> None:
    passed, failed = _CONFORMANCE["passed"], _CONFORMANCE["failed"]
    if not passed and not failed:
        return
    for line in failed:
        terminalreporter.write_line(line)
    tail = f", {len(failed)} failed" if failed else ""
    terminalreporter.write_line(f"conformance: {passed} scenarios passed{tail}")
