// Package otel connects breakwater to OpenTelemetry: the instruments of the names table
// (docs/telemetry.md) as observable instruments on the application's Meter, the span
// of Execute's ctx (Do's, keyed or not) attached to each attempt (so a trip, a load
// shed or a refused retry carries the trace that caused it), a span event on
// rejection, and events as log/slog records. It depends on the OpenTelemetry API only;
// the application chooses the SDK. It is its own module, so the main module's users
// never download OpenTelemetry.
package otel

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"

	breakwater "breakwater.example/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// MeterName is the meter (instrumentation scope) name of the names table.
const MeterName = "breakwater"

// RejectionSpanEvent is the span event a rejection adds to the active span.
const RejectionSpanEvent = "breakwater.rejection"

// Instrument is one row of the names table.
type Instrument struct {
	Name, Kind, Unit, Description string
	Attributes                    []string
}

// Instruments is the names table, in its order (a test holds it to
// docs/telemetry-names.json, which the Rust table generates).
var Instruments = []Instrument{
	{"breakwater.permits", "counter", "{call}", "Calls let through by every stage of the policy.", []string{"policy"}},
	{"breakwater.calls", "counter", "{call}", "Completed calls, by outcome.", []string{"policy", "outcome"}},
	{"breakwater.slow_calls", "counter", "{call}", "Completed calls slower than the circuit breaker's slow-call duration.", []string{"policy"}},
	{"breakwater.active_calls", "updowncounter", "{call}", "Calls permitted and not yet completed.", []string{"policy"}},
	{"breakwater.rejections", "counter", "{call}", "Calls refused, by reason (a retry the budget refused is one).", []string{"policy", "reason"}},
	{"breakwater.retries", "counter", "{retry}", "Retry attempts started.", []string{"policy"}},
	{"breakwater.breaker.transitions", "counter", "{transition}", "Circuit breaker transitions, by the state entered.", []string{"policy", "state"}},
	{"breakwater.breaker.state", "gauge", "1", "1 for the circuit breaker's current state, 0 for the other states.", []string{"policy", "state"}},
}

var states = []breakwater.BreakerState{breakwater.Closed, breakwater.Open, breakwater.HalfOpen, breakwater.ForcedOpen, breakwater.Disabled}

