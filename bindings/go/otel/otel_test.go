package otel_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	breakwater "breakwater.example/go"
	bwotel "breakwater.example/go/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The Go table is the one docs/telemetry-names.json (generated from the Rust table) holds.
func TestInstrumentsMatchTheNamesTable(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/telemetry-names.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Meter       string `json:"meter"`
		Instruments []struct {
			Name, Kind, Unit string
			Attributes       []string
		} `json:"instruments"`
		LogFields          []string `json:"log_fields"`
		RejectionSpanEvent string   `json:"rejection_span_event"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	if table.Meter != bwotel.MeterName || table.RejectionSpanEvent != bwotel.RejectionSpanEvent {
		t.Fatalf("meter %q / span event %q", table.Meter, table.RejectionSpanEvent)
	}
	if len(table.Instruments) != len(bwotel.Instruments) {
		t.Fatalf("%d instruments in the table, %d here", len(table.Instruments), len(bwotel.Instruments))
	}
	for i, want := range table.Instruments {
		got := bwotel.Instruments[i]
		if got.Name != want.Name || got.Kind != want.Kind || got.Unit != want.Unit || !reflect.DeepEqual(got.Attributes, want.Attributes) {
			t.Errorf("instrument %d: got %+v, table says %+v", i, got, want)
		}
	}
}

const policies = `
[policies.payments.circuit_breaker]
minimum_calls = 50
failure_rate_threshold = 40
open_duration = "1h"

[policies.search.bulkhead]
max_concurrent = 3
`

type point struct {
	name  string
	attrs string
}

func collect(t *testing.T, reader *sdkmetric.ManualReader) map[point]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	points := map[point]int64{}
	add := func(name string, set attribute.Set, v int64) {
		var parts []string
		for _, kv := range set.ToSlice() {
			parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
		}
		sort.Strings(parts)
		p := point{name, strings.Join(parts, ",")}
		if _, dup := points[p]; dup {
			t.Fatalf("%v recorded twice", p)
		}
		points[p] = v
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != bwotel.MeterName {
			t.Fatalf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					add(m.Name, dp.Attributes, dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range data.DataPoints {
					add(m.Name, dp.Attributes, dp.Value)
				}
			default:
				t.Fatalf("%s: unexpected %T", m.Name, m.Data)
			}
		}
	}
	return points
}

func TestEveryInstrumentEqualsTheSnapshotAfterAConcurrentRun(t *testing.T) {
	engine, err := breakwater.EngineFromTOML(policies)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	payments, _ := engine.Policy("payments")
	search, _ := engine.Policy("search")
	defer payments.Close()
	defer search.Close()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	registration, err := bwotel.Register(provider.Meter(bwotel.MeterName), payments, search)
	if err != nil {
		t.Fatal(err)
	}
	defer registration.Unregister()

	var wg sync.WaitGroup
	var held sync.Map
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				_ = payments.Execute(context.Background(), func(context.Context) error {
					if (i+g)%2 == 0 {
						return errDependency
					}
					return nil
				})
				if done, err := search.Allow(); err == nil {
					if i == 299 {
						held.Store(g, done) // left out: active_calls must see it
					} else {
						done(breakwater.Success)
					}
				}
			}
		}()
	}
	wg.Wait()

	if points, want := collect(t, reader), snapshotPoints(t, payments, search); !reflect.DeepEqual(points, want) {
		t.Fatalf("collected\n%v\nsnapshots\n%v", points, want)
	}
	ps := mustStats(t, payments)
	if ps.TransitionsToOpen != 1 || ps.RejectedCircuitOpen == 0 {
		t.Fatalf("the run should trip the breaker once: %+v", ps)
	}
	if ss := mustStats(t, search); ss.Permitted-ss.Success == 0 {
		t.Fatalf("no permit left out: %+v", ss)
	}
	held.Range(func(_, done any) bool { done.(breakwater.Done)(breakwater.Success); return true })
}

var errDependency = errors.New("dependency failed")

// snapshotPoints is what a collection must hold for policies: every instrument's
// point from their snapshots.
func snapshotPoints(t *testing.T, policies ...*breakwater.Policy) map[point]int64 {
	t.Helper()
	want := map[point]int64{}
	for _, p := range policies {
		s := mustStats(t, p)
		pol := "policy=" + p.Name()
		want[point{"breakwater.permits", pol}] = int64(s.Permitted)
		for name, v := range map[string]uint64{"success": s.Success, "failure": s.Failure, "timeout": s.Timeout, "ignored": s.Ignored} {
			want[point{"breakwater.calls", "outcome=" + name + "," + pol}] = int64(v)
		}
		want[point{"breakwater.slow_calls", pol}] = int64(s.Slow)
		want[point{"breakwater.active_calls", pol}] = int64(s.Permitted - s.Success - s.Failure - s.Timeout - s.Ignored)
		for name, v := range map[string]uint64{
			"circuit_open": s.RejectedCircuitOpen, "rate_limited": s.RejectedRateLimited, "bulkhead_full": s.RejectedBulkheadFull,
			"load_shed": s.RejectedLoadShed, "retry_budget_exhausted": s.RejectedRetryBudgetExhausted, "injected": s.RejectedInjected,
		} {
			want[point{"breakwater.rejections", pol + ",reason=" + name}] = int64(v)
		}
		want[point{"breakwater.retries", pol}] = int64(s.Retries)
		if s.BreakerState != breakwater.NoBreaker {
			transitions := []uint64{s.TransitionsToClosed, s.TransitionsToOpen, s.TransitionsToHalfOpen, s.TransitionsToForcedOpen, s.TransitionsToDisabled}
			for i, st := range []breakwater.BreakerState{breakwater.Closed, breakwater.Open, breakwater.HalfOpen, breakwater.ForcedOpen, breakwater.Disabled} {
				attrs := pol + ",state=" + st.String()
				want[point{"breakwater.breaker.transitions", attrs}] = int64(transitions[i])
				current := int64(0)
				if st == s.BreakerState {
					current = 1
				}
				want[point{"breakwater.breaker.state", attrs}] = current
			}
		}
	}
	return want
}

func mustStats(t *testing.T, p *breakwater.Policy) breakwater.PolicyStats {
	t.Helper()
	s, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The trip event carries the trace of the failing call that tripped the breaker; a
// rejection inside a span becomes a span event; the log record has the trace fields.
func TestTheTripCarriesTheTraceOfTheFailingSpan(t *testing.T) {
	bwotel.Install()
	defer bwotel.Uninstall()
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("checkout")

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	events := make(chan breakwater.Event, 16)
	logEvent := bwotel.LogEvents(logger)
	engine, err := breakwater.EngineFromTOML(`
[policies.payments.circuit_breaker]
minimum_calls = 3
failure_rate_threshold = 50
open_duration = "1h"
`, breakwater.WithEventListener(func(e breakwater.Event) { logEvent(e); events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	payments, _ := engine.Policy("payments")
	defer payments.Close()

	var lastSpan [16]byte
	var lastSpanID [8]byte
	for i := 0; i < 3; i++ {
		ctx, span := tracer.Start(context.Background(), "charge")
		lastSpan, lastSpanID = span.SpanContext().TraceID(), span.SpanContext().SpanID()
		_ = payments.Execute(ctx, func(context.Context) error { return errDependency })
		span.End()
	}
	var trip breakwater.Event
	select {
	case trip = <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("no trip event")
	}
	if trip.Kind != breakwater.EventTransition || trip.To != breakwater.Open {
		t.Fatalf("got %+v", trip)
	}
	if trip.Trace.TraceID != lastSpan || trip.Trace.SpanID != lastSpanID {
		t.Fatalf("trip trace %x/%x, failing span %x/%x", trip.Trace.TraceID, trip.Trace.SpanID, lastSpan, lastSpanID)
	}

	ctx, span := tracer.Start(context.Background(), "charge rejected")
	err = payments.Execute(ctx, func(context.Context) error { return nil })
	span.End()
	if !errors.Is(err, breakwater.ErrCircuitOpen) {
		t.Fatalf("got %v", err)
	}
	ended := spans.Ended()
	last := ended[len(ended)-1]
	if got := last.Events(); len(got) != 1 || got[0].Name != bwotel.RejectionSpanEvent {
		t.Fatalf("span events %+v", got)
	}
	attrs := map[string]string{}
	for _, kv := range last.Events()[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["policy"] != "payments" || attrs["reason"] != "circuit_open" || attrs["retry_after"] == "" {
		t.Fatalf("span event attributes %v", attrs)
	}
	for _, s := range ended[:len(ended)-1] {
		if len(s.Events()) != 0 {
			t.Fatalf("a span without rejection got events %+v", s.Events())
		}
	}

	payments.Close()
	engine.Close() // delivers what is queued
	var record map[string]any
	line, _, _ := strings.Cut(logs.String(), "\n")
	if err := json.Unmarshal([]byte(line), &record); err != nil {
		t.Fatalf("%v: %q", err, logs.String())
	}
	if record["trace_id"] != hex.EncodeToString(lastSpan[:]) || record["span_id"] != hex.EncodeToString(lastSpanID[:]) ||
		record["policy"] != "payments" || record["from"] != "closed" || record["to"] != "open" {
		t.Fatalf("log record %v", record)
	}
}

// A keyed call attaches its span as Execute does: the trip that ExecuteKey's (or
// DoKey's) third failure causes carries that call's trace, on a policy whose per_key
// stage is asked first.
func TestTheTripCarriesTheTraceOfTheFailingKeyedSpan(t *testing.T) {
	bwotel.Install()
	defer bwotel.Uninstall()
	tracer := sdktrace.NewTracerProvider().Tracer("checkout")
	calls := map[string]func(ctx context.Context, p *breakwater.Policy) error{
		"ExecuteKey": func(ctx context.Context, p *breakwater.Policy) error {
			return p.ExecuteKey(ctx, []byte("tenant-a"), func(context.Context) error { return errDependency })
		},
		"DoKey": func(ctx context.Context, p *breakwater.Policy) error {
			_, err := breakwater.DoKey(ctx, p, []byte("tenant-a"), func(context.Context) (int, error) { return 0, errDependency })
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			events := make(chan breakwater.Event, 16)
			engine, err := breakwater.EngineFromTOML(`
[policies.payments.per_key]
rate = 100
max_keys = 16
[policies.payments.circuit_breaker]
minimum_calls = 3
failure_rate_threshold = 50
open_duration = "1h"
`, breakwater.WithEventListener(func(e breakwater.Event) { events <- e }))
			if err != nil {
				t.Fatal(err)
			}
			defer engine.Close()
			payments, _ := engine.Policy("payments")
			defer payments.Close()

			var lastSpan [16]byte
			var lastSpanID [8]byte
			for i := 0; i < 3; i++ {
				ctx, span := tracer.Start(context.Background(), "charge")
				lastSpan, lastSpanID = span.SpanContext().TraceID(), span.SpanContext().SpanID()
				if err := call(ctx, payments); !errors.Is(err, errDependency) {
					t.Fatalf("call %d: %v", i, err)
				}
				span.End()
			}
			var trip breakwater.Event
			select {
			case trip = <-events:
			case <-time.After(5 * time.Second):
				t.Fatal("no trip event")
			}
			if trip.Kind != breakwater.EventTransition || trip.To != breakwater.Open {
				t.Fatalf("got %+v", trip)
			}
			if trip.Trace.TraceID != lastSpan || trip.Trace.SpanID != lastSpanID {
				t.Fatalf("trip trace %x/%x, failing span %x/%x", trip.Trace.TraceID, trip.Trace.SpanID, lastSpan, lastSpanID)
			}
		})
	}
}
