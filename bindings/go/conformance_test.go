package breakwater_test

// The conformance runner for Go: every scenario of tests/conformance/scenarios (format:
// tests/conformance/README.md) through the package's public API, on a manual clock.
// It prints one FAIL line per failed scenario and "conformance: N scenarios passed".
// BW_CONFORMANCE_DIR runs another directory. A file that breaks the format, or a step
// the API cannot express, fails its scenario: nothing is skipped.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

const maxScenarioInt = 1<<53 - 1

// stepKeys: op -> required keys, optional keys (besides "op").
var stepKeys = map[string][2][]string{
	"advance":         {{"ns"}, nil},
	"set_clock":       {{"ns"}, nil},
	"acquire":         {{"policy", "expect"}, {"id", "priority", "retry_after_ns", "injected_failure", "injected_latency_ns"}},
	"complete":        {{"id", "outcome"}, nil},
	"limiter_acquire": {{"limiter", "permits", "expect"}, {"retry_after_ns"}},
	"reserve":         {{"limiter", "permits", "max_wait_ns", "expect"}, {"id", "wait_ns", "retry_after_ns"}},
	"cancel":          {{"id", "cancelled"}, nil},
	"expect_limiter":  {{"limiter"}, {"available", "permitted", "rejected"}},
	"reload":          {{"policy_file", "expect"}, nil},
	"lookup":          {{"policy", "expect"}, nil},
	"chaos":           {{"policy", "enabled"}, nil},
	"force_open":      {{"policy"}, {"expect"}},
	"disable":         {{"policy"}, {"expect"}},
	"reset":           {{"policy"}, {"expect"}},
	"expect_state":    {{"policy", "state"}, {"generation"}},
	"expect_counters": {{"policy", "counters"}, nil},
	"expect_events":   {{"events"}, nil},
	"retry_begin":     {{"policy", "id", "seed"}, {"deadline_ns"}},
	"retry_next":      {{"id", "what", "expect"}, {"retry_after_ns", "delay_ns", "reason"}},
}

var reasons = map[string]error{
	"circuit_open": breakwater.ErrCircuitOpen, "rate_limited": breakwater.ErrRateLimited,
	"bulkhead_full": breakwater.ErrBulkheadFull, "load_shed": breakwater.ErrLoadShed,
	"retry_budget_exhausted": breakwater.ErrRetryBudgetExhausted, "injected": breakwater.ErrInjectedRejection,
}

var eventKeys = map[string][]string{
	"transition":       {"kind", "policy", "from", "to", "generation", "at_ns"},
	"budget_exhausted": {"kind", "policy", "at_ns"},
	"reload":           {"kind", "added", "removed", "changed"},
}

type object = map[string]any

// fmtErr is a scenario's failure (the step, the clock and the rest are added by the caller).
func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }

func checkKeys(o any, required, optional []string, what string) (object, error) {
	m, ok := o.(object)
	if !ok {
		return nil, fmtErr("%s: expected an object", what)
	}
	allowed := map[string]bool{}
	var missing, unknown []string
	for _, k := range required {
		allowed[k] = true
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	for _, k := range optional {
		allowed[k] = true
	}
	for k := range m {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(missing) > 0 || len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmtErr("%s: missing keys %v, unknown keys %v", what, missing, unknown)
	}
	return m, nil
}

func asInt(v any, what string, low int64) (int64, error) {
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return 0, fmtErr("%s: expected an integer, got %v", what, v)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < low || i > maxScenarioInt {
		return 0, fmtErr("%s: expected an integer in %d..2^53-1, got %v", what, low, v)
	}
	return i, nil
}

func asString(v any, what string, allowed ...string) (string, error) {
	s, ok := v.(string)
	if !ok || strings.ContainsRune(s, 0) {
		return "", fmtErr("%s: expected a string, got %v", what, v)
	}
	if len(allowed) > 0 {
		for _, a := range allowed {
			if s == a {
				return s, nil
			}
		}
		return "", fmtErr("%s: %q is not one of %v", what, s, allowed)
	}
	return s, nil
}

func asBool(v any, what string) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmtErr("%s: expected true or false, got %v", what, v)
	}
	return b, nil
}

