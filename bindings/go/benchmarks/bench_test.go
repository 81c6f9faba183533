package benchmarks

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	breakwater "breakwater.example/go"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// A limit no benchmark reaches: every Allow passes, so both sides do the same work.
const huge = math.MaxInt32

func BenchmarkCgoNoop(b *testing.B) {
	for b.Loop() {
		cgoNoop()
	}
}

func BenchmarkAllow(b *testing.B) {
	b.Run("breakwater", func(b *testing.B) {
		l, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1 << 40, Period: time.Hour, Burst: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if !l.Allow() {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("x-time-rate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(huge), huge)
		for b.Loop() {
			if !l.Allow() {
				b.Fatal("rejected")
			}
		}
	})
}

// Two goroutines on one limiter (run with -cpu 2): the contended case.
func BenchmarkAllowParallel(b *testing.B) {
	b.Run("breakwater", func(b *testing.B) {
		l, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1 << 40, Period: time.Hour, Burst: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow()
			}
		})
	})
	b.Run("x-time-rate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(huge), huge)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow()
			}
		})
	})
}

func noop(context.Context) error { return nil }

func BenchmarkExecute(b *testing.B) {
	ctx := context.Background()
	b.Run("breakwater", func(b *testing.B) {
		engine, err := breakwater.EngineFromTOML("[policies.p.circuit_breaker]\nminimum_calls = 20\n")
		if err != nil {
			b.Fatal(err)
		}
		policy, err := engine.Policy("p")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := policy.Execute(ctx, noop); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "p"})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(func() (struct{}, error) { return struct{}{}, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe-go", func(b *testing.B) {
		cb := circuitbreaker.NewWithDefaults[any]()
		executor := failsafe.With[any](cb)
		b.ReportAllocs()
		for b.Loop() {
			if err := executor.Run(func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Per-key limits: ExecuteKey on a no-op over 1 000 keys, each far below its quota.
func BenchmarkExecuteKey(b *testing.B) {
	engine, err := breakwater.EngineFromTOML("[policies.p.per_key]\nrate = 1000000000\nmax_keys = 2000\n")
	if err != nil {
		b.Fatal(err)
	}
	policy, err := engine.Policy("p")
	if err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte("tenant-" + strconv.Itoa(i))
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := policy.ExecuteKey(ctx, keys[i%len(keys)], noop); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
