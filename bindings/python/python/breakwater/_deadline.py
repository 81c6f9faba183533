"""``deadline``: the time a caller gives a block of calls, as Go's ``context`` deadline.

Inside ``with breakwater.deadline(2.0):`` (a plain ``with`` also in coroutines: the
deadline lives in a ``ContextVar``, so each thread and each asyncio task sees its own),
a policy's retry loop starts no retry whose backoff would end at or after the deadline
(the engine's rule, ``bw_policy_retry_begin``), and a standalone ``Retry`` does the same.
In a coroutine an attempt is also cut at the deadline (recorded as ignored: the caller
gave up, the dependency did not fail) and ``DeadlineExceededError`` is raised; a call
that starts with no time left raises it at once. Nested deadlines keep the earliest."""
from __future__ import annotations

import math
import time
from contextvars import ContextVar, Token
from datetime import timedelta
from types import TracebackType
from typing import List, Optional, Type, Union

Seconds = Union[float, int, timedelta]

# The deadline in time.monotonic() seconds, or None.
_DEADLINE: ContextVar[Optional[float]] = ContextVar("breakwater.deadline", default=None)


def _seconds(value: Seconds) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"deadline: expected seconds (float, int or timedelta), not {type(value).__name__}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"deadline: expected a non-negative number of seconds, not {seconds}")
    return seconds


class deadline:
    """``with deadline(seconds):`` — the calls in the block must be done within
    ``seconds`` (a float, int or ``timedelta``) from entering it."""

    def __init__(self, seconds: Seconds) -> None:
        self._seconds = _seconds(seconds)
        self._tokens: List[Token[Optional[float]]] = []

    def __enter__(self) -> "deadline":
        at = time.monotonic() + self._seconds
        outer = _DEADLINE.get()
        if outer is not None and outer < at:
            at = outer
        self._tokens.append(_DEADLINE.set(at))
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        _DEADLINE.reset(self._tokens.pop())

    async def __aenter__(self) -> "deadline":
        return self.__enter__()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        self.__exit__(exc_type, exc, tb)

    @staticmethod
    def remaining() -> Optional[float]:
        """Seconds left before the innermost deadline in force here (at least 0.0), or
        ``None`` outside every deadline."""
        at = _DEADLINE.get()
        return None if at is None else max(0.0, at - time.monotonic())


def left_ns() -> Optional[int]:
    """Nanoseconds left before the deadline in force (at least 0), or ``None``: what
    the native retry loop reads when a call first misses."""
    at = _DEADLINE.get()
    return None if at is None else max(0, int((at - time.monotonic()) * 1e9))
