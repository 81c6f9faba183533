package breakwater_test

import (
	"context"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

// The README's and the package doc's cost claims, held to account: the hot calls
// allocate nothing. testing.AllocsPerRun averages over runs, after one warm-up run that
// reads the policy's settings. They hold under -race too (the test command runs only
// that), except on a listening engine's path: its scratch comes from a sync.Pool, which
// under -race drops a share of what is put back on purpose.

func wantNoAllocs(t *testing.T, what string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per call, want 0", what, n)
	}
}

func noop(context.Context) error { return nil }

func TestExecuteAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	const toml = "[policies.p.circuit_breaker]\n[policies.p.bulkhead]\nmax_concurrent = 4\n" +
		"[policies.api.per_key]\nrate = 1000000\nburst = 1000000\nmax_concurrent = 1\nmax_keys = 64\n" +
		"[policies.w.bulkhead]\nmax_concurrent = 4\nmax_wait = \"1h\"\n"
	for _, tc := range []struct {
		name string
		opts []breakwater.Option
	}{
		{"no listener", nil},
		{"with a listener", []breakwater.Option{breakwater.WithEventListener(func(breakwater.Event) {})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if raceEnabled && tc.opts != nil {
				t.Skip("the pooled scratch of a listening engine is dropped at random under -race")
			}
			engine := mustEngine(t, toml, tc.opts...)
			policy := mustPolicy(t, engine, "p")
			keyed := mustPolicy(t, engine, "api")
			key := []byte("tenant-1")
			wantNoAllocs(t, "Execute", func() {
				if err := policy.Execute(ctx, noop); err != nil {
					t.Fatal(err)
				}
			})
			wantNoAllocs(t, "ExecuteKey", func() {
				if err := keyed.ExecuteKey(ctx, key, noop); err != nil {
					t.Fatal(err)
				}
			})
			// A bulkhead that may make a call wait: Execute asks without blocking, and
			// with room in the bulkhead allocates nothing either (execute_wait.go).
			waiting := mustPolicy(t, engine, "w")
			wantNoAllocs(t, "Execute, waiting bulkhead", func() {
				if err := waiting.Execute(ctx, noop); err != nil {
					t.Fatal(err)
				}
			})
			if s := mustStats(t, policy); s.Success == 0 || s.Success != s.Permitted {
				t.Fatalf("the calls did not run: %+v", s)
			}
		})
	}
}

func TestLimiterAllowAllocatesNothing(t *testing.T) {
	limiter, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1 << 20, Burst: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer limiter.Close()
	wantNoAllocs(t, "RateLimiter.Allow", func() {
		if !limiter.Allow() {
			t.Fatal("refused")
		}
	})
	// A refusal allocates nothing either (Allow answers a bool, not an error).
	empty, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1, Period: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	empty.Allow()
	wantNoAllocs(t, "RateLimiter.Allow refused", func() {
		if empty.Allow() {
			t.Fatal("admitted")
		}
	})
}

func TestBulkheadTryAcquireReleaseAllocateNothing(t *testing.T) {
	b, err := breakwater.NewBulkhead(breakwater.BulkheadConfig{MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wantNoAllocs(t, "Bulkhead.TryAcquire+Release", func() {
		if b.TryAcquire() != nil || b.Release() != nil {
			t.Fatal("TryAcquire/Release failed")
		}
	})
}

// Allow's acquire and completion allocate nothing; what it allocates is the Done it
// hands out (no claim says otherwise): the permit's box, the holder the Done closes
// over, the closure, and the cleanup (its argument and record) that releases a dropped
// Done's permit.
func TestPolicyAllowAllocatesOnlyItsDone(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, "[policies.p.circuit_breaker]\n[policies.p.bulkhead]\nmax_concurrent = 4\n"), "p")
	n := testing.AllocsPerRun(200, func() {
		done, err := policy.Allow()
		if err != nil {
			t.Fatal(err)
		}
		if err := done(breakwater.Success); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Allow + Done: %v allocations", n)
	if n > 5 {
		t.Errorf("Allow + Done: %v allocations per call, want at most the Done's 5", n)
	}
}
