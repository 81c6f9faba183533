"""``Retry``: a standalone retry decorator (``def`` and ``async def``) over the
engine's schedule (backoff, jitter, ``max_elapsed``, deadlines) and budget."""
from __future__ import annotations

import asyncio
import functools
import inspect
import time
from datetime import timedelta
from typing import Any, Callable, Optional, TypeVar, Union

from . import _breakwater as native
from ._deadline import left_ns
from ._errors import RetryBudgetExhaustedError

Seconds = Union[float, int, timedelta]
F = TypeVar("F", bound=Callable[..., Any])
_RETRY_ON_FAILURE = 1
_GIVE_UP_BUDGET_EXHAUSTED = 4


class Retry:
    """Retries a call that raises one of ``retry_on`` (exception types, or a predicate
    ``exc -> bool``; default ``Exception``), up to ``max_attempts`` attempts in all,
    waiting ``initial × multiplier^(n−1)`` (capped at ``max``, jittered) between them.
    A ``RetryBudget`` shared by several retries caps retries to a share of the traffic.
    Inside ``breakwater.deadline(...)`` no retry starts whose wait would end past it.
    The success path costs one Python call and nothing else."""

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        initial: Seconds = 0.1,
        multiplier: float = 2.0,
        max: Seconds = 10.0,
        jitter: str = "full",
        max_elapsed: Optional[Seconds] = None,
        retry_on: Any = Exception,
        budget: Optional[native.RetryBudget] = None,
        clock: Optional[native.ManualClock] = None,
        name: str = "retry",
    ) -> None:
        self._schedule = native.RetrySchedule(
            max_attempts=max_attempts, initial=initial, multiplier=multiplier, max=max,
            jitter=jitter, max_elapsed=max_elapsed, budget=budget,
        )
        # The `max_elapsed` clock starts before the first attempt, in both paths (as the
        # policy's retry loop and Go's `Execute` start it); without `max_elapsed` the
        # start is never read, so the success path reads no clock.
        self._timed = max_elapsed is not None
        types, predicate = native.normalize_exclude(retry_on)
        self._types = types
        self._predicate = predicate
        self._budget = budget
        self._clock = clock
        self.name = name

    def _now_ns(self) -> int:
        return self._clock.now_ns() if self._clock is not None else time.monotonic_ns()

    def _start(self, start_ns: int) -> Any:
        """The retry run of a call whose first attempt started at ``start_ns``, with the
        caller's ``breakwater.deadline`` (if any) on this retry's clock."""
        left = left_ns()
        deadline = 0 if left is None else max(1, self._now_ns() + left)
        return self._schedule.start(start_ns, deadline)

    def _retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, Exception):
            return False
        if self._types is not None and isinstance(exc, self._types):
            return True
        return bool(self._predicate is not None and self._predicate(exc))

    def _next(self, run: Any, exc: BaseException) -> float:
        retry, value = run.next(_RETRY_ON_FAILURE, None, self._now_ns())
        if retry:
            return float(value)
        if int(value) == _GIVE_UP_BUDGET_EXHAUSTED:
            raise RetryBudgetExhaustedError(self.name, None) from exc
        raise exc

    def __call__(self, func: F) -> F:
        # Closure locals, read once here: the success path pays one test of `timed`
        # (and, with `max_elapsed`, one clock reading).
        timed = self._timed
        now: Callable[[], int] = self._clock.now_ns if self._clock is not None else time.monotonic_ns
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = now() if timed else 0
                if self._budget is not None:
                    self._budget.record_request()
                run = None
                while True:
                    try:
                        return await func(*args, **kwargs)
                    except Exception as exc:
                        if not self._retryable(exc):
                            raise
                        if run is None:
                            run = self._start(start if timed else now())
                        await asyncio.sleep(self._next(run, exc))

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = now() if timed else 0
            if self._budget is not None:
                self._budget.record_request()
            try:
                return func(*args, **kwargs)
            except Exception as first:
                if not self._retryable(first):
                    raise
                exc: BaseException = first
            run = self._start(start if timed else now())
            while True:
                time.sleep(self._next(run, exc))
                try:
                    return func(*args, **kwargs)
                except Exception as again:
                    if not self._retryable(again):
                        raise
                    exc = again

        return wrapper  # type: ignore[return-value]