// RegisterEngine registers every instrument of the table on meter, observing the
// policies engine holds at each collection: a policy a reload adds is observed from
// the next collection, one it removes is no longer observed, and one it changes is
// observed in its new configuration (a breaker it gains or loses adds or drops the
// breaker instruments). Counters stay monotonic across reloads (a policy's counters
// survive a change of its configuration). One callback reads each policy's Stats once
// per collection, so all instruments of one collection agree. Unregister the returned
// registration (or shut the SDK down) before closing the engine. Call it once per
// meter: a second registration reports every value twice.
func RegisterEngine(meter metric.Meter, engine *breakwater.Engine) (metric.Registration, error) {
	return register(meter, func(observe func(*breakwater.Policy) error) error {
		names, err := engine.PolicyNames()
		if errors.Is(err, breakwater.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, name := range names {
			// Looked up at every collection (a short lock each, at the collector's pace):
			// a handle kept across collections would go on observing a policy that a
			// reload removed and another one added again under the same name.
			p, err := engine.Policy(name)
			if errors.Is(err, breakwater.ErrNotFound) {
				continue // removed by a reload since the names were read
			}
			if err != nil {
				return err
			}
			err = observe(p)
			p.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Register registers every instrument of the table on meter, observing the policies
// given, for policies that are not all of one engine's (standalone policies, or several
// engines). The set is fixed: a policy a reload adds to their engine is not observed,
// nor one it removes and adds again (the handle keeps the removed one); for an engine's
// policies use RegisterEngine. Otherwise as RegisterEngine.
func Register(meter metric.Meter, policies ...*breakwater.Policy) (metric.Registration, error) {
	return register(meter, func(observe func(*breakwater.Policy) error) error {
		for _, p := range policies {
			if err := observe(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// register registers the instruments with one callback that observes each policy
// policies hands it.
func register(meter metric.Meter, policies func(observe func(*breakwater.Policy) error) error) (metric.Registration, error) {
	counters := make(map[string]metric.Int64ObservableCounter)
	var active metric.Int64ObservableUpDownCounter
	var state metric.Int64ObservableGauge
	observables := make([]metric.Observable, 0, len(Instruments))
	for _, in := range Instruments {
		var err error
		switch in.Kind {
		case "counter":
			var c metric.Int64ObservableCounter
			c, err = meter.Int64ObservableCounter(in.Name, metric.WithUnit(in.Unit), metric.WithDescription(in.Description))
			counters[in.Name] = c
			observables = append(observables, c)
		case "updowncounter":
			active, err = meter.Int64ObservableUpDownCounter(in.Name, metric.WithUnit(in.Unit), metric.WithDescription(in.Description))
			observables = append(observables, active)
		case "gauge":
			state, err = meter.Int64ObservableGauge(in.Name, metric.WithUnit(in.Unit), metric.WithDescription(in.Description))
			observables = append(observables, state)
		}
		if err != nil {
			return nil, err
		}
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		return policies(func(p *breakwater.Policy) error {
			s, err := p.Stats()
			if errors.Is(err, breakwater.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			observePolicy(o, counters, active, state, p.Name(), &s)
			return nil
		})
	}, observables...)
}

// observePolicy observes every instrument of one policy from its snapshot.
func observePolicy(o metric.Observer, counters map[string]metric.Int64ObservableCounter, active metric.Int64ObservableUpDownCounter, state metric.Int64ObservableGauge, policy string, s *breakwater.PolicyStats) {
	name := attribute.String("policy", policy)
	one := metric.WithAttributes(name)
	count := func(instrument string, v uint64, extra ...attribute.KeyValue) {
		o.ObserveInt64(counters[instrument], int64(v), metric.WithAttributes(append([]attribute.KeyValue{name}, extra...)...))
	}
	count("breakwater.permits", s.Permitted)
	for _, oc := range []struct {
		name string
		v    uint64
	}{{"success", s.Success}, {"failure", s.Failure}, {"timeout", s.Timeout}, {"ignored", s.Ignored}} {
		count("breakwater.calls", oc.v, attribute.String("outcome", oc.name))
	}
	count("breakwater.slow_calls", s.Slow)
	o.ObserveInt64(active, int64(s.Permitted-s.Success-s.Failure-s.Timeout-s.Ignored), one)
	for _, r := range []struct {
		name string
		v    uint64
	}{
		{"circuit_open", s.RejectedCircuitOpen}, {"rate_limited", s.RejectedRateLimited},
		{"bulkhead_full", s.RejectedBulkheadFull}, {"load_shed", s.RejectedLoadShed},
		{"retry_budget_exhausted", s.RejectedRetryBudgetExhausted}, {"injected", s.RejectedInjected},
	} {
		count("breakwater.rejections", r.v, attribute.String("reason", r.name))
	}
	count("breakwater.retries", s.Retries)
	if s.BreakerState == breakwater.NoBreaker {
		return
	}
	transitions := []uint64{s.TransitionsToClosed, s.TransitionsToOpen, s.TransitionsToHalfOpen, s.TransitionsToForcedOpen, s.TransitionsToDisabled}
	for i, st := range states {
		attrs := metric.WithAttributes(name, attribute.String("state", st.String()))
		o.ObserveInt64(counters["breakwater.breaker.transitions"], int64(transitions[i]), attrs)
		current := int64(0)
		if s.BreakerState == st {
			current = 1
		}
		o.ObserveInt64(state, current, attrs)
	}
}

// TraceContextOf is the trace context of the span in ctx, if it has a valid one.
func TraceContextOf(ctx context.Context) (breakwater.TraceContext, bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return breakwater.TraceContext{}, false
	}
	return breakwater.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}, true
}

// Install makes Execute and Do (keyed or not) attach the span of their ctx to every
// attempt, and add the span event RejectionSpanEvent (policy, reason, retry_after in
// seconds) to it when an attempt is rejected.
func Install() {
	breakwater.SetTelemetryHooks(&breakwater.TelemetryHooks{
		TraceContext: TraceContextOf,
		OnRejection: func(ctx context.Context, err *breakwater.RejectedError) {
			span := trace.SpanFromContext(ctx)
			if !span.IsRecording() {
				return
			}
			attrs := []attribute.KeyValue{attribute.String("policy", err.Policy), attribute.String("reason", ReasonName(err.Reason))}
			if err.RetryAfter > 0 {
				attrs = append(attrs, attribute.Float64("retry_after", err.RetryAfter.Seconds()))
			}
			span.AddEvent(RejectionSpanEvent, trace.WithAttributes(attrs...))
		},
	})
}

// Uninstall removes the hooks Install set.
func Uninstall() { breakwater.SetTelemetryHooks(nil) }

// ReasonName is the names table's value of a rejection sentinel ("circuit_open", ...).
func ReasonName(reason error) string {
	switch {
	case errors.Is(reason, breakwater.ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(reason, breakwater.ErrRateLimited):
		return "rate_limited"
	case errors.Is(reason, breakwater.ErrBulkheadFull):
		return "bulkhead_full"
	case errors.Is(reason, breakwater.ErrLoadShed):
		return "load_shed"
	case errors.Is(reason, breakwater.ErrRetryBudgetExhausted):
		return "retry_budget_exhausted"
	case errors.Is(reason, breakwater.ErrInjectedRejection):
		return "injected"
	}
	return "unknown"
}

// LogEvents returns an event listener (for breakwater.WithEventListener) that writes
// each event to logger with the documented fields: trace_id and span_id (when the
// causing call was traced), policy, from, to, reason.
func LogEvents(logger *slog.Logger) func(breakwater.Event) {
	return func(e breakwater.Event) {
		var attrs []slog.Attr
		if e.Trace.IsValid() {
			attrs = append(attrs, slog.String("trace_id", hex.EncodeToString(e.Trace.TraceID[:])), slog.String("span_id", hex.EncodeToString(e.Trace.SpanID[:])))
		}
		if e.Policy != "" {
			attrs = append(attrs, slog.String("policy", e.Policy))
		}
		level, msg := slog.LevelInfo, "configuration reloaded"
		switch e.Kind {
		case breakwater.EventTransition:
			msg = "circuit breaker transition"
			attrs = append(attrs, slog.String("from", e.From.String()), slog.String("to", e.To.String()))
		case breakwater.EventBudgetExhausted:
			level, msg = slog.LevelWarn, "retry budget exhausted"
			attrs = append(attrs, slog.String("reason", "retry_budget_exhausted"))
		case breakwater.EventRejected:
			level, msg = slog.LevelWarn, "load shed"
			attrs = append(attrs, slog.String("reason", ReasonName(e.Reason)))
		case breakwater.EventReload:
			attrs = append(attrs, slog.Uint64("added", e.Added), slog.Uint64("removed", e.Removed), slog.Uint64("changed", e.Changed))
		}
		logger.LogAttrs(context.Background(), level, msg, attrs...)
	}
}
