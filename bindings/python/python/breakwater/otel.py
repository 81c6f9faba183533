"""OpenTelemetry for breakwater (the ``otel`` extra: ``opentelemetry-api`` only; the
application installs and configures the SDK).

- :func:`register`: the instruments of the names table (``docs/telemetry.md``) as
  observable instruments on the application's meter; their callbacks read the policies'
  exact snapshots at collection time, so a call costs nothing more. Given an ``Engine``
  they follow its reloads.
- :func:`install`: the guards (decorators, ``with policy:``, and their keyed forms
  ``policy.key(k)`` and ``policy.acquire_key(k)``) attach the current span's trace
  context to each call made while a span is recording, so the events it causes (a trip,
  a load shed, a refused retry) carry it, and a rejection adds the span event
  ``breakwater.rejection``. Until ``install()`` a call pays one relaxed atomic load for
  this; after it, a call outside any span pays one ``ContextVar.get`` and one dict
  lookup made natively, and a call inside a span one Python call (at the acquire; the
  completion reuses the acquire's context).
- :func:`log_events`: an event listener writing ``logging`` records with the fields
  ``trace_id``, ``span_id``, ``policy``, ``from``, ``to``, ``reason``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from opentelemetry import metrics, trace  # type: ignore[import-not-found, unused-ignore]
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation  # type: ignore[import-not-found, unused-ignore]

from . import _breakwater
from ._guard import _REASONS, Event

__all__ = ["METER_NAME", "REJECTION_SPAN_EVENT", "INSTRUMENTS", "register", "install",
           "uninstall", "log_events", "current_trace_context"]

METER_NAME = "breakwater"
REJECTION_SPAN_EVENT = "breakwater.rejection"

#: The names table: (name, kind, unit, description, attributes), in its order.
INSTRUMENTS: List[Tuple[str, str, str, str, Tuple[str, ...]]] = [
    ("breakwater.permits", "counter", "{call}", "Calls let through by every stage of the policy.", ("policy",)),
    ("breakwater.calls", "counter", "{call}", "Completed calls, by outcome.", ("policy", "outcome")),
    ("breakwater.slow_calls", "counter", "{call}",
     "Completed calls slower than the circuit breaker's slow-call duration.", ("policy",)),
    ("breakwater.active_calls", "updowncounter", "{call}", "Calls permitted and not yet completed.", ("policy",)),
    ("breakwater.rejections", "counter", "{call}",
     "Calls refused, by reason (a retry the budget refused is one).", ("policy", "reason")),
    ("breakwater.retries", "counter", "{retry}", "Retry attempts started.", ("policy",)),
    ("breakwater.breaker.transitions", "counter", "{transition}",
     "Circuit breaker transitions, by the state entered.", ("policy", "state")),
    ("breakwater.breaker.state", "gauge", "1",
     "1 for the circuit breaker's current state, 0 for the other states.", ("policy", "state")),
]

_OUTCOMES = ("success", "failure", "timeout", "ignored")
_STATES = ("closed", "open", "half_open", "forced_open", "disabled")


def _points(name: str, policy: Any) -> Iterable[Observation]:
    s = policy.snapshot()
    base = {"policy": s.name}
    if name == "breakwater.permits":
        yield Observation(s.permitted, base)
    elif name == "breakwater.calls":
        for outcome in _OUTCOMES:
            yield Observation(getattr(s, outcome), {**base, "outcome": outcome})
    elif name == "breakwater.slow_calls":
        yield Observation(s.slow, base)
    elif name == "breakwater.active_calls":
        yield Observation(s.permitted - s.success - s.failure - s.timeout - s.ignored, base)
    elif name == "breakwater.rejections":
        for reason, count in s.rejected.items():
            yield Observation(count, {**base, "reason": reason})
    elif name == "breakwater.retries":
        yield Observation(s.retries, base)
    elif s.breaker_state is not None and name == "breakwater.breaker.transitions":
        for state in _STATES:
            yield Observation(s.transitions[state], {**base, "state": state})
    elif s.breaker_state is not None and name == "breakwater.breaker.state":
        for state in _STATES:
            yield Observation(int(state == s.breaker_state), {**base, "state": state})


def _policies_of(source: Union[_breakwater.Engine, Sequence[Any]]) -> Callable[[], Iterable[Any]]:
    """What a collection observes: an engine's policies as they are at that moment (so
    a reload's added and removed policies are followed, as Rust's and Go's
    ``RegisterEngine`` follow them), or a fixed sequence of policies."""
    if isinstance(source, _breakwater.Engine):
        engine = source

        def listed() -> Iterable[Any]:
            if engine.closed:
                return []
            found = (engine.get(name) for name in engine.names())
            return [policy for policy in found if policy is not None]

        return listed
    fixed = list(source)
    return lambda: fixed


def register(policies: Union[_breakwater.Engine, Sequence[Any]], meter_provider: Optional[MeterProvider] = None) -> List[Any]:
    """Registers every instrument of the table on the ``breakwater`` meter of
    ``meter_provider`` (default: the global one), observing ``policies``: an
    ``Engine`` (its policies are listed again at each collection, so reloads are
    followed) or a fixed sequence of policies. Call it once per provider: a second
    registration reports every value twice. Returns the instruments."""
    meter = (meter_provider or metrics.get_meter_provider()).get_meter(METER_NAME)
    current = _policies_of(policies)
    made: List[Any] = []
    for name, kind, unit, description, _ in INSTRUMENTS:
        def callback(options: CallbackOptions, name: str = name) -> Iterable[Observation]:
            out: List[Observation] = []
            for policy in current():
                if not policy.closed:
                    out.extend(_points(name, policy))
            return out
        create = {
            "counter": meter.create_observable_counter,
            "updowncounter": meter.create_observable_up_down_counter,
            "gauge": meter.create_observable_gauge,
        }[kind]
        made.append(create(name, callbacks=[callback], unit=unit, description=description))
    return made


def _span_reader() -> Tuple[Callable[[], Any], Optional[Tuple[Callable[[], Any], str]]]:
    """The fastest way to the current span this ``opentelemetry-api`` allows, and the
    probe the native side checks before calling the hook. With the default contextvars
    runtime: one ``ContextVar.get`` and one dict lookup (no span: None), and the probe
    ``(ContextVar.get, span key)``; otherwise ``trace.get_current_span`` (no span: the
    invalid span, which is not recording) and no probe."""
    from opentelemetry import context as _context  # type: ignore[import-not-found, unused-ignore]
    from opentelemetry.trace import propagation as _propagation  # type: ignore[import-not-found, unused-ignore]

    var = getattr(getattr(_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    key = getattr(_propagation, "_SPAN_KEY", None)
    get = getattr(var, "get", None)
    if get is None or not isinstance(key, str):
        return trace.get_current_span, None

    def current_span() -> Any:
        return get().get(key)

    return current_span, (get, key)


_current_span, _span_probe = _span_reader()


def current_trace_context() -> Optional[Tuple[bytes, bytes, int]]:
    """``(trace_id, span_id, flags)`` of the current span when it is recording, else
    None: a call outside any span, or in one the sampler dropped, attaches nothing (its
    events would name a trace no backend receives)."""
    span = _current_span()
    if span is None or not span.is_recording():
        return None
    context = span.get_span_context()
    return context.trace_id.to_bytes(16, "big"), context.span_id.to_bytes(8, "big"), int(context.trace_flags)


def _on_rejection(policy: str, status: int, retry_after_ns: int) -> None:
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: Dict[str, Any] = {"policy": policy, "reason": _REASONS.get(status, str(status))}
    if retry_after_ns:
        attributes["retry_after"] = retry_after_ns / 1e9
    span.add_event(REJECTION_SPAN_EVENT, attributes)


def install() -> None:
    """Makes every guard of the process attach the current span to its calls and add
    the ``breakwater.rejection`` span event on a rejection."""
    _breakwater._set_telemetry_hooks(current_trace_context, _on_rejection, _span_probe)


def uninstall() -> None:
    """Removes what :func:`install` set."""
    _breakwater._set_telemetry_hooks(None, None)


def log_events(logger: Optional[logging.Logger] = None) -> Callable[[Event], None]:
    """An event listener (``engine.on_event(log_events())``) writing each event to
    ``logger`` (default: ``logging.getLogger("breakwater")``); the record's ``extra``
    fields are ``trace_id`` and ``span_id`` (when the causing call was traced),
    ``policy``, ``from``, ``to`` and ``reason``, as they apply."""
    log = logger or logging.getLogger("breakwater")

    def listener(event: Event) -> None:
        fields: Dict[str, Any] = {}
        if event.trace_id is not None:
            fields["trace_id"], fields["span_id"] = event.trace_id, event.span_id
        if event.policy:
            fields["policy"] = event.policy
        level, message = logging.INFO, "configuration reloaded"
        if event.kind == "transition":
            message = "circuit breaker transition"
            fields["from"], fields["to"] = event.from_state, event.to_state
        elif event.kind == "budget_exhausted":
            level, message = logging.WARNING, "retry budget exhausted"
            fields["reason"] = "retry_budget_exhausted"
        elif event.kind == "rejected":
            level, message = logging.WARNING, "load shed"
            fields["reason"] = event.reason
        log.log(level, message, extra=fields)

    return listener
