package otel_test

import (
	"context"
	"testing"

	breakwater "breakwater.example/go"
	bwotel "breakwater.example/go/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const benchPolicy = "[policies.p.circuit_breaker]\n[policies.p.bulkhead]\nmax_concurrent = 64\n"

// The cost of trace context on Execute: untraced (no hooks), hooks installed but no
// span in ctx, and a recording span in ctx (the traced acquire and completion), on an
// engine without and with an event listener (whose calls may run Go code, so they
// pass what they point to from the heap).
func BenchmarkExecute(b *testing.B) {
	for _, listening := range []bool{false, true} {
		var opts []breakwater.Option
		suffix := ""
		if listening {
			opts = append(opts, breakwater.WithEventListener(func(breakwater.Event) {}))
			suffix = "_listener"
		}
		engine, err := breakwater.EngineFromTOML(benchPolicy, opts...)
		if err != nil {
			b.Fatal(err)
		}
		policy, _ := engine.Policy("p")
		call := func(context.Context) error { return nil }
		run := func(b *testing.B, ctx context.Context) {
			b.ReportAllocs()
			for b.Loop() {
				if err := policy.Execute(ctx, call); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run("untraced"+suffix, func(b *testing.B) { run(b, context.Background()) })
		bwotel.Install()
		b.Run("installed_no_span"+suffix, func(b *testing.B) { run(b, context.Background()) })
		ctx, span := sdktrace.NewTracerProvider().Tracer("bench").Start(context.Background(), "call")
		b.Run("traced"+suffix, func(b *testing.B) { run(b, ctx) })
		span.End()
		bwotel.Uninstall()
		policy.Close()
		engine.Close()
	}
}
