"""The conformance runner for Python: every scenario of ``tests/conformance/scenarios``
(format: ``tests/conformance/README.md``) run through the package's public API, on a
manual clock. One test per scenario; the session's closing summary prints
``conformance: N scenarios passed`` (see ``conftest.py``). ``BW_CONFORMANCE_DIR`` runs
another directory. A file that breaks the format, or a step the API cannot express,
fails its scenario: nothing is skipped."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest

import breakwater as bw

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = Path(os.environ.get("BW_CONFORMANCE_DIR") or ROOT / "tests" / "conformance" / "scenarios")
FILES = sorted(SCENARIOS.glob("*.json"), key=lambda p: p.name.encode())
MAX_INT = 2**53 - 1

# Steps: op -> (required keys, optional keys), besides "op".
STEP_KEYS: Dict[str, Tuple[Set[str], Set[str]]] = {
    "advance": ({"ns"}, set()),
    "set_clock": ({"ns"}, set()),
    "acquire": ({"policy", "expect"}, {"id", "priority", "retry_after_ns", "injected_failure",
                                       "injected_latency_ns"}),
    "complete": ({"id", "outcome"}, set()),
    "limiter_acquire": ({"limiter", "permits", "expect"}, {"retry_after_ns"}),
    "reserve": ({"limiter", "permits", "max_wait_ns", "expect"}, {"id", "wait_ns", "retry_after_ns"}),
    "cancel": ({"id", "cancelled"}, set()),
    "expect_limiter": ({"limiter"}, {"available", "permitted", "rejected"}),
    "reload": ({"policy_file", "expect"}, set()),
    "lookup": ({"policy", "expect"}, set()),
    "chaos": ({"policy", "enabled"}, set()),
    "force_open": ({"policy"}, {"expect"}),
    "disable": ({"policy"}, {"expect"}),
    "reset": ({"policy"}, {"expect"}),
    "expect_state": ({"policy", "state"}, {"generation"}),
    "expect_counters": ({"policy", "counters"}, set()),
    "expect_events": ({"events"}, set()),
    "retry_begin": ({"policy", "id", "seed"}, {"deadline_ns"}),
    "retry_next": ({"id", "what", "expect"}, {"retry_after_ns", "delay_ns", "reason"}),
}
REASONS: Dict[type, str] = {
    bw.CircuitOpenError: "circuit_open", bw.RateLimitedError: "rate_limited",
    bw.BulkheadFullError: "bulkhead_full", bw.LoadShedError: "load_shed",
    bw.RetryBudgetExhaustedError: "retry_budget_exhausted", bw.InjectedRejectionError: "injected",
}
OUTCOMES = {"success", "failure", "timeout", "ignored"}
PRIORITIES = {"critical", "default", "sheddable"}
STATES = {"closed", "open", "half_open", "forced_open", "disabled"}
GIVE_UPS = {"attempts_exhausted", "elapsed_exceeded", "deadline_exceeded", "budget_exhausted",
            "not_retryable"}
EVENT_KEYS = {
    "transition": {"kind", "policy", "from", "to", "generation", "at_ns"},
    "budget_exhausted": {"kind", "policy", "at_ns"},
    "reload": {"kind", "added", "removed", "changed"},
}


class Failed(Exception):
    """A scenario failed: a step gave another result, or the file breaks the format."""


def _int(value: Any, what: str, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= MAX_INT:
        raise Failed(f"{what}: expected an integer in {low}..2^53-1, got {value!r}")
    return value


def _str(value: Any, what: str, allowed: Optional[Set[str]] = None) -> str:
    if type(value) is not str or "\0" in value:
        raise Failed(f"{what}: expected a string, got {value!r}")
    if allowed is not None and value not in allowed:
        raise Failed(f"{what}: {value!r} is not one of {sorted(allowed)}")
    return value


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise Failed(f"{what}: expected true or false, got {value!r}")
    return value


def _keys(obj: Any, required: Set[str], optional: Set[str], what: str) -> Dict[str, Any]:
    if not isinstance(obj, dict):
        raise Failed(f"{what}: expected an object")
    missing = required - obj.keys()
    unknown = obj.keys() - required - optional
    if missing or unknown:
        raise Failed(f"{what}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    return obj


def _check(got: Any, want: Any, what: str) -> None:
    if got != want:
        raise Failed(f"{what}: expected {want!r}, got {got!r}")


def _ns(seconds: Optional[float]) -> int:
    """A duration the package gives in seconds, back in nanoseconds (exact: the engine's
    value went ns -> float seconds, which round-trips for any duration under days)."""
    return 0 if seconds is None else round(seconds * 1e9)


def _counters(snap: bw.PolicySnapshot) -> Dict[str, int]:
    c: Dict[str, int] = {name: getattr(snap, name) for name in (
        "permitted", "success", "failure", "timeout", "ignored", "slow", "retries",
        "latency_count", "breaker_generation", "bulkhead_in_flight", "adaptive_in_flight")}
    for reason, n in snap.rejected.items():
        c[f"rejected_{reason}"] = n
    for state, n in snap.transitions.items():
        c[f"transitions_to_{state}"] = n
    c["latency_sum_ns"] = _ns(snap.latency_sum)
    c["limiter_available"] = -1 if snap.limiter_available is None else snap.limiter_available
    c["bulkhead_max_concurrent"] = snap.bulkhead_max_concurrent or 0
    c["adaptive_limit"] = snap.adaptive_limit or 0
    return c


def _event(e: bw.Event) -> Dict[str, Any]:
    if e.kind == "transition":
        return {"kind": e.kind, "policy": e.policy, "from": e.from_state, "to": e.to_state,
                "generation": e.generation, "at_ns": e.at_ns}
    if e.kind == "budget_exhausted":
        return {"kind": e.kind, "policy": e.policy, "at_ns": e.at_ns}
    if e.kind == "reload":
        return {"kind": e.kind, "added": e.added, "removed": e.removed, "changed": e.changed}
    return {"kind": e.kind, "policy": e.policy}


class Scenario:
    """One scenario's world: its clock, engine, held policies, limiters and ids."""

    def __init__(self, doc: Dict[str, Any]) -> None:
        self.clock = bw.ManualClock()
        self.clock.set_ns(_int(doc["clock_start_ns"], "clock_start_ns", 1))
        self.engine = bw.Engine.from_toml(_str(doc["policy_file"], "policy_file"), clock=self.clock)
        self.events: List[bw.Event] = []
        self.engine.on_event(self.events.append)
        self.held: Dict[str, bw.Policy] = {}
        self.limiters: Dict[str, bw.RateLimiter] = {}
        limiters = doc.get("limiters", {})
        if not isinstance(limiters, dict):
            raise Failed("limiters: expected an object")
        for name, spec in limiters.items():
            _keys(spec, {"rate", "period_ns", "burst"}, set(), f"limiters.{name}")
            self.limiters[name] = bw.RateLimiter(
                rate=_int(spec["rate"], "rate"), period=_int(spec["period_ns"], "period_ns") / 1e9,
                burst=_int(spec["burst"], "burst"), clock=self.clock, name=name)
        self.permits: Dict[str, bw.Permit] = {}
        self.ids: Dict[str, Any] = {}
        self.seen = 0

    def policy(self, name: Any) -> bw.Policy:
        name = _str(name, "policy")
        if name not in self.held:
            try:
                self.held[name] = self.engine[name]
            except bw.PolicyNotFoundError as e:
                raise Failed(f"no policy {name!r} to hold: {e}") from None
        return self.held[name]

    def limiter(self, name: Any) -> bw.RateLimiter:
        name = _str(name, "limiter")
        if name not in self.limiters:
            raise Failed(f"no limiter {name!r} in `limiters`")
        return self.limiters[name]

    def new_id(self, step: Dict[str, Any], value: Any) -> None:
        key = _str(step.get("id"), "id")
        if key in self.ids:
            raise Failed(f"id {key!r} is used twice")
        self.ids[key] = value

    def of_id(self, step: Dict[str, Any], kind: type) -> Any:
        key = _str(step["id"], "id")
        value = self.ids.get(key)
        if not isinstance(value, kind):
            raise Failed(f"id {key!r} is not a {kind.__name__} of this scenario")
        return value

    def run(self, op: str, s: Dict[str, Any]) -> None:
        getattr(self, "op_" + op)(s)

    def op_advance(self, s: Dict[str, Any]) -> None:
        self.clock.advance_ns(_int(s["ns"], "ns"))

    def op_set_clock(self, s: Dict[str, Any]) -> None:
        self.clock.set_ns(_int(s["ns"], "ns", 1))

    def op_acquire(self, s: Dict[str, Any]) -> None:
        policy = self.policy(s["policy"])
        expect = _str(s["expect"], "expect", {"permitted", *REASONS.values()})
        priority = _str(s.get("priority", "default"), "priority", PRIORITIES)
        if expect == "permitted":
            if "id" not in s or "retry_after_ns" in s:
                raise Failed("a permitted acquire takes `id` and no `retry_after_ns`")
            failure = _bool(s.get("injected_failure", False), "injected_failure")
            latency = _int(s.get("injected_latency_ns", 0), "injected_latency_ns")
        elif "retry_after_ns" not in s or {"id", "injected_failure", "injected_latency_ns"} & s.keys():
            raise Failed("a rejected acquire takes `retry_after_ns` and no `id` or `injected_*`")
        try:
            permit = policy.acquire(priority=priority)
        except bw.RejectedError as e:
            _check(REASONS.get(type(e), type(e).__name__), expect, "acquire")
            _check(_ns(e.retry_after), _int(s["retry_after_ns"], "retry_after_ns"), "retry_after_ns")
            return
        self.new_id(s, permit)
        self.permits[s["id"]] = permit
        _check("permitted", expect, "acquire")
        _check(permit.injected_failure, failure, "injected_failure")
        _check(permit.injected_latency_ns, latency, "injected_latency_ns")

    def op_complete(self, s: Dict[str, Any]) -> None:
        self.of_id(s, bw.Permit).complete(_str(s["outcome"], "outcome", OUTCOMES))

    def op_limiter_acquire(self, s: Dict[str, Any]) -> None:
        limiter = self.limiter(s["limiter"])
        expect = _str(s["expect"], "expect", {"permitted", "rate_limited", "never_passes"})
        if ("retry_after_ns" in s) != (expect == "rate_limited"):
            raise Failed("`retry_after_ns` goes with rate_limited, and only with it")
        try:
            limiter.acquire(_int(s["permits"], "permits"), timeout=0)
            got, after = "permitted", None
        except bw.RateLimitedError as e:
            got, after = "rate_limited", _ns(e.retry_after)
        except bw.NeverPassesError:
            got, after = "never_passes", None
        _check(got, expect, "limiter_acquire")
        if after is not None:
            _check(after, _int(s["retry_after_ns"], "retry_after_ns"), "retry_after_ns")

    def op_reserve(self, s: Dict[str, Any]) -> None:
        limiter = self.limiter(s["limiter"])
        expect = _str(s["expect"], "expect", {"reserved", "rate_limited", "never_passes"})
        if (("id" in s) != (expect == "reserved") or ("wait_ns" in s) != (expect == "reserved")
                or ("retry_after_ns" in s) != (expect == "rate_limited")):
            raise Failed("reserved takes `id` and `wait_ns`; rate_limited takes `retry_after_ns`")
        try:
            reservation = limiter.reserve(_int(s["permits"], "permits"),
                                          max_wait=_int(s["max_wait_ns"], "max_wait_ns") / 1e9)
        except bw.RateLimitedError as e:
            _check("rate_limited", expect, "reserve")
            _check(_ns(e.retry_after), _int(s["retry_after_ns"], "retry_after_ns"), "retry_after_ns")
            return
        except bw.NeverPassesError:
            _check("never_passes", expect, "reserve")
            return
        self.new_id(s, reservation)
        _check("reserved", expect, "reserve")
        _check(reservation.wait_ns, _int(s["wait_ns"], "wait_ns"), "wait_ns")

    def op_cancel(self, s: Dict[str, Any]) -> None:
        reservation = self.of_id(s, bw._breakwater.Reservation)
        _check(reservation.cancel(), _bool(s["cancelled"], "cancelled"), "cancelled")

    def op_expect_limiter(self, s: Dict[str, Any]) -> None:
        limiter = self.limiter(s["limiter"])
        if len(s) < 3:
            raise Failed("expect_limiter checks at least one of available, permitted, rejected")
        if "available" in s:
            _check(limiter.available, _int(s["available"], "available"), "available")
        metrics = limiter.metrics()
        for key in ("permitted", "rejected"):
            if key in s:
                _check(getattr(metrics, key), _int(s[key], key), key)

    def op_reload(self, s: Dict[str, Any]) -> None:
        expect = _str(s["expect"], "expect", {"ok", "invalid_config"})
        try:
            self.engine.reload(_str(s["policy_file"], "policy_file"))
            got = "ok"
        except bw.InvalidConfigError:
            got = "invalid_config"
        _check(got, expect, "reload")

    def op_lookup(self, s: Dict[str, Any]) -> None:
        name = _str(s["policy"], "policy")
        expect = _str(s["expect"], "expect", {"found", "not_found"})
        try:
            policy = self.engine[name]
        except bw.PolicyNotFoundError:
            _check("not_found", expect, "lookup")
            return
        _check("found", expect, "lookup")
        self.held[name] = policy

    def op_chaos(self, s: Dict[str, Any]) -> None:
        self.policy(s["policy"]).set_chaos(_bool(s["enabled"], "enabled"))

    def _switch(self, s: Dict[str, Any], switch: Callable[[bw.Policy], None]) -> None:
        expect = _str(s.get("expect", "ok"), "expect", {"ok", "no_stage"})
        try:
            switch(self.policy(s["policy"]))
            got = "ok"
        except bw.NoStageError:
            got = "no_stage"
        _check(got, expect, s["op"])

    def op_force_open(self, s: Dict[str, Any]) -> None:
        self._switch(s, bw.Policy.force_open)

    def op_disable(self, s: Dict[str, Any]) -> None:
        self._switch(s, bw.Policy.disable)

    def op_reset(self, s: Dict[str, Any]) -> None:
        self._switch(s, bw.Policy.reset)

    def op_expect_state(self, s: Dict[str, Any]) -> None:
        snap = self.policy(s["policy"]).snapshot()
        _check(snap.breaker_state, _str(s["state"], "state", STATES), "state")
        if "generation" in s:
            _check(snap.breaker_generation, _int(s["generation"], "generation"), "generation")

    def op_expect_counters(self, s: Dict[str, Any]) -> None:
        counters = _counters(self.policy(s["policy"]).snapshot())
        want = s["counters"]
        if not isinstance(want, dict) or not want:
            raise Failed("counters: expected a non-empty object")
        for name, value in want.items():
            if name not in counters:
                raise Failed(f"counters: unknown counter {name!r}")
            low = -1 if name == "limiter_available" else 0
            _check(counters[name], _int(value, name, low), name)

    def op_expect_events(self, s: Dict[str, Any]) -> None:
        want = s["events"]
        if not isinstance(want, list):
            raise Failed("events: expected an array")
        for i, e in enumerate(want):
            kind = _str(e.get("kind") if isinstance(e, dict) else None, f"events[{i}].kind",
                        set(EVENT_KEYS))
            _keys(e, EVENT_KEYS[kind], set(), f"events[{i}]")
        got = [_event(e) for e in self.events[self.seen:]]
        self.seen = len(self.events)
        _check(got, want, "events")

    def op_retry_begin(self, s: Dict[str, Any]) -> None:
        policy = self.policy(s["policy"])
        deadline = _int(s["deadline_ns"], "deadline_ns", 1) if "deadline_ns" in s else 0
        self.new_id(s, policy.retry_begin(seed=_int(s["seed"], "seed"), deadline_ns=deadline))

    def op_retry_next(self, s: Dict[str, Any]) -> None:
        run = self.of_id(s, bw._breakwater.RetryRun)
        what = _str(s["what"], "what", {"failure", "timeout", *REASONS.values()})
        expect = _str(s["expect"], "expect", {"retry", "give_up"})
        if ("delay_ns" in s) != (expect == "retry") or ("reason" in s) != (expect == "give_up"):
            raise Failed("retry takes `delay_ns`; give_up takes `reason`")
        hint = _int(s["retry_after_ns"], "retry_after_ns") if "retry_after_ns" in s else None
        retry, value = run.next_ns(what, hint)
        if retry:
            _check(("retry", value), (expect, s.get("delay_ns")), "retry_next")
        else:
            _check(("give_up", value), (expect, s.get("reason")), "retry_next")
            _str(s["reason"], "reason", GIVE_UPS)


