package breakwater_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestTimeoutCutsTheAttempt(t *testing.T) {
	engine := mustEngine(t, "[policies.slow]\ntimeout = \"20ms\"\n[policies.slow.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "slow")
	err := policy.Execute(context.Background(), func(ctx context.Context) error {
		<-ctx.Done() // a real cut: only the policy's timeout ends this
		return ctx.Err()
	})
	var timeout *breakwater.TimeoutError
	if !errors.As(err, &timeout) || timeout.Timeout != 20*time.Millisecond || !errors.Is(err, breakwater.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a TimeoutError, got %v", err)
	}
	if stats := mustStats(t, policy); stats.Timeout != 1 || stats.Failure != 0 {
		t.Fatalf("stats %+v", stats)
	}
}

const retrying = `
[policies.r.bulkhead]
max_concurrent = 4
[policies.r.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
`

func TestExecuteRetriesUntilSuccess(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, retrying), "r")
	var attempts atomic.Int32
	err := policy.Execute(context.Background(), func(context.Context) error {
		if attempts.Add(1) < 3 {
			return errDependency
		}
		return nil
	}, breakwater.WithRetrySeed(7))
	if err != nil || attempts.Load() != 3 {
		t.Fatalf("err %v after %d attempts", err, attempts.Load())
	}
	if stats := mustStats(t, policy); stats.Retries != 2 || stats.Failure != 2 || stats.Success != 1 {
		t.Fatalf("stats %+v", stats)
	}
	attempts.Store(0)
	err = policy.Execute(context.Background(), func(context.Context) error { attempts.Add(1); return errDependency })
	if !errors.Is(err, errDependency) || attempts.Load() != 3 {
		t.Fatalf("err %v after %d attempts", err, attempts.Load())
	}
}

const slowBackoff = `
[policies.r.bulkhead]
max_concurrent = 4
[policies.r.retry]
max_attempts = 3
backoff = { initial = "1h", multiplier = 1.0, max = "1h", jitter = "none" }
`

func TestCancellationDuringBackoff(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, slowBackoff), "r")
	ctx, cancel := context.WithCancel(context.Background())
	err := policy.Execute(ctx, func(context.Context) error {
		time.AfterFunc(10*time.Millisecond, cancel) // cancelled while Execute sleeps an hour
		return errDependency
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errDependency) {
		t.Fatalf("want the cancellation and the last error, got %v", err)
	}
}

func TestNoRetryStartsPastTheDeadline(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, slowBackoff), "r")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attempts := 0
	err := policy.Execute(ctx, func(context.Context) error { attempts++; return errDependency })
	if !errors.Is(err, errDependency) || errors.Is(err, context.DeadlineExceeded) || attempts != 1 {
		t.Fatalf("want the last error at once (a 1h backoff ends past the 1 min deadline), got %v after %d attempts", err, attempts)
	}
}

