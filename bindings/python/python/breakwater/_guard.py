"""The Python half of every guard: decorating (`def` and `async def`), the asyncio
glue (waits with ``asyncio.sleep``, timeouts that cancel), event dispatch and the
snapshot dataclasses. The hot synchronous path is native (``Guarded``)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _breakwater as native
from . import _waiters
from ._deadline import _DEADLINE
from ._errors import (
    CallTimeoutError, DeadlineExceededError, InjectedFaultError, RejectedError, REJECTIONS,
)

logger = logging.getLogger("breakwater")

SUCCESS, FAILURE, TIMEOUT, IGNORED = 0, 1, 2, 3
RETRY_ON_FAILURE, RETRY_ON_TIMEOUT = 1, 2
GIVE_UP_BUDGET_EXHAUSTED = 4
PRIORITIES = {"critical": 0, "default": 1, "sheddable": 2}
_STATES = {0: "closed", 1: "open", 2: "half_open", 3: "forced_open", 4: "disabled"}
_REASONS = {1: "circuit_open", 2: "rate_limited", 3: "bulkhead_full", 4: "load_shed",
            5: "retry_budget_exhausted", 6: "injected"}
_KINDS = {1: "transition", 2: "budget_exhausted", 3: "rejected", 4: "reload"}


def _priority(priority: Any) -> int:
    if priority is None:
        return 1
    if isinstance(priority, str) and priority in PRIORITIES:
        return PRIORITIES[priority]
    raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")


def _code_of(exc: RejectedError) -> int:
    for code, cls in enumerate(REJECTIONS):
        if code and type(exc) is cls:
            return code
    return 6


def decorate(target: Any, func: Any, exclude: Any, fallback: Any, priority: Any) -> Any:
    """``@guard`` and ``@guard(exclude=..., fallback=..., priority=...)``."""
    if func is None:
        return lambda f: decorate(target, f, exclude, fallback, priority)
    if not callable(func):
        raise TypeError(f"a guard decorates a callable, not {type(func).__name__}")
    if fallback is not None and not callable(fallback):
        raise TypeError("fallback must be callable")
    types, predicate = target._exclude if exclude is None else native.normalize_exclude(exclude)
    prio = _priority(priority)
    if inspect.iscoroutinefunction(func):
        wrapper = _async_wrapper(target, func, types, predicate, fallback, prio)
        return functools.wraps(func)(wrapper)
    guarded = native.Guarded(target, func, types, predicate, fallback, prio)
    functools.update_wrapper(guarded, func)
    return guarded


Admission = Tuple[Any, float, bool, Optional[float]]


async def _acquire_async(target: Any, priority: int) -> Admission:
    """``(permit, injected latency, injected failure, timeout)`` without blocking the
    event loop (one crossing into the engine when nothing waits)."""
    if not target._may_wait:
        return target._admit(False, priority)  # type: ignore[no-any-return]
    if isinstance(target, native.RateLimiter):
        reservation = target._reserve(1, target.max_wait)
        if reservation.wait > 0:
            try:
                await asyncio.sleep(reservation.wait)
            except BaseException:
                reservation.cancel()
                raise
        return target._granted(), 0.0, False, None
    # A bulkhead (standalone or a policy's) waits inside the engine, in arrival order
    # and counted once: on a thread of its own (`_waiters`), never on the loop nor on
    # the loop's default executor.
    waiting = _waiters.submit(target._admit, True, priority)
    try:
        admission: Admission = await asyncio.wrap_future(waiting)
    except asyncio.CancelledError:
        # The wait goes on in the engine; a permit it brings after the task was
        # cancelled is given back at once (as ignored), not when a collection finds it.
        waiting.add_done_callback(_give_back)
        raise
    return admission


def _give_back(waiting: "concurrent.futures.Future[Admission]") -> None:
    if not waiting.cancelled() and waiting.exception() is None:
        waiting.result()[0].complete("ignored")


async def _attempt(target: Any, admission: Admission, func: Any, args: Any, kwargs: Any,
                   types: Any, predicate: Any, deadline: Optional[float]) -> Tuple[bool, Any, int]:
    """One admitted attempt: ``(ok, value_or_exception, outcome)``. With the
    admission, one more crossing: the completion. The attempt is cut at the policy's
    timeout (recorded as a timeout) or at the caller's ``deadline`` (``time.monotonic``
    seconds; recorded as ignored: the caller gave up, the dependency did not fail),
    whichever comes first."""
    permit, latency, injected_failure, timeout = admission
    if latency:
        await asyncio.sleep(latency)
    if injected_failure:
        permit.complete("failure")
        return False, InjectedFaultError(target.name), FAILURE
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    cut_at = timeout
    by_deadline = left is not None and (not timeout or left < timeout)
    if by_deadline:
        cut_at = left
    if cut_at is None:
        try:
            value = await func(*args, **kwargs)
        except BaseException as exc:
            return False, exc, permit.complete_with(exc, types, predicate)
        permit.complete("success")
        return True, value, SUCCESS
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    fired = False

    def cut() -> None:
        nonlocal fired
        fired = True
        if task is not None:
            task.cancel()

    handle = loop.call_later(cut_at, cut)
    try:
        value = await func(*args, **kwargs)
    except asyncio.CancelledError as exc:
        if not fired:
            permit.complete("ignored")
            raise
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        if by_deadline:
            permit.complete("ignored")
            return False, DeadlineExceededError(target.name), IGNORED
        permit.complete("timeout")
        return False, CallTimeoutError(target.name, cut_at), TIMEOUT
    except BaseException as exc:
        return False, exc, permit.complete_with(exc, types, predicate)
    finally:
        handle.cancel()
    permit.complete("success")
    return True, value, SUCCESS


def _async_wrapper(target: Any, func: Any, types: Any, predicate: Any, fallback: Any,
                   priority: int) -> Callable[..., Any]:
    is_policy = isinstance(target, (native.Policy, native.KeyedPolicy))

    async def guarded(*args: Any, **kwargs: Any) -> Any:
        run = None
        begun = False
        while True:
            # The caller's deadline (`breakwater.deadline`): none of it left, no attempt.
            deadline = _DEADLINE.get()
            if deadline is not None and deadline <= time.monotonic():
                raise DeadlineExceededError(target.name)
            try:
                admission = await _acquire_async(target, priority)
            except RejectedError as exc:
                error: BaseException = exc
                what = 1 << (1 + _code_of(exc))
                hint = exc.retry_after
            else:
                ok, value, outcome = await _attempt(target, admission, func, args, kwargs, types, predicate,
                                                   deadline)
                if ok:
                    return value
                error = value
                if outcome not in (FAILURE, TIMEOUT):
                    raise error
                what = RETRY_ON_TIMEOUT if outcome == TIMEOUT else RETRY_ON_FAILURE
                hint = None
            if not begun:
                begun = True
                run = target._retry_begin() if is_policy else None
            if run is not None:
                retry, value = run.next(what, hint)
                if retry:
                    await asyncio.sleep(value)
                    continue
                if int(value) == GIVE_UP_BUDGET_EXHAUSTED:
                    exhausted = REJECTIONS[5](target.name, None)
                    exhausted.__cause__ = error
                    error = exhausted
            if fallback is not None:
                return fallback(error)
            raise error

    return guarded


class _Cut:
    """The policy timeout of one ``async with policy:`` block: a timer that cancels the
    block's task, and whether it fired."""

    __slots__ = ("task", "timeout", "handle", "fired", "cancelling")

    def __init__(self, task: "asyncio.Task[Any]", timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        self.fired = False
        # Cancellations already requested (Python 3.11+), as `asyncio.timeout` keeps
        # them: one requested from outside as well as the cut's is not swallowed.
        cancelling = getattr(task, "cancelling", None)
        self.cancelling: int = cancelling() if cancelling is not None else 0
        self.handle = asyncio.get_running_loop().call_later(timeout, self._fire)

    def _fire(self) -> None:
        self.fired = True
        self.task.cancel()


async def aenter(target: Any, stack: "contextvars.ContextVar[Any]") -> Any:
    """``async with guard:``: the permit, pushed on this task's stack. With a policy
    ``timeout``, the task is cancelled when it passes (a real cut, as for a decorated
    coroutine); ``aexit`` turns that cancellation into ``CallTimeoutError``."""
    permit, latency, injected_failure, timeout = await _acquire_async(target, 1)
    if latency:
        await asyncio.sleep(latency)
    if injected_failure:
        permit.complete("failure")
        raise InjectedFaultError(target.name)
    task = asyncio.current_task() if timeout else None
    if task is None or timeout is None:
        stack.set((permit, stack.get(None)))
    else:
        # A third item: the native `__aexit__` hands such an entry to `aexit_cut`.
        stack.set((permit, stack.get(None), _Cut(task, timeout)))
    return permit


async def aexit_cut(name: str, stack: "contextvars.ContextVar[Any]", entry: Tuple[Any, Any, _Cut],
                    exc: Optional[BaseException], exclude: Any) -> bool:
    """``__aexit__`` of a block with a policy timeout: stops the timer; a cancellation
    the timer caused is recorded as a timeout and raised as ``CallTimeoutError`` (the
    task is uncancelled, as ``asyncio.timeout`` does); anything else is recorded as a
    block without a timeout records it."""
    permit, below, cut = entry
    stack.set(below)
    cut.handle.cancel()
    if cut.fired:
        uncancel = getattr(cut.task, "uncancel", None)
        left = uncancel() if uncancel is not None else 0
        if isinstance(exc, asyncio.CancelledError) and left <= cut.cancelling:
            permit.complete("timeout")
            raise CallTimeoutError(name, cut.timeout) from exc
    types, predicate = exclude
    permit.complete_with(exc, types, predicate)
    return False


async def done(value: Any) -> Any:
    """An awaitable that is already finished."""
    return value


@dataclass(frozen=True)
class Event:
    """One engine or breaker event, as given to listeners."""

    kind: str
    """``"transition"``, ``"budget_exhausted"``, ``"rejected"`` or ``"reload"``."""
    policy: str
    from_state: Optional[str] = None
    to_state: Optional[str] = None
    reason: Optional[str] = None
    generation: int = 0
    at: float = 0.0
    """Clock time of the event in seconds (0.0 for reloads)."""
    at_ns: int = 0
    """Clock time of the event in nanoseconds, exactly (0 for reloads)."""
    added: int = 0
    removed: int = 0
    changed: int = 0
    trace_id: Optional[str] = None
    """The trace id (32 hex digits) of the call that caused the event, when it was traced."""
    span_id: Optional[str] = None
    """The span id (16 hex digits) of the call that caused the event, when it was traced."""


def dispatch(listeners: Tuple[Callable[[Event], Any], ...], head: Tuple[int, str, int, int, int],
             tail: Tuple[int, int, int, int, int],
             trace: Optional[Tuple[str, str]] = None) -> None:
    """Calls every listener; what one raises is logged, never propagated."""
    kind, policy, from_code, to_code, reason = head
    generation, at_ns, added, removed, changed = tail
    trace_id, span_id = trace if trace is not None else (None, None)
    transition = kind == 1
    event = Event(
        kind=_KINDS.get(kind, str(kind)), policy=policy,
        from_state=_STATES.get(from_code) if transition else None,
        to_state=_STATES.get(to_code) if transition else None,
        reason=_REASONS.get(reason) if kind == 3 else None,
        generation=generation, at=at_ns / 1e9, at_ns=at_ns, added=added, removed=removed, changed=changed,
        trace_id=trace_id, span_id=span_id,
    )
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            logger.exception("breakwater event listener %r raised", listener)


@dataclass(frozen=True)
class PolicySnapshot:
    """A policy's counters and stage states. Latencies in seconds."""

    name: str
    permitted: int
    success: int
    failure: int
    timeout: int
    ignored: int
    slow: int
    retries: int
    rejected: Dict[str, int]
    transitions: Dict[str, int]
    latency_count: int
    latency_sum: float
    latency_p50: float
    latency_p90: float
    latency_p99: float
    latency_p999: float
    breaker_state: Optional[str]
    breaker_generation: int
    limiter_available: Optional[int]
    bulkhead_in_flight: int
    bulkhead_max_concurrent: Optional[int]
    adaptive_limit: Optional[int]
    adaptive_in_flight: int


@dataclass(frozen=True)
class BreakerSnapshot:
    """A standalone breaker's state and window."""

    name: str
    state: str
    generation: int
    calls: int
    failures: int
    slow_calls: int
    consecutive_failures: int
    retry_after: Optional[float]
    open_level: int
    half_open_in_flight: int
    transitions: Tuple[int, int, int, int, int]
    """Transitions into closed, open, half-open, forced-open, disabled."""


@dataclass(frozen=True)
class Metrics:
    """The exact counters of a standalone breaker, limiter or bulkhead."""

    name: str
    permitted: int
    rejected: int
    success: int
    failure: int
    timeout: int
    ignored: int
    slow: int
    latency_count: int
    latency_sum: float
    latency_p50: float
    latency_p90: float
    latency_p99: float
    latency_p999: float


@dataclass(frozen=True)
class Health:
    """An engine's health: ``status`` is ``healthy``, ``degraded`` or ``unhealthy``."""

    status: str
    reasons: List[Dict[str, Any]] = field(default_factory=list)
    """One object per reason (``policy``, ``reason`` ...), as in the JSON."""
    json: str = ""


def policy_snapshot(d: Dict[str, Any]) -> PolicySnapshot:
    return PolicySnapshot(**d)


def breaker_snapshot(d: Dict[str, Any]) -> BreakerSnapshot:
    return BreakerSnapshot(**d)


def metrics(d: Dict[str, Any]) -> Metrics:
    return Metrics(**d)
