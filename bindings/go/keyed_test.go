package breakwater_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

// Two calls per second for each key, at most one in flight per key.
const perKey = `
[policies.api.per_key]
rate = 2
period = "1s"
burst = 2
max_concurrent = 1
max_keys = 64
top_keys = 4
`

func keyedPolicy(t *testing.T, toml string, opts ...breakwater.Option) (*breakwater.Policy, *breakwater.ManualClock, *breakwater.Engine) {
	t.Helper()
	clock := breakwater.NewManualClock(time.Second)
	t.Cleanup(func() { clock.Close() })
	engine := mustEngine(t, toml, append([]breakwater.Option{breakwater.WithClock(clock)}, opts...)...)
	return mustPolicy(t, engine, "api"), clock, engine
}

// allowKey takes and completes one keyed permit, returning AllowKey's error.
func allowKey(t *testing.T, policy *breakwater.Policy, key string) error {
	t.Helper()
	done, err := policy.AllowKey([]byte(key))
	if err != nil {
		return err
	}
	if err := done(breakwater.Success); err != nil {
		t.Fatalf("Done: %v", err)
	}
	return nil
}

func wantRejected(t *testing.T, err, reason error, retryAfter time.Duration) {
	t.Helper()
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, reason) || rejected.Policy != "api" || rejected.RetryAfter != retryAfter {
		t.Fatalf("got %v (%+v), want %v with RetryAfter %v", err, rejected, reason, retryAfter)
	}
}

