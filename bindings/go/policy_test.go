package breakwater_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestAllowAndDone(t *testing.T) {
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "p")
	done, err := policy.Allow()
	if err != nil {
		t.Fatal(err)
	}
	_, err = policy.AllowPriority(breakwater.Critical)
	wantErr(t, err, breakwater.ErrBulkheadFull, `"p"`)
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) || rejected.Policy != "p" {
		t.Fatalf("want a *RejectedError naming the policy, got %#v", err)
	}
	wantErr(t, done(breakwater.Outcome(9)), breakwater.ErrInvalidArgument, "")
	if err := done(breakwater.Success); err != nil {
		t.Fatalf("a valid outcome after an invalid one: %v", err)
	}
	wantErr(t, done(breakwater.Success), breakwater.ErrPermitUsed, "")
	_, err = policy.AllowPriority(breakwater.Priority(7))
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
	err = policy.Execute(context.Background(), func(context.Context) error { t.Fatal("called"); return nil },
		breakwater.WithPriority(breakwater.Priority(-1)))
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
	if err := policy.Execute(context.Background(), func(context.Context) error { return nil },
		breakwater.WithPriority(breakwater.Sheddable)); err != nil {
		t.Fatal(err)
	}
	stats := mustStats(t, policy)
	if stats.Permitted != 2 || stats.Success != 2 || stats.RejectedBulkheadFull != 1 || stats.BreakerState != breakwater.NoBreaker {
		t.Fatalf("stats %+v", stats)
	}
}

func TestBreakerScenarioOnTheManualClock(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	engine := mustEngine(t, `
[policies.payments.circuit_breaker]
window = { type = "count", size = 4 }
minimum_calls = 4
failure_rate_threshold = 50
open_duration = "30s"
half_open_permits = 1
`, breakwater.WithClock(clock))
	policy := mustPolicy(t, engine, "payments")
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		policy.Execute(ctx, func(context.Context) error {
			if i%2 == 1 { // the fourth outcome, a failure, reaches 50 %
				return errDependency
			}
			return nil
		})
	}
	err := policy.Execute(ctx, func(context.Context) error { t.Fatal("called while open"); return nil })
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, breakwater.ErrCircuitOpen) || rejected.RetryAfter != 30*time.Second || rejected.Policy != "payments" {
		t.Fatalf("at %v: want circuit open with retry after 30s, got %v", clock.Now(), err)
	}
	clock.Advance(30 * time.Second)
	if err := policy.Execute(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("at %v: the half-open probe failed: %v", clock.Now(), err)
	}
	stats := mustStats(t, policy)
	if stats.BreakerState != breakwater.Closed || stats.TransitionsToOpen != 1 || stats.TransitionsToHalfOpen != 1 || stats.TransitionsToClosed != 1 {
		t.Fatalf("at %v: stats %+v", clock.Now(), stats)
	}
	if stats.Success != 3 || stats.Failure != 2 || stats.RejectedCircuitOpen != 1 {
		t.Fatalf("counts %+v", stats)
	}
}

func TestPolicyRateLimiterRejectsWithRetryAfter(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	engine := mustEngine(t, "[policies.api.rate_limiter]\nrate = 2\nperiod = \"1s\"\nburst = 2\n", breakwater.WithClock(clock))
	policy := mustPolicy(t, engine, "api")
	ok := func(context.Context) error { return nil }
	for i := 0; i < 2; i++ {
		if err := policy.Execute(context.Background(), ok); err != nil {
			t.Fatal(err)
		}
	}
	err := policy.Execute(context.Background(), ok)
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, breakwater.ErrRateLimited) || rejected.RetryAfter != 500*time.Millisecond {
		t.Fatalf("at %v: %v", clock.Now(), err)
	}
}

// Sixteen goroutines on one policy: first a phase where the bulkhead is held full, so
// contention is certain (every call of the other goroutines is rejected), then all of
// them at once; every call is counted exactly once.
func TestSixteenGoroutinesCountExactly(t *testing.T) {
	const goroutines, holders, calls = 16, 4, 500
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 4\n")
	policy := mustPolicy(t, engine, "p")
	ctx := context.Background()
	entered := make(chan struct{})
	hold := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < holders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := policy.Execute(ctx, func(context.Context) error {
				entered <- struct{}{}
				<-hold
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	for i := 0; i < holders; i++ {
		<-entered
	}
	var rejectedWhileFull sync.WaitGroup
	for i := 0; i < goroutines-holders; i++ {
		rejectedWhileFull.Add(1)
		go func() {
			defer rejectedWhileFull.Done()
			for j := 0; j < calls; j++ {
				if err := policy.Execute(ctx, func(context.Context) error { return nil }); !errors.Is(err, breakwater.ErrBulkheadFull) {
					t.Errorf("while full: %v", err)
					return
				}
			}
		}()
	}
	rejectedWhileFull.Wait()
	close(hold)
	wg.Wait()
	var mu sync.Mutex
	succeeded, rejected, failed := 0, 0, 0
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, r, f := 0, 0, 0
			for j := 0; j < calls; j++ {
				err := policy.Execute(ctx, func(context.Context) error {
					if j%5 == 0 {
						return errDependency
					}
					return nil
				})
				switch {
				case err == nil:
					s++
				case errors.Is(err, breakwater.ErrBulkheadFull):
					r++
				case errors.Is(err, errDependency):
					f++
				default:
					t.Error(err)
				}
			}
			mu.Lock()
			succeeded, rejected, failed = succeeded+s, rejected+r, failed+f
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	stats := mustStats(t, policy)
	total := uint64(holders + (goroutines-holders)*calls + goroutines*calls)
	if stats.Permitted+stats.RejectedBulkheadFull != total {
		t.Fatalf("permitted %d + rejected %d != %d calls", stats.Permitted, stats.RejectedBulkheadFull, total)
	}
	if stats.Success != uint64(holders+succeeded) || stats.Failure != uint64(failed) ||
		stats.RejectedBulkheadFull != uint64((goroutines-holders)*calls+rejected) {
		t.Fatalf("stats %+v; goroutines saw %d ok, %d failed, %d rejected", stats, succeeded, failed, rejected)
	}
	if stats.Success+stats.Failure != stats.Permitted || stats.BulkheadInFlight != 0 {
		t.Fatalf("completions %d+%d of %d permits, %d in flight", stats.Success, stats.Failure, stats.Permitted, stats.BulkheadInFlight)
	}
}

// A Done dropped without a call gives its permit back (as ignored) once collected.
func TestDroppedDoneReleasesItsPermit(t *testing.T) {
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "p")
	func() {
		if _, err := policy.Allow(); err != nil { // done dropped on the floor
			t.Fatal(err)
		}
	}()
	for i := 0; i < 100 && mustStats(t, policy).Ignored == 0; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	stats := mustStats(t, policy)
	if stats.Ignored != 1 || stats.BulkheadInFlight != 0 {
		t.Fatalf("the dropped permit was not released: %+v", stats)
	}
	done, err := policy.Allow()
	if err != nil {
		t.Fatalf("the slot is free again: %v", err)
	}
	done(breakwater.Success)
	runtime.GC()
	if stats := mustStats(t, policy); stats.Ignored != 1 || stats.Success != 1 {
		t.Fatalf("a completed permit is not released again: %+v", stats)
	}
}