def run_scenario(path: Path) -> None:
    """Runs one file; raises ``Failed`` with ``FAIL <name>: step <n> (<op>): ...``."""
    name = path.stem
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        _keys(doc, {"format", "name", "description", "clock_start_ns", "policy_file", "steps"},
              {"limiters"}, "scenario")
        _check(doc["format"], 1, "format")
        _check(doc["name"], name, "name (the file name without .json)")
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise Failed(f"name {name!r} is not [a-z0-9_]+")
        _str(doc["description"], "description")
        if not isinstance(doc["steps"], list):
            raise Failed("steps: expected an array")
        world = Scenario(doc)
    except Failed as e:
        raise Failed(f"FAIL {name}: {e}") from None
    except Exception as e:
        raise Failed(f"FAIL {name}: {type(e).__name__}: {e}") from None
    for n, step in enumerate(doc["steps"], 1):
        op = step.get("op") if isinstance(step, dict) else None
        try:
            if op not in STEP_KEYS:
                raise Failed(f"unknown op {op!r}")
            required, optional = STEP_KEYS[op]
            _keys(step, required | {"op"}, optional, "step")
            world.run(op, step)
        except Failed as e:
            raise Failed(f"FAIL {name}: step {n} ({op}): {e} (clock {world.clock.now_ns()} ns)") from None
        except Exception as e:  # an API error is the step's result too: never a skip
            raise Failed(f"FAIL {name}: step {n} ({op}): {type(e).__name__}: {e} "
                         f"(clock {world.clock.now_ns()} ns)") from None
    open_permits = sorted(k for k, p in world.permits.items() if not p.done)
    if open_permits:
        raise Failed(f"FAIL {name}: permits never completed: {open_permits}")


def test_scenarios_are_found() -> None:
    assert FILES, f"no conformance scenario in {SCENARIOS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path) -> None:
    failure = None
    try:
        run_scenario(path)
    except Failed as e:
        failure = str(e)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
