// Package otel connects breakwater to OpenTelemetry: the instruments of the names table
// (docs/telemetry.md) as observable instruments on the application's Meter, the span
// of Execute's ctx attached to each attempt (so a trip, a load shed or a refused retry
// carries the trace that caused it), a span event on rejection, and events as log/slog
// records. It depends on the OpenTelemetry API only; the application chooses the SDK.
// It is its own module, so the main module's users never download OpenTelemetry.
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

// Register registers every instrument of the table on meter, observing policies. One
// callback reads each policy's Stats once per collection, so all instruments of one
// collection agree. Unregister the returned registration (or shut the SDK down) before
// closing the policies. Call it once per meter: a second registration reports every
// value twice.
func Register(meter metric.Meter, policies ...*breakwater.Policy) (metric.Registration, error) {
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
		for _, p := range policies {
			s, err := p.Stats()
			if errors.Is(err, breakwater.ErrClosed) {
				continue
			}
			if err != nil {
				return err
			}
			name := attribute.String("policy", p.Name())
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
				continue
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
		return nil
	}, observables...)
}

// TraceContextOf is the trace context of the span in ctx, if it has a valid one.
func TraceContextOf(ctx context.Context) (breakwater.TraceContext, bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return breakwater.TraceContext{}, false
	}
	return breakwater.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}, true
}

// Install makes Execute and Do attach the span of their ctx to every attempt, and add
// the span event RejectionSpanEvent (policy, reason, retry_after in seconds) to it when
// an attempt is rejected.
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
