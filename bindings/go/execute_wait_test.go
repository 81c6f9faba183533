package breakwater_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

// A policy whose bulkhead lets one call in and makes the next wait up to an hour.
const waitingBulkhead = "[policies.w.bulkhead]\nmax_concurrent = 1\nmax_wait = \"1h\"\n"

// inLibraryCall reports whether a goroutine is inside one of the package's C calls
// under fn (a frame of fn above a cgo call): it has passed fn's own checks of ctx and
// is asking the library for a permit.
func inLibraryCall(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "breakwater.example/go._Cfunc_") && strings.Contains(g, fn) {
			return true
		}
	}
	return false
}

// waitingCall runs call on a goroutine and returns its result channel once the call
// is inside the library's acquire (or has already ended: then the channel has its
// error and waited is false).
func waitingCall(t *testing.T, fn string, call func() error) (result chan error, waited bool) {
	t.Helper()
	result = make(chan error, 1)
	go func() { result <- call() }()
	for !inLibraryCall(fn) {
		select {
		case err := <-result:
			result <- err
			return result, false
		case <-time.After(time.Millisecond):
		}
	}
	return result, true
}

// outcome waits for the call's result. The guard is no speed bound: a call whose wait
// ignored ctx would return only after the bulkhead's max_wait, an hour.
func outcome(t *testing.T, result chan error) error {
	t.Helper()
	select {
	case err := <-result:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the call was still waiting for the bulkhead a minute after its ctx ended")
		return nil
	}
}

// holdOne takes the bulkhead's only permit; the returned func gives it back.
func holdOne(t *testing.T, policy *breakwater.Policy) func() {
	t.Helper()
	done, err := policy.Allow()
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := done(breakwater.Success); err != nil {
			t.Fatal(err)
		}
	}
}

// wantNothingLeft checks that the call that gave up holds nothing and counts nothing:
// only the held permit is out, and no rejection was counted.
func wantNothingLeft(t *testing.T, policy *breakwater.Policy, release func()) {
	t.Helper()
	s := mustStats(t, policy)
	if s.Permitted != 1 || s.BulkheadInFlight != 1 || s.RejectedBulkheadFull != 0 || s.Ignored != 0 {
		t.Fatalf("after the cancelled wait: %+v", s)
	}
	release()
	if err := policy.Execute(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("the bulkhead's permit should be free again: %v", err)
	}
	s = mustStats(t, policy)
	if s.Permitted != 2 || s.Success != 2 || s.BulkheadInFlight != 0 || s.RejectedBulkheadFull != 0 {
		t.Fatalf("after the release: %+v", s)
	}
}

func TestCancellationDuringPolicyBulkheadWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []breakwater.Option
		call func(ctx context.Context, p *breakwater.Policy, called *atomic.Bool) error
	}{
		{"Execute", nil, func(ctx context.Context, p *breakwater.Policy, called *atomic.Bool) error {
			return p.Execute(ctx, func(context.Context) error { called.Store(true); return nil })
		}},
		{"Do", nil, func(ctx context.Context, p *breakwater.Policy, called *atomic.Bool) error {
			_, err := breakwater.Do(ctx, p, func(context.Context) (int, error) { called.Store(true); return 1, nil })
			return err
		}},
		{"ExecuteKey", nil, func(ctx context.Context, p *breakwater.Policy, called *atomic.Bool) error {
			return p.ExecuteKey(ctx, []byte("tenant"), func(context.Context) error { called.Store(true); return nil })
		}},
		{"ExecuteKey with per-key limits", nil, func(ctx context.Context, p *breakwater.Policy, called *atomic.Bool) error {
			return p.ExecuteKey(ctx, []byte("tenant"), func(context.Context) error { called.Store(true); return nil })
		}},
		{"Execute with a listener", []breakwater.Option{breakwater.WithEventListener(func(breakwater.Event) {})},
			func(ctx context.Context, p *breakwater.Policy, called *atomic.Bool) error {
				return p.Execute(ctx, func(context.Context) error { called.Store(true); return nil })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toml := waitingBulkhead
			if strings.Contains(tc.name, "per-key") {
				// The key may hold one permit: one left behind would refuse the next call.
				toml += "[policies.w.per_key]\nrate = 1000\nmax_concurrent = 1\nmax_keys = 8\n"
			}
			policy := mustPolicy(t, mustEngine(t, toml, tc.opts...), "w")
			release := holdOne(t, policy)
			ctx, cancel := context.WithCancel(context.Background())
			var called atomic.Bool
			result, waited := waitingCall(t, "breakwater.example/go.(*Policy).", func() error { return tc.call(ctx, policy, &called) })
			if !waited {
				t.Fatalf("the call ended before it waited: %v", <-result)
			}
			cancel()
			if err := outcome(t, result); !errors.Is(err, context.Canceled) || called.Load() {
				t.Fatalf("got %v (called: %v), want context.Canceled without a call", err, called.Load())
			}
			wantNothingLeft(t, policy, release)
			if err := policy.ExecuteKey(context.Background(), []byte("tenant"), func(context.Context) error { return nil }); err != nil {
				t.Fatalf("the key's permit should be free: %v", err)
			}
		})
	}
}

