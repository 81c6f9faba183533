package otel_test

import (
	"context"
	"testing"

	breakwater "breakwater.example/go"
	bwotel "breakwater.example/go/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The cost of trace context on Execute: untraced (no hooks), hooks installed but no
// span in ctx, and a recording span in ctx (the traced acquire and completion).
func BenchmarkExecute(b *testing.B) {
	engine, err := breakwater.EngineFromTOML("[policies.p.circuit_breaker]\n[policies.p.bulkhead]\nmax_concurrent = 64\n")
	if err != nil {
		b.Fatal(err)
	}
	defer engine.Close()
	policy, _ := engine.Policy("p")
	defer policy.Close()
	call := func(context.Context) error { return nil }
	run := func(b *testing.B, ctx context.Context) {
		for i := 0; i < b.N; i++ {
			if err := policy.Execute(ctx, call); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("untraced", func(b *testing.B) { run(b, context.Background()) })
	bwotel.Install()
	defer bwotel.Uninstall()
	b.Run("installed_no_span", func(b *testing.B) { run(b, context.Background()) })
	ctx, span := sdktrace.NewTracerProvider().Tracer("bench").Start(context.Background(), "call")
	defer span.End()
	b.Run("traced", func(b *testing.B) { run(b, ctx) })
}