func expectEqual(got, want any, what string) error {
	if !reflect.DeepEqual(got, want) {
		return fmtErr("%s: expected %v, got %v", what, want, got)
	}
	return nil
}

// world is one scenario's state: its clock, engine, held policies, limiters and ids.
type world struct {
	clock    *breakwater.ManualClock
	engine   *breakwater.Engine
	mu       sync.Mutex
	events   []breakwater.Event
	seen     int
	held     map[string]*breakwater.Policy
	limiters map[string]*breakwater.RateLimiter
	ids      map[string]any
	permits  map[string]*heldPermit
}

type heldPermit struct {
	permit *breakwater.Permit
	done   bool
}

func newWorld(doc object) (*world, error) {
	start, err := asInt(doc["clock_start_ns"], "clock_start_ns", 1)
	if err != nil {
		return nil, err
	}
	text, err := asString(doc["policy_file"], "policy_file")
	if err != nil {
		return nil, err
	}
	w := &world{
		clock: breakwater.NewManualClock(time.Duration(start)), held: map[string]*breakwater.Policy{},
		limiters: map[string]*breakwater.RateLimiter{}, ids: map[string]any{}, permits: map[string]*heldPermit{},
	}
	listen := func(e breakwater.Event) {
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
	}
	w.engine, err = breakwater.EngineFromTOML(text, breakwater.WithClock(w.clock),
		breakwater.WithEventListener(listen), breakwater.WithEventBuffer(1<<16))
	if err != nil {
		return nil, err
	}
	if specs, ok := doc["limiters"]; ok {
		specMap, ok := specs.(object)
		if !ok {
			return nil, fmtErr("limiters: expected an object")
		}
		for name, spec := range specMap {
			m, err := checkKeys(spec, []string{"rate", "period_ns", "burst"}, nil, "limiters."+name)
			if err != nil {
				return nil, err
			}
			var v [3]int64
			for i, k := range []string{"rate", "period_ns", "burst"} {
				if v[i], err = asInt(m[k], k, 0); err != nil {
					return nil, err
				}
			}
			l, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{
				Rate: uint64(v[0]), Period: time.Duration(v[1]), Burst: uint64(v[2])}, breakwater.WithClock(w.clock))
			if err != nil {
				return nil, err
			}
			w.limiters[name] = l
		}
	}
	return w, nil
}

func (w *world) close() {
	for _, p := range w.held {
		p.Close()
	}
	for _, l := range w.limiters {
		l.Close()
	}
	w.engine.Close()
	w.clock.Close()
}

func (w *world) policy(v any) (*breakwater.Policy, error) {
	name, err := asString(v, "policy")
	if err != nil {
		return nil, err
	}
	if p, ok := w.held[name]; ok {
		return p, nil
	}
	p, err := w.engine.Policy(name)
	if err != nil {
		return nil, fmtErr("no policy %q to hold: %v", name, err)
	}
	w.held[name] = p
	return p, nil
}

func (w *world) limiter(v any) (*breakwater.RateLimiter, error) {
	name, err := asString(v, "limiter")
	if err != nil {
		return nil, err
	}
	l, ok := w.limiters[name]
	if !ok {
		return nil, fmtErr("no limiter %q in `limiters`", name)
	}
	return l, nil
}

func (w *world) newID(s object, value any) error {
	id, err := asString(s["id"], "id")
	if err != nil {
		return err
	}
	if _, used := w.ids[id]; used {
		return fmtErr("id %q is used twice", id)
	}
	w.ids[id] = value
	return nil
}

func idOf[T any](w *world, s object) (T, error) {
	var zero T
	id, err := asString(s["id"], "id")
	if err != nil {
		return zero, err
	}
	v, ok := w.ids[id].(T)
	if !ok {
		return zero, fmtErr("id %q is not a %T of this scenario", id, zero)
	}
	return v, nil
}