func TestDeadlineDuringPolicyBulkheadWait(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, waitingBulkhead), "w")
	release := holdOne(t, policy)
	// The deadline must come while the call waits; on a machine too loaded to reach the
	// wait before it, try again with a later one.
	var called atomic.Bool
	for d := 50 * time.Millisecond; ; d *= 4 {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		result, waited := waitingCall(t, "breakwater.example/go.(*Policy).Execute", func() error {
			return policy.Execute(ctx, func(context.Context) error { called.Store(true); return nil })
		})
		err := outcome(t, result)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || called.Load() {
			t.Fatalf("got %v (called: %v), want context.DeadlineExceeded without a call", err, called.Load())
		}
		if waited {
			break
		}
		if d > 10*time.Second {
			t.Fatal("the call never reached the bulkhead's wait before its deadline")
		}
	}
	wantNothingLeft(t, policy, release)
}

// A wait that ends is counted once: a permit handed over during the wait is one
// admission, a wait that runs out one rejection (its slices count nothing).
func TestPolicyBulkheadWaitCountsOnce(t *testing.T) {
	policy := mustPolicy(t, mustEngine(t, waitingBulkhead), "w")
	release := holdOne(t, policy)
	result, waited := waitingCall(t, "breakwater.example/go.(*Policy).Execute", func() error {
		return policy.Execute(context.Background(), func(context.Context) error { return nil })
	})
	if !waited {
		t.Fatalf("the call ended before it waited: %v", <-result)
	}
	release()
	if err := outcome(t, result); err != nil {
		t.Fatalf("the released permit should reach the waiter: %v", err)
	}
	if s := mustStats(t, policy); s.Permitted != 2 || s.Success != 2 || s.RejectedBulkheadFull != 0 || s.BulkheadInFlight != 0 {
		t.Fatalf("after a wait that got the permit: %+v", s)
	}

	short := mustPolicy(t, mustEngine(t, "[policies.s.bulkhead]\nmax_concurrent = 1\nmax_wait = \"30ms\"\n"), "s")
	release = holdOne(t, short)
	wantErr(t, short.Execute(context.Background(), func(context.Context) error { return nil }), breakwater.ErrBulkheadFull, "")
	if s := mustStats(t, short); s.Permitted != 1 || s.RejectedBulkheadFull != 1 || s.BulkheadInFlight != 1 {
		t.Fatalf("after a wait that ran out: %+v", s)
	}
	release()
}

// The manual clock ends a wait too, as it ends the library's own: at the first look
// after it has passed the bulkhead's max_wait.
func TestPolicyBulkheadWaitEndsOnTheManualClock(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	t.Cleanup(func() { clock.Close() })
	policy := mustPolicy(t, mustEngine(t, waitingBulkhead, breakwater.WithClock(clock)), "w")
	release := holdOne(t, policy)
	defer release()
	result, waited := waitingCall(t, "breakwater.example/go.(*Policy).Execute", func() error {
		return policy.Execute(context.Background(), func(context.Context) error { return nil })
	})
	if !waited {
		t.Fatalf("the call ended before it waited: %v", <-result)
	}
	clock.Advance(2 * time.Hour)
	wantErr(t, outcome(t, result), breakwater.ErrBulkheadFull, "")
	if s := mustStats(t, policy); s.RejectedBulkheadFull != 1 {
		t.Fatalf("%+v", s)
	}
}
