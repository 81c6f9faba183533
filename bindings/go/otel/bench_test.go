package otel_test

import (
	"context"
	"testing"

	breakwater "breakwater.example/go"
	bwotel "breakwater.example/go/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const benchPolicy = "[policies.p.circuit_breaker]\n[policies.p.bulkhead]\nmax_concurrent = 64\n"

// benchKeyedPolicy is benchPolicy with a per_key stage, for ExecuteKey.
const benchKeyedPolicy = "[policies.p.per_key]\nrate = 1000000000\nmax_keys = 16\n" + benchPolicy

// The cost of trace context on Execute: untraced (no hooks), hooks installed but no
// span in ctx, and a recording span in ctx (the traced acquire and completion), on an
// engine without and with an event listener (whose calls may run Go code, so they
// pass what they point to from the heap).
func BenchmarkExecute(b *testing.B) {
	benchmarkTraced(b, benchPolicy, func(ctx context.Context, p *breakwater.Policy, call func(context.Context) error) error {
		return p.Execute(ctx, call)
	})
}

// BenchmarkExecuteKey is BenchmarkExecute for ExecuteKey, one key.
func BenchmarkExecuteKey(b *testing.B) {
	key := []byte("tenant-a")
	benchmarkTraced(b, benchKeyedPolicy, func(ctx context.Context, p *breakwater.Policy, call func(context.Context) error) error {
		return p.ExecuteKey(ctx, key, call)
	})
}

func benchmarkTraced(b *testing.B, toml string, execute func(context.Context, *breakwater.Policy, func(context.Context) error) error) {
	for _, listening := range []bool{false, true} {
		var opts []breakwater.Option
		suffix := ""
		if listening {
			opts = append(opts, breakwater.WithEventListener(func(breakwater.Event) {}))
			suffix = "_listener"
		}
		engine, err := breakwater.EngineFromTOML(toml, opts...)
		if err != nil {
			b.Fatal(err)
		}
		policy, _ := engine.Policy("p")
		call := func(context.Context) error { return nil }
		run := func(b *testing.B, ctx context.Context) {
			b.ReportAllocs()
			for b.Loop() {
				if err := execute(ctx, policy, call); err != nil {
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