func TestCallerCancellationIsIgnoredAndNotRetried(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, retrying), "r")
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	err := policy.Execute(ctx, func(ctx context.Context) error {
		attempts++
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || attempts != 1 {
		t.Fatalf("err %v after %d attempts", err, attempts)
	}
	if stats := mustStats(t, policy); stats.Ignored != 1 || stats.Failure != 0 {
		t.Fatalf("stats %+v", stats)
	}
	if err := policy.Execute(ctx, func(context.Context) error { t.Fatal("called"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("an ended context must not start a call: %v", err)
	}
}

func TestFallbackAndDo(t *testing.T) {
	engine := mustEngine(t, "[policies.p.circuit_breaker]\nminimum_calls = 2\n")
	policy := mustPolicy(t, engine, "p")
	value, err := breakwater.Do(context.Background(), policy, func(context.Context) (int, error) { return 42, nil })
	if value != 42 || err != nil {
		t.Fatalf("Do: %v, %v", value, err)
	}
	policy.ForceOpen()
	var seen error
	err = policy.Execute(context.Background(), func(context.Context) error { return nil },
		breakwater.WithFallback(func(_ context.Context, err error) error { seen = err; return nil }))
	if err != nil || !errors.Is(seen, breakwater.ErrCircuitOpen) {
		t.Fatalf("fallback saw %v, Execute returned %v", seen, err)
	}
	value, err = breakwater.Do(context.Background(), policy, func(context.Context) (int, error) { return 1, nil },
		breakwater.WithFallbackValue(func(context.Context, error) (int, error) { return 7, nil }))
	if value != 7 || err != nil {
		t.Fatalf("Do with a fallback: %v, %v", value, err)
	}
	_, err = breakwater.Do(context.Background(), policy, func(context.Context) (int, error) { return 1, nil })
	wantErr(t, err, breakwater.ErrCircuitOpen, "")
}

func TestInjectedFaultSkipsTheCall(t *testing.T) {
	engine := mustEngine(t, "[policies.c.chaos]\nenabled = true\nfailure_probability = 1.0\n")
	policy := mustPolicy(t, engine, "c")
	err := policy.Execute(context.Background(), func(context.Context) error { t.Fatal("called"); return nil })
	wantErr(t, err, breakwater.ErrInjectedFault, "")
	if stats := mustStats(t, policy); stats.Failure != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if err := policy.SetChaos(false); err != nil {
		t.Fatal(err)
	}
	if err := policy.Execute(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	other := mustPolicy(t, mustEngine(t, "[policies.n.bulkhead]\nmax_concurrent = 1\n"), "n")
	wantErr(t, other.SetChaos(true), breakwater.ErrNoStage, "chaos")
	wantErr(t, other.ForceOpen(), breakwater.ErrNoStage, "")
}

func TestInjectedLatencyIsCutByTheTimeout(t *testing.T) {
	engine := mustEngine(t, "[policies.c]\ntimeout = \"10ms\"\n[policies.c.chaos]\nenabled = true\nlatency_probability = 1.0\nlatency = \"1h\"\n")
	policy := mustPolicy(t, engine, "c")
	err := policy.Execute(context.Background(), func(context.Context) error { t.Fatal("called"); return nil })
	wantErr(t, err, breakwater.ErrTimeout, "")
	if stats := mustStats(t, policy); stats.Timeout != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestRetryBudgetRefusal(t *testing.T) {
	engine := mustEngine(t, `
[policies.b.bulkhead]
max_concurrent = 4
[policies.b.retry]
max_attempts = 5
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
budget = { ratio = 0.0, min_per_second = 1 }
`)
	policy := mustPolicy(t, engine, "b")
	fail := func(context.Context) error { return errDependency }
	var refused error
	for i := 0; i < 5 && refused == nil; i++ {
		if err := policy.Execute(context.Background(), fail); errors.Is(err, breakwater.ErrRetryBudgetExhausted) {
			refused = err
		}
	}
	var rejected *breakwater.RejectedError
	if !errors.As(refused, &rejected) || rejected.Policy != "b" || !errors.Is(refused, errDependency) {
		t.Fatalf("want a budget refusal carrying the last error, got %v", refused)
	}
	if stats := mustStats(t, policy); stats.RejectedRetryBudgetExhausted != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestCancellationDuringInjectedLatency(t *testing.T) {
	engine := mustEngine(t, "[policies.c.chaos]\nenabled = true\nlatency_probability = 1.0\nlatency = \"1h\"\n")
	policy := mustPolicy(t, engine, "c")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	err := policy.Execute(ctx, func(context.Context) error { t.Fatal("called after the cancelled latency"); return nil })
	wantErr(t, err, context.Canceled, "")
	if stats := mustStats(t, policy); stats.Ignored != 1 || stats.Failure != 0 {
		t.Fatalf("a call the caller gave up on is ignored: %+v", stats)
	}
}
