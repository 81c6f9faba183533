"""breakwater: circuit breakers, rate limiters, bulkheads, retries and fault injection
for Python, sync and asyncio, on the same lock-free engine (and C ABI) that C, Go and
Rust use.

    engine = breakwater.Engine.from_file("policies.toml")
    payments = engine["payments"]

    @payments
    def charge(order): ...

    async with payments:
        await client.post(...)
"""
from __future__ import annotations

from typing import Optional

from . import _breakwater
from ._breakwater import (
    Bulkhead, CircuitBreaker, Engine, KeyedPolicy, ManualClock, Permit, Policy, RateLimiter,
    RetryBudget,
)
from ._errors import (
    AbiMismatchError, BreakwaterError, BulkheadFullError, CallTimeoutError, CircuitOpenError,
    ClosedError, DeadlineExceededError, InjectedFaultError, InjectedRejectionError, InvalidArgumentError,
    HostSegmentError, InvalidConfigError, LoadShedError, NeverPassesError, NoStageError,
    PermitUsedError,
    PolicyFileError, PolicyNotFoundError, RateLimitedError, RejectedError,
    RetryBudgetExhaustedError,
)
from ._deadline import deadline
from ._guard import BreakerSnapshot, Event, Health, Metrics, PolicySnapshot
from ._retry import Retry

__version__ = "0.1.0"

# The ABI this package speaks; the engine linked into the native module must agree.
ABI_VERSION = 8


def _check_abi() -> None:
    built, linked = _breakwater.abi_versions()
    if not (built == linked == ABI_VERSION):
        raise AbiMismatchError(
            f"breakwater: ABI mismatch: the Python package speaks ABI {ABI_VERSION}, its native "
            f"module was built for ABI {built} and runs engine ABI {linked} "
            f"(engine {_breakwater.engine_version()}); reinstall the package so that all three agree"
        )


_check_abi()


def global_engine() -> Engine:
    """The process-wide engine: no policies until ``reload``-ed; always the same object."""
    return Engine.global_engine()


def health(engine: Optional[Engine] = None) -> Health:
    """The engine's health (the global engine by default), parsed from its JSON."""
    import json

    text = (engine or global_engine()).health_json()
    data = json.loads(text)
    return Health(status=str(data["status"]), reasons=list(data.get("reasons", [])), json=text)


__all__ = [
    "ABI_VERSION", "AbiMismatchError", "BreakerSnapshot", "BreakwaterError", "Bulkhead",
    "BulkheadFullError", "CallTimeoutError", "CircuitBreaker", "CircuitOpenError", "ClosedError",
    "DeadlineExceededError", "Engine", "Event", "Health", "InjectedFaultError", "InjectedRejectionError",
    "HostSegmentError", "InvalidArgumentError", "InvalidConfigError", "KeyedPolicy", "LoadShedError", "ManualClock", "Metrics",
    "NeverPassesError", "NoStageError", "Permit", "PermitUsedError", "Policy", "PolicyFileError",
    "PolicyNotFoundError", "PolicySnapshot", "RateLimitedError", "RateLimiter", "RejectedError",
    "Retry", "RetryBudget", "RetryBudgetExhaustedError", "deadline", "global_engine", "health",
]