func TestAllowKeyQuotaIsPerKeyOnTheManualClock(t *testing.T) {
	policy, clock, _ := keyedPolicy(t, perKey)
	for i := range 2 {
		if err := allowKey(t, policy, "alice"); err != nil {
			t.Fatalf("alice call %d: %v", i, err)
		}
	}
	// alice's burst is spent: her next permit is due in one interval (500 ms)...
	wantRejected(t, allowKey(t, policy, "alice"), breakwater.ErrRateLimited, 500*time.Millisecond)
	// ... while bob (and the empty key, a key like any other) have their own quota.
	for _, key := range []string{"bob", "bob", ""} {
		if err := allowKey(t, policy, key); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
	}
	wantRejected(t, allowKey(t, policy, "bob"), breakwater.ErrRateLimited, 500*time.Millisecond)
	if err := clock.Advance(499 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, allowKey(t, policy, "alice"), breakwater.ErrRateLimited, time.Millisecond)
	if err := clock.Advance(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := allowKey(t, policy, "alice"); err != nil {
		t.Fatalf("alice after 500 ms: %v", err)
	}
	wantRejected(t, allowKey(t, policy, "alice"), breakwater.ErrRateLimited, 500*time.Millisecond)
	stats := mustStats(t, policy)
	if stats.Permitted != 6 || stats.Success != 6 || stats.RejectedRateLimited != 4 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestAllowKeyConcurrencyIsPerKey(t *testing.T) {
	policy, _, _ := keyedPolicy(t, perKey)
	done, err := policy.AllowKey([]byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	// One call in flight per key: alice waits, bob does not.
	_, err = policy.AllowKey([]byte("alice"))
	wantRejected(t, err, breakwater.ErrBulkheadFull, 0)
	if err := allowKey(t, policy, "bob"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	// A refusal by the key's concurrency gives back the quota it would have taken: after
	// the Done alice still has her second permit of the burst.
	if err := done(breakwater.Failure); err != nil {
		t.Fatal(err)
	}
	wantErr(t, done(breakwater.Success), breakwater.ErrPermitUsed, "")
	if err := allowKey(t, policy, "alice"); err != nil {
		t.Fatalf("alice after Done: %v", err)
	}
	if stats := mustStats(t, policy); stats.Failure != 1 || stats.Success != 2 || stats.RejectedBulkheadFull != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestExecuteKey(t *testing.T) {
	policy, clock, _ := keyedPolicy(t, perKey)
	ctx := context.Background()
	calls := 0
	call := func(context.Context) error { calls++; return nil }
	for range 2 {
		if err := policy.ExecuteKey(ctx, []byte("alice"), call); err != nil {
			t.Fatal(err)
		}
	}
	wantRejected(t, policy.ExecuteKey(ctx, []byte("alice"), call), breakwater.ErrRateLimited, 500*time.Millisecond)
	if calls != 2 {
		t.Fatalf("%d calls, want 2 (a rejected call is not made)", calls)
	}
	// The fallback sees the key's rejection.
	err := policy.ExecuteKey(ctx, []byte("alice"), call, breakwater.WithFallback(func(_ context.Context, err error) error {
		if !errors.Is(err, breakwater.ErrRateLimited) {
			t.Errorf("fallback got %v", err)
		}
		return nil
	}))
	if err != nil {
		t.Fatalf("with fallback: %v", err)
	}
	// Inside a call the key's slot is held: the same key is refused, another passes.
	err = policy.ExecuteKey(ctx, []byte("bob"), func(ctx context.Context) error {
		wantRejected(t, policy.ExecuteKey(ctx, []byte("bob"), call), breakwater.ErrBulkheadFull, 0)
		return policy.ExecuteKey(ctx, []byte("carol"), call)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := clock.Advance(time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := breakwater.DoKey(ctx, policy, []byte("alice"), func(context.Context) (string, error) { return "ok", nil })
	if err != nil || got != "ok" {
		t.Fatalf("DoKey: %q, %v", got, err)
	}
	stats := mustStats(t, policy)
	if stats.Permitted != 5 || stats.Success != 5 || stats.RejectedRateLimited != 2 || stats.RejectedBulkheadFull != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

// A failed keyed attempt is retried as a new call of the key: it asks the key's quota
// again, and the third attempt finds it spent.
func TestExecuteKeyRetriesAskTheKeyAgain(t *testing.T) {
	policy, _, _ := keyedPolicy(t, perKey+`
[policies.api.retry]
max_attempts = 3
retry_on = ["failure"]
backoff = { initial = "1ms", multiplier = 1.0, max = "1ms", jitter = "none" }
`)
	attempts := 0
	err := policy.ExecuteKey(context.Background(), []byte("alice"), func(context.Context) error {
		attempts++
		return errDependency
	}, breakwater.WithRetrySeed(1))
	if attempts != 2 || !errors.Is(err, breakwater.ErrRateLimited) {
		t.Fatalf("%d attempts, err %v", attempts, err)
	}
	if stats := mustStats(t, policy); stats.Failure != 2 || stats.Retries != 2 || stats.RejectedRateLimited != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestKeyedCallsWithoutPerKeyIgnoreTheKey(t *testing.T) {
	engine := mustEngine(t, "[policies.api.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "api")
	done, err := policy.AllowKey([]byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	// The policy's bulkhead is shared by every key.
	_, err = policy.AllowKey([]byte("bob"))
	wantRejected(t, err, breakwater.ErrBulkheadFull, 0)
	if err := done(breakwater.Success); err != nil {
		t.Fatal(err)
	}
	if err := policy.ExecuteKey(context.Background(), nil, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestKeyedBadInput(t *testing.T) {
	policy, _, _ := keyedPolicy(t, perKey)
	_, err := policy.AllowKeyPriority([]byte("alice"), breakwater.Priority(42))
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
	done, err := policy.AllowKey([]byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	// An unknown outcome leaves the permit live: the key's slot is still held.
	wantErr(t, done(breakwater.Outcome(9)), breakwater.ErrInvalidArgument, "")
	_, err = policy.AllowKey([]byte("alice"))
	wantRejected(t, err, breakwater.ErrBulkheadFull, 0)
	if err := done(breakwater.Success); err != nil {
		t.Fatal(err)
	}
	wantErr(t, done(breakwater.Success), breakwater.ErrPermitUsed, "")
	err = policy.ExecuteKey(context.Background(), []byte("x"), func(context.Context) error { return nil }, breakwater.WithPriority(breakwater.Priority(-7)))
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantErr(t, policy.ExecuteKey(ctx, []byte("x"), func(context.Context) error { return nil }), context.Canceled, "")
	policy.Close()
	_, err = policy.AllowKey([]byte("alice"))
	wantErr(t, err, breakwater.ErrClosed, "")
	wantErr(t, policy.ExecuteKey(context.Background(), []byte("x"), func(context.Context) error { return nil }), breakwater.ErrClosed, "")
}

// Keys are bytes: keys differing in one byte, or in a byte past a NUL, are different.
func TestKeysAreBytes(t *testing.T) {
	policy, _, _ := keyedPolicy(t, perKey)
	keys := []string{"a\x00b", "a\x00c", "a", "\xff\xfe"}
	for _, key := range keys {
		for range 2 {
			if err := allowKey(t, policy, key); err != nil {
				t.Fatalf("%q: %v", key, err)
			}
		}
	}
	for _, key := range keys {
		wantRejected(t, allowKey(t, policy, key), breakwater.ErrRateLimited, 500*time.Millisecond)
	}
}

// The most-rejected keys appear in the Prometheus text, ranked, at most top_keys of
// them however many keys are rejected.
func TestKeyedHeavyHittersInPrometheus(t *testing.T) {
	policy, _, engine := keyedPolicy(t, perKey)
	topRejections := func() []string {
		t.Helper()
		text, err := engine.Prometheus()
		if err != nil {
			t.Fatal(err)
		}
		var top []string
		for line := range strings.Lines(text) {
			if strings.HasPrefix(line, "breakwater_per_key_top_rejections{") {
				top = append(top, strings.TrimSpace(line))
			}
		}
		return top
	}
	// As many rejected keys as the sketch holds: its counts are exact.
	for i := range 4 {
		for range 2 + i + 1 {
			_ = allowKey(t, policy, fmt.Sprintf("tenant-%d", i))
		}
	}
	want := []string{
		`breakwater_per_key_top_rejections{policy="api",rank="1",key="tenant-3"} 4`,
		`breakwater_per_key_top_rejections{policy="api",rank="2",key="tenant-2"} 3`,
		`breakwater_per_key_top_rejections{policy="api",rank="3",key="tenant-1"} 2`,
		`breakwater_per_key_top_rejections{policy="api",rank="4",key="tenant-0"} 1`,
	}
	if got := topRejections(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("top rejections:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Many more rejected keys: still top_keys series.
	for i := range 32 {
		for range 3 {
			_ = allowKey(t, policy, fmt.Sprintf("other-%d", i))
		}
	}
	if got := topRejections(); len(got) != 4 {
		t.Fatalf("%d series: %q", len(got), got)
	}
}

// 16 goroutines on one policy with a frozen clock: every key admits exactly its burst,
// however the calls interleave, and the counters add up exactly.
func TestKeyedHammer(t *testing.T) {
	policy, _, _ := keyedPolicy(t, `
[policies.api.per_key]
rate = 10
period = "1h"
burst = 10
max_keys = 1024
`)
	const goroutines, keys, rounds = 16, 8, 40
	var admitted [keys]int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := (g + r) % keys
				err := policy.ExecuteKey(context.Background(), []byte{byte(k)}, func(context.Context) error { return nil })
				switch {
				case err == nil:
					mu.Lock()
					admitted[k]++
					mu.Unlock()
				case !errors.Is(err, breakwater.ErrRateLimited):
					t.Errorf("key %d: %v", k, err)
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range admitted {
		if n != 10 {
			t.Errorf("key %d admitted %d calls, want its burst of 10", k, n)
		}
	}
	stats := mustStats(t, policy)
	if stats.Permitted != keys*10 || stats.Success != keys*10 || stats.RejectedRateLimited != goroutines*rounds-keys*10 {
		t.Fatalf("stats %+v", stats)
	}
}

// A listening engine takes the calls that may run the listener: same answers.
func TestKeyedWithListener(t *testing.T) {
	policy, _, engine := keyedPolicy(t, perKey, breakwater.WithEventListener(func(breakwater.Event) {}))
	for range 2 {
		if err := policy.ExecuteKey(context.Background(), []byte("alice"), func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	wantRejected(t, allowKey(t, policy, "alice"), breakwater.ErrRateLimited, 500*time.Millisecond)
	done, err := policy.AllowKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := done(breakwater.Success); err != nil {
		t.Fatal(err)
	}
	if err := engine.FlushEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
}