// rejection reads a rejection's reason name and retry-after (ns) from err.
func rejection(err error) (string, int64, bool) {
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) {
		return "", 0, false
	}
	for name, sentinel := range reasons {
		if errors.Is(err, sentinel) {
			return name, int64(rejected.RetryAfter), true
		}
	}
	return "unknown rejection", int64(rejected.RetryAfter), true
}

func reasonNames() []string {
	names := make([]string, 0, len(reasons))
	for name := range reasons {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func priorityOf(name string) breakwater.Priority {
	switch name {
	case "critical":
		return breakwater.Critical
	case "sheddable":
		return breakwater.Sheddable
	}
	return breakwater.Default
}

func outcomeOf(name string) breakwater.Outcome {
	switch name {
	case "failure":
		return breakwater.Failure
	case "timeout":
		return breakwater.Timeout
	case "ignored":
		return breakwater.Ignored
	}
	return breakwater.Success
}

func counters(s breakwater.PolicyStats) map[string]int64 {
	return map[string]int64{
		"permitted": int64(s.Permitted), "success": int64(s.Success), "failure": int64(s.Failure),
		"timeout": int64(s.Timeout), "ignored": int64(s.Ignored), "slow": int64(s.Slow),
		"retries":                         int64(s.Retries),
		"rejected_circuit_open":           int64(s.RejectedCircuitOpen),
		"rejected_rate_limited":           int64(s.RejectedRateLimited),
		"rejected_bulkhead_full":          int64(s.RejectedBulkheadFull),
		"rejected_load_shed":              int64(s.RejectedLoadShed),
		"rejected_retry_budget_exhausted": int64(s.RejectedRetryBudgetExhausted),
		"rejected_injected":               int64(s.RejectedInjected),
		"transitions_to_closed":           int64(s.TransitionsToClosed),
		"transitions_to_open":             int64(s.TransitionsToOpen),
		"transitions_to_half_open":        int64(s.TransitionsToHalfOpen),
		"transitions_to_forced_open":      int64(s.TransitionsToForcedOpen),
		"transitions_to_disabled":         int64(s.TransitionsToDisabled),
		"latency_count":                   int64(s.LatencyCount),
		"latency_sum_ns":                  int64(s.LatencySum),
		"breaker_generation":              int64(s.BreakerGeneration),
		"limiter_available":               s.LimiterAvailable,
		"bulkhead_in_flight":              int64(s.BulkheadInFlight),
		"bulkhead_max_concurrent":         int64(s.BulkheadMaxConcurrent),
		"adaptive_limit":                  int64(s.AdaptiveLimit),
		"adaptive_in_flight":              int64(s.AdaptiveInFlight),
	}
}

// eventObject is an event as the scenario format writes it (numbers as json.Number).
func eventObject(e breakwater.Event) object {
	n := func(v uint64) json.Number { return json.Number(strconv.FormatUint(v, 10)) }
	switch e.Kind {
	case breakwater.EventTransition:
		return object{"kind": "transition", "policy": e.Policy, "from": e.From.String(), "to": e.To.String(),
			"generation": n(e.Generation), "at_ns": n(uint64(e.At))}
	case breakwater.EventBudgetExhausted:
		return object{"kind": "budget_exhausted", "policy": e.Policy, "at_ns": n(uint64(e.At))}
	case breakwater.EventReload:
		return object{"kind": "reload", "added": n(e.Added), "removed": n(e.Removed), "changed": n(e.Changed)}
	}
	return object{"kind": e.Kind.String(), "policy": e.Policy}
}

func has(s object, key string) bool { _, ok := s[key]; return ok }

func (w *world) step(op string, s object) error {
	switch op {
	case "advance":
		ns, err := asInt(s["ns"], "ns", 0)
		if err != nil {
			return err
		}
		return w.clock.Advance(time.Duration(ns))
	case "set_clock":
		ns, err := asInt(s["ns"], "ns", 1)
		if err != nil {
			return err
		}
		return w.clock.Set(time.Duration(ns))
	case "acquire":
		return w.acquire(s)
	case "complete":
		h, err := idOf[*heldPermit](w, s)
		if err != nil {
			return err
		}
		outcome, err := asString(s["outcome"], "outcome", "success", "failure", "timeout", "ignored")
		if err != nil {
			return err
		}
		if err := h.permit.Done(outcomeOf(outcome)); err != nil {
			return err
		}
		h.done = true
		return nil
	case "limiter_acquire":
		return w.limiterAcquire(s)
	case "reserve":
		return w.reserve(s)
	case "cancel":
		r, err := idOf[*breakwater.Reservation](w, s)
		if err != nil {
			return err
		}
		want, err := asBool(s["cancelled"], "cancelled")
		if err != nil {
			return err
		}
		return expectEqual(r.Cancel(), want, "cancelled")
	case "expect_limiter":
		l, err := w.limiter(s["limiter"])
		if err != nil {
			return err
		}
		if len(s) < 3 {
			return fmtErr("expect_limiter checks at least one of available, permitted, rejected")
		}
		m, err := l.Metrics()
		if err != nil {
			return err
		}
		got := map[string]int64{"available": int64(l.Available()), "permitted": int64(m.Permitted), "rejected": int64(m.Rejected)}
		for _, k := range []string{"available", "permitted", "rejected"} {
			if has(s, k) {
				want, err := asInt(s[k], k, 0)
				if err != nil {
					return err
				}
				if err := expectEqual(got[k], want, k); err != nil {
					return err
				}
			}
		}
		return nil
	case "reload":
		text, err := asString(s["policy_file"], "policy_file")
		if err != nil {
			return err
		}
		expect, err := asString(s["expect"], "expect", "ok", "invalid_config")
		if err != nil {
			return err
		}
		got := "ok"
		if err := w.engine.Reload(text); errors.Is(err, breakwater.ErrInvalidConfig) {
			got = "invalid_config"
		} else if err != nil {
			return err
		}
		return expectEqual(got, expect, "reload")
	case "lookup":
		name, err := asString(s["policy"], "policy")
		if err != nil {
			return err
		}
		expect, err := asString(s["expect"], "expect", "found", "not_found")
		if err != nil {
			return err
		}
		p, err := w.engine.Policy(name)
		if errors.Is(err, breakwater.ErrNotFound) {
			return expectEqual("not_found", expect, "lookup")
		} else if err != nil {
			return err
		}
		if old, ok := w.held[name]; ok {
			old.Close()
		}
		w.held[name] = p
		return expectEqual("found", expect, "lookup")
	case "chaos":
		p, err := w.policy(s["policy"])
		if err != nil {
			return err
		}
		enabled, err := asBool(s["enabled"], "enabled")
		if err != nil {
			return err
		}
		return p.SetChaos(enabled)
	case "force_open", "disable", "reset":
		p, err := w.policy(s["policy"])
		if err != nil {
			return err
		}
		expect := "ok"
		if has(s, "expect") {
			if expect, err = asString(s["expect"], "expect", "ok", "no_stage"); err != nil {
				return err
			}
		}
		switches := map[string]func() error{"force_open": p.ForceOpen, "disable": p.DisableBreaker, "reset": p.Reset}
		got := "ok"
		if err := switches[op](); errors.Is(err, breakwater.ErrNoStage) {
			got = "no_stage"
		} else if err != nil {
			return err
		}
		return expectEqual(got, expect, op)
	case "expect_state":
		p, err := w.policy(s["policy"])
		if err != nil {
			return err
		}
		state, err := asString(s["state"], "state", "closed", "open", "half_open", "forced_open", "disabled")
		if err != nil {
			return err
		}
		stats, err := p.Stats()
		if err != nil {
			return err
		}
		if err := expectEqual(stats.BreakerState.String(), state, "state"); err != nil {
			return err
		}
		if has(s, "generation") {
			want, err := asInt(s["generation"], "generation", 0)
			if err != nil {
				return err
			}
			return expectEqual(int64(stats.BreakerGeneration), want, "generation")
		}
		return nil
	case "expect_counters":
		p, err := w.policy(s["policy"])
		if err != nil {
			return err
		}
		want, ok := s["counters"].(object)
		if !ok || len(want) == 0 {
			return fmtErr("counters: expected a non-empty object")
		}
		stats, err := p.Stats()
		if err != nil {
			return err
		}
		got := counters(stats)
		names := make([]string, 0, len(want))
		for name := range want {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			value, ok := got[name]
			if !ok {
				return fmtErr("counters: unknown counter %q", name)
			}
			low := int64(0)
			if name == "limiter_available" {
				low = -1
			}
			expected, err := asInt(want[name], name, low)
			if err != nil {
				return err
			}
			if err := expectEqual(value, expected, name); err != nil {
				return err
			}
		}
		return nil
	case "expect_events":
		return w.expectEvents(s)
	case "retry_begin":
		p, err := w.policy(s["policy"])
		if err != nil {
			return err
		}
		seed, err := asInt(s["seed"], "seed", 0)
		if err != nil {
			return err
		}
		var deadline int64
		if has(s, "deadline_ns") {
			if deadline, err = asInt(s["deadline_ns"], "deadline_ns", 1); err != nil {
				return err
			}
		}
		run, err := p.RetryBegin(uint64(seed), time.Duration(deadline))
		if err != nil {
			return err
		}
		return w.newID(s, run)
	case "retry_next":
		return w.retryNext(s)
	}
	return fmtErr("unknown op %q", op)
}

func (w *world) acquire(s object) error {
	p, err := w.policy(s["policy"])
	if err != nil {
		return err
	}
	expect, err := asString(s["expect"], "expect", append([]string{"permitted"}, reasonNames()...)...)
	if err != nil {
		return err
	}
	priority := "default"
	if has(s, "priority") {
		if priority, err = asString(s["priority"], "priority", "critical", "default", "sheddable"); err != nil {
			return err
		}
	}
	var failure bool
	var latency int64
	if expect == "permitted" {
		if !has(s, "id") || has(s, "retry_after_ns") {
			return fmtErr("a permitted acquire takes `id` and no `retry_after_ns`")
		}
		if has(s, "injected_failure") {
			if failure, err = asBool(s["injected_failure"], "injected_failure"); err != nil {
				return err
			}
		}
		if has(s, "injected_latency_ns") {
			if latency, err = asInt(s["injected_latency_ns"], "injected_latency_ns", 0); err != nil {
				return err
			}
		}
	} else if !has(s, "retry_after_ns") || has(s, "id") || has(s, "injected_failure") || has(s, "injected_latency_ns") {
		return fmtErr("a rejected acquire takes `retry_after_ns` and no `id` or `injected_*`")
	}
	permit, err := p.Admit(priorityOf(priority))
	if err != nil {
		reason, after, ok := rejection(err)
		if !ok {
			return err
		}
		if err := expectEqual(reason, expect, "acquire"); err != nil {
			return err
		}
		want, err := asInt(s["retry_after_ns"], "retry_after_ns", 0)
		if err != nil {
			return err
		}
		return expectEqual(after, want, "retry_after_ns")
	}
	h := &heldPermit{permit: permit}
	if err := w.newID(s, h); err != nil {
		return err
	}
	w.permits[s["id"].(string)] = h
	if err := expectEqual("permitted", expect, "acquire"); err != nil {
		return err
	}
	if err := expectEqual(permit.InjectedFailure(), failure, "injected_failure"); err != nil {
		return err
	}
	return expectEqual(int64(permit.InjectedLatency()), latency, "injected_latency_ns")
}

func (w *world) limiterAcquire(s object) error {
	l, err := w.limiter(s["limiter"])
	if err != nil {
		return err
	}
	expect, err := asString(s["expect"], "expect", "permitted", "rate_limited", "never_passes")
	if err != nil {
		return err
	}
	if has(s, "retry_after_ns") != (expect == "rate_limited") {
		return fmtErr("`retry_after_ns` goes with rate_limited, and only with it")
	}
	n, err := asInt(s["permits"], "permits", 0)
	if err != nil {
		return err
	}
	err = l.AllowN(uint64(n))
	switch {
	case err == nil:
		return expectEqual("permitted", expect, "limiter_acquire")
	case errors.Is(err, breakwater.ErrNeverPasses):
		return expectEqual("never_passes", expect, "limiter_acquire")
	}
	reason, after, ok := rejection(err)
	if !ok {
		return err
	}
	if err := expectEqual(reason, expect, "limiter_acquire"); err != nil {
		return err
	}
	want, err := asInt(s["retry_after_ns"], "retry_after_ns", 0)
	if err != nil {
		return err
	}
	return expectEqual(after, want, "retry_after_ns")
}

func (w *world) reserve(s object) error {
	l, err := w.limiter(s["limiter"])
	if err != nil {
		return err
	}
	expect, err := asString(s["expect"], "expect", "reserved", "rate_limited", "never_passes")
	if err != nil {
		return err
	}
	if has(s, "id") != (expect == "reserved") || has(s, "wait_ns") != (expect == "reserved") ||
		has(s, "retry_after_ns") != (expect == "rate_limited") {
		return fmtErr("reserved takes `id` and `wait_ns`; rate_limited takes `retry_after_ns`")
	}
	n, err := asInt(s["permits"], "permits", 0)
	if err != nil {
		return err
	}
	maxWait, err := asInt(s["max_wait_ns"], "max_wait_ns", 0)
	if err != nil {
		return err
	}
	r, err := l.ReserveN(uint64(n), time.Duration(maxWait))
	if err != nil {
		if errors.Is(err, breakwater.ErrNeverPasses) {
			return expectEqual("never_passes", expect, "reserve")
		}
		reason, after, ok := rejection(err)
		if !ok {
			return err
		}
		if err := expectEqual(reason, expect, "reserve"); err != nil {
			return err
		}
		want, err := asInt(s["retry_after_ns"], "retry_after_ns", 0)
		if err != nil {
			return err
		}
		return expectEqual(after, want, "retry_after_ns")
	}
	if err := w.newID(s, r); err != nil {
		return err
	}
	if err := expectEqual("reserved", expect, "reserve"); err != nil {
		return err
	}
	want, err := asInt(s["wait_ns"], "wait_ns", 0)
	if err != nil {
		return err
	}
	return expectEqual(int64(r.Delay()), want, "wait_ns")
}

func (w *world) expectEvents(s object) error {
	want, ok := s["events"].([]any)
	if !ok {
		return fmtErr("events: expected an array")
	}
	for i, e := range want {
		m, _ := e.(object)
		kind, err := asString(m["kind"], fmt.Sprintf("events[%d].kind", i), "transition", "budget_exhausted", "reload")
		if err != nil {
			return err
		}
		if _, err := checkKeys(e, eventKeys[kind], nil, fmt.Sprintf("events[%d]", i)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.engine.FlushEvents(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	got := make([]any, 0, len(w.events)-w.seen)
	for _, e := range w.events[w.seen:] {
		got = append(got, eventObject(e))
	}
	w.seen = len(w.events)
	w.mu.Unlock()
	if dropped := w.engine.DroppedEvents(); dropped > 0 {
		return fmtErr("events: %d dropped by the listener's buffer", dropped)
	}
	return expectEqual(got, want, "events")
}

func (w *world) retryNext(s object) error {
	run, err := idOf[*breakwater.RetryRun](w, s)
	if err != nil {
		return err
	}
	what, err := asString(s["what"], "what", append([]string{"failure", "timeout"}, reasonNames()...)...)
	if err != nil {
		return err
	}
	expect, err := asString(s["expect"], "expect", "retry", "give_up")
	if err != nil {
		return err
	}
	if has(s, "delay_ns") != (expect == "retry") || has(s, "reason") != (expect == "give_up") {
		return fmtErr("retry takes `delay_ns`; give_up takes `reason`")
	}
	var hint int64
	if has(s, "retry_after_ns") {
		if hint, err = asInt(s["retry_after_ns"], "retry_after_ns", 0); err != nil {
			return err
		}
	}
	miss := breakwater.Miss{Outcome: outcomeOf(what), Reason: reasons[what]}
	delay, retry, reason, err := run.Next(miss, time.Duration(hint))
	if err != nil {
		return err
	}
	if retry {
		if err := expectEqual("retry", expect, "retry_next"); err != nil {
			return err
		}
		want, err := asInt(s["delay_ns"], "delay_ns", 0)
		if err != nil {
			return err
		}
		return expectEqual(int64(delay), want, "delay_ns")
	}
	if err := expectEqual("give_up", expect, "retry_next"); err != nil {
		return err
	}
	want, err := asString(s["reason"], "reason", "attempts_exhausted", "elapsed_exceeded", "deadline_exceeded", "budget_exhausted", "not_retryable")
	if err != nil {
		return err
	}
	return expectEqual(reason.String(), want, "reason")
}

var scenarioName = regexp.MustCompile(`^[a-z0-9_]+$`)

// runScenario runs one file; the error is the scenario's FAIL line.
func runScenario(path string) (err error) {
	name := strings.TrimSuffix(filepath.Base(path), ".json")
	fail := func(e error) error { return fmt.Errorf("FAIL %s: %v", name, e) }
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return fail(err)
	}
	doc, err := checkKeys(raw, []string{"format", "name", "description", "clock_start_ns", "policy_file", "steps"}, []string{"limiters"}, "scenario")
	if err != nil {
		return fail(err)
	}
	if f, err := asInt(doc["format"], "format", 0); err != nil || f != 1 {
		return fail(fmtErr("format: expected 1, got %v", doc["format"]))
	}
	if got, _ := doc["name"].(string); got != name || !scenarioName.MatchString(name) {
		return fail(fmtErr("name %q must be the file name without .json, [a-z0-9_]+", doc["name"]))
	}
	if _, err := asString(doc["description"], "description"); err != nil {
		return fail(err)
	}
	steps, ok := doc["steps"].([]any)
	if !ok {
		return fail(fmtErr("steps: expected an array"))
	}
	w, err := newWorld(doc)
	if err != nil {
		return fail(err)
	}
	defer w.close()
	for i, raw := range steps {
		m, _ := raw.(object)
		op, _ := m["op"].(string)
		err := func() error {
			keys, known := stepKeys[op]
			if !known {
				return fmtErr("unknown op %q", op)
			}
			s, err := checkKeys(raw, append([]string{"op"}, keys[0]...), keys[1], "step")
			if err != nil {
				return err
			}
			return w.step(op, s)
		}()
		if err != nil {
			return fmt.Errorf("FAIL %s: step %d (%s): %v (clock %d ns)", name, i+1, op, err, int64(w.clock.Now()))
		}
	}
	var open []string
	for id, h := range w.permits {
		if !h.done {
			open = append(open, id)
		}
	}
	if len(open) > 0 {
		sort.Strings(open)
		return fail(fmtErr("permits never completed: %v", open))
	}
	return nil
}

func TestConformance(t *testing.T) {
	dir := os.Getenv("BW_CONFORMANCE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "tests", "conformance", "scenarios")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance scenario in %s (%v)", dir, err)
	}
	sort.Strings(files) // byte order of the names
	passed, failed := 0, []string{}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			if err := runScenario(path); err != nil {
				failed = append(failed, err.Error())
				t.Error(err)
				return
			}
			passed++
		})
	}
	for _, line := range failed {
		fmt.Println(line)
	}
	if len(failed) > 0 {
		fmt.Printf("conformance: %d scenarios passed, %d failed\n", passed, len(failed))
	} else {
		fmt.Printf("conformance: %d scenarios passed\n", passed)
	}
}
