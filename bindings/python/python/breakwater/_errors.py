"""The exceptions of breakwater. Each also subclasses the built-in a caller would
catch (``InvalidConfigError`` is a ``ValueError``, ``PolicyNotFoundError`` a
``KeyError``...). Rejections carry the policy name and ``retry_after`` in seconds."""
from __future__ import annotations

import re
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

__all__ = [
    "BreakwaterError", "InvalidConfigError", "InvalidArgumentError", "PolicyNotFoundError",
    "PolicyFileError", "HostSegmentError", "NeverPassesError", "PermitUsedError", "NoStageError", "ClosedError",
    "RejectedError", "CircuitOpenError", "RateLimitedError", "BulkheadFullError",
    "LoadShedError", "RetryBudgetExhaustedError", "InjectedRejectionError",
    "InjectedFaultError", "CallTimeoutError", "DeadlineExceededError", "AbiMismatchError",
]


class BreakwaterError(Exception):
    """Every error raised by breakwater."""


class InvalidConfigError(BreakwaterError, ValueError):
    """A configuration (policy file or keyword arguments) is invalid. ``line`` is the
    policy file's line of the first problem, when known."""

    line: Optional[int]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        found = re.match(r"line (\d+):", message)
        self.line = int(found.group(1)) if found else None


class HostSegmentError(InvalidConfigError):
    """A host-wide segment (``scope = "host"``) could not be used: another
    configuration or layout under the same segment name, a corrupt or foreign segment.
    ``cause`` is the cause the message starts with (``config_mismatch``,
    ``version_mismatch``, ``not_owner``...), when the message names one."""

    cause: Optional[str]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        found = re.search(r"`segment`: ([a-z_]+)", message)
        self.cause = found.group(1) if found else None


class InvalidArgumentError(BreakwaterError, ValueError):
    """An argument is out of range or of an unknown value."""


class PolicyNotFoundError(BreakwaterError, KeyError):
    """No policy has that name; the message lists the names there are."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PolicyFileError(BreakwaterError, OSError):
    """A policy file could not be read."""


class NeverPassesError(BreakwaterError, ValueError):
    """The request can never pass (e.g. more permits than the limiter's burst)."""


class PermitUsedError(BreakwaterError, RuntimeError):
    """A permit was completed twice."""


class NoStageError(BreakwaterError, LookupError):
    """The policy has no such stage (e.g. ``force_open`` without a breaker)."""


class ClosedError(BreakwaterError, ValueError):
    """The object was closed."""


class AbiMismatchError(BreakwaterError, ImportError):
    """The native module and the engine disagree on the ABI version."""


class CallTimeoutError(BreakwaterError, TimeoutError):
    """An async call ran past its policy's ``timeout`` and was cancelled."""

    def __init__(self, policy: str, timeout: float) -> None:
        super().__init__(f"policy {policy!r}: the call ran past its timeout of {timeout:g} s")
        self.policy = policy
        self.timeout = timeout


class DeadlineExceededError(BreakwaterError, TimeoutError):
    """The caller's ``breakwater.deadline`` passed: a coroutine's attempt was cut at it
    (recorded as ignored), or the call started with no time left (nothing recorded)."""

    def __init__(self, policy: str) -> None:
        super().__init__(f"policy {policy!r}: the caller's deadline passed")
        self.policy = policy


class InjectedFaultError(BreakwaterError):
    """Fault injection (the policy's ``chaos`` section) failed this call."""

    def __init__(self, policy: str) -> None:
        super().__init__(f"policy {policy!r}: injected fault")
        self.policy = policy


class RejectedError(BreakwaterError):
    """The call was not made: a guard said "not now". ``retry_after`` is the wait in
    seconds after which a new attempt may pass (``None`` when unknown); ``policy`` the
    name of the policy (or standalone guard) that rejected it.

    Built as ``RejectedError(policy, retry_after)``; both live in ``args`` (no Python
    ``__init__``), so raising one on the hot path costs no Python frame."""

    reason: ClassVar[str] = "rejected"
    """What rejected the call, as the message says it."""

    def __init_subclass__(cls, reason: Optional[str] = None, **kwargs: Any) -> None:
        # A subclass states its reason in its class line; one that does not keeps its
        # parent's.
        super().__init_subclass__(**kwargs)
        if reason is not None:
            cls.reason = reason

    @property
    def policy(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def retry_after(self) -> Optional[float]:
        after = self.args[1] if len(self.args) > 1 else None
        return None if after is None else float(after)

    def __str__(self) -> str:
        after = self.retry_after
        tail = "" if after is None else f"; retry after {after:.3f} s"
        return f"{self.policy!r}: {self.reason}{tail}"


class CircuitOpenError(RejectedError, reason="circuit open"):
    """The circuit breaker is open."""


class RateLimitedError(RejectedError, reason="rate limited"):
    """The rate limiter has no permit now."""


class BulkheadFullError(RejectedError, reason="bulkhead full"):
    """The bulkhead is full."""


class LoadShedError(RejectedError, reason="load shed"):
    """Shed by the adaptive limit or the client-side throttle."""


class RetryBudgetExhaustedError(RejectedError, reason="retry budget exhausted"):
    """The retry budget refused a retry; ``__cause__`` is the last attempt's error."""


class InjectedRejectionError(RejectedError, reason="injected rejection"):
    """Fault injection forced a rejection."""


# The rejection class of each status code (index = code; 0 and 7 are not rejections).
REJECTIONS = (
    RejectedError, CircuitOpenError, RateLimitedError, BulkheadFullError, LoadShedError,
    RetryBudgetExhaustedError, InjectedRejectionError, RejectedError,
)

_BY_STATUS: Dict[int, Type[BreakwaterError]] = {
    100: InvalidArgumentError,
    102: InvalidConfigError,
    103: PolicyNotFoundError,
    104: NeverPassesError,
    105: PermitUsedError,
    106: PolicyFileError,
    108: NoStageError,
    110: HostSegmentError,
}


def from_status(code: int, message: str) -> BreakwaterError:
    """The exception for an error status of the C ABI."""
    cls: Type[BreakwaterError] = _BY_STATUS.get(code, BreakwaterError)
    return cls(message or f"breakwater status {code}")
