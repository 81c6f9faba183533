package breakwater_test

import (
	"context"
	"errors"
	"testing"

	breakwater "breakwater.example/go"
)

// Execute's plain path (a policy without retries and timeout) gives the general path's
// answers: each case runs three times, so the later runs take the plain path once the
// first has read the settings.
func TestExecutePlainPathOutcomes(t *testing.T) {
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 4\n[policies.p.chaos]\nenabled = false\nfailure_probability = 1.0\n")
	policy := mustPolicy(t, engine, "p")
	ctx := context.Background()
	for range 3 {
		if err := policy.Execute(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := policy.Execute(ctx, func(context.Context) error { return errDependency }); err != errDependency {
			t.Fatalf("got %v, want the call's own error", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		err := policy.Execute(cancelled, func(ctx context.Context) error { cancel(); return ctx.Err() })
		wantErr(t, err, context.Canceled, "")
		wantErr(t, policy.Execute(cancelled, func(context.Context) error { t.Fatal("called"); return nil }), context.Canceled, "")
	}
	if err := policy.SetChaos(true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		wantErr(t, policy.Execute(ctx, func(context.Context) error { t.Fatal("called despite the injected fault"); return nil }), breakwater.ErrInjectedFault, "")
	}
	stats := mustStats(t, policy)
	if stats.Success != 3 || stats.Failure != 6 || stats.Ignored != 3 || stats.Permitted != 12 || stats.BulkheadInFlight != 0 {
		t.Fatalf("stats %+v", stats)
	}
}

// A reload that gives the policy a timeout ends the plain path: the next call runs
// under a context with the timeout's deadline (and one that removes it, back).
func TestExecutePlainPathFollowsReloads(t *testing.T) {
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 4\n")
	policy := mustPolicy(t, engine, "p")
	hasDeadline := func() bool {
		var ok bool
		if err := policy.Execute(context.Background(), func(ctx context.Context) error { _, ok = ctx.Deadline(); return nil }); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if hasDeadline() || hasDeadline() {
		t.Fatal("a deadline without a timeout")
	}
	if err := engine.Reload("[policies.p]\ntimeout = \"1h\"\n[policies.p.bulkhead]\nmax_concurrent = 4\n"); err != nil {
		t.Fatal(err)
	}
	if !hasDeadline() || !hasDeadline() {
		t.Fatal("the reloaded timeout was not applied")
	}
	if err := engine.Reload("[policies.p.bulkhead]\nmax_concurrent = 4\n"); err != nil {
		t.Fatal(err)
	}
	if hasDeadline() || hasDeadline() {
		t.Fatal("the removed timeout still applies")
	}
}

// Installed telemetry hooks see the plain policy's rejections (the plain path steps
// aside for them).
func TestExecutePlainPathLeavesHooksTheirCalls(t *testing.T) {
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "p")
	var rejections int
	breakwater.SetTelemetryHooks(&breakwater.TelemetryHooks{OnRejection: func(context.Context, *breakwater.RejectedError) { rejections++ }})
	defer breakwater.SetTelemetryHooks(nil)
	for range 3 {
		err := policy.Execute(context.Background(), func(ctx context.Context) error {
			return policy.Execute(ctx, func(context.Context) error { return nil })
		})
		if !errors.Is(err, breakwater.ErrBulkheadFull) {
			t.Fatalf("got %v", err)
		}
	}
	if rejections != 3 {
		t.Fatalf("%d rejections seen by the hook, want 3", rejections)
	}
}

func TestPolicyNames(t *testing.T) {
	engine := mustEngine(t, "[policies.b]\n[policies.a]\n")
	names, err := engine.PolicyNames()
	if err != nil || len(names) != 2 || names[0] != "b" || names[1] != "a" {
		t.Fatalf("%q, %v", names, err)
	}
	if err := engine.Reload("[policies.c]\n"); err != nil {
		t.Fatal(err)
	}
	if names, err := engine.PolicyNames(); err != nil || len(names) != 1 || names[0] != "c" {
		t.Fatalf("after reload: %q, %v", names, err)
	}
	engine.Close()
	_, err = engine.PolicyNames()
	wantErr(t, err, breakwater.ErrClosed, "")
}
