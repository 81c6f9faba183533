package breakwater_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestEngineLooksUpPolicies(t *testing.T) {
	engine := mustEngine(t, "[policies.payments.bulkhead]\nmax_concurrent = 2\n")
	policy := mustPolicy(t, engine, "payments")
	if policy.Name() != "payments" {
		t.Fatalf("name %q", policy.Name())
	}
	_, err := engine.Policy("nope")
	wantErr(t, err, breakwater.ErrNotFound, "")
}

func TestEngineInvalidConfigNamesTheField(t *testing.T) {
	_, err := breakwater.EngineFromTOML("[policies.p.circuit_breaker]\nfailure_rate_threshold = 150\n")
	wantErr(t, err, breakwater.ErrInvalidConfig, "failure_rate_threshold")
	var typed *breakwater.Error
	if !errors.As(err, &typed) || typed.Op != "EngineFromTOML" {
		t.Fatalf("want a *breakwater.Error from EngineFromTOML, got %#v", err)
	}
	_, err = breakwater.EngineFromTOML("[policies.p\n")
	wantErr(t, err, breakwater.ErrInvalidConfig, "")
}

func TestLoadEngineFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.toml")
	if err := os.WriteFile(path, []byte("[policies.p.rate_limiter]\nrate = 5\nperiod = \"1s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	engine, err := breakwater.LoadEngine(path)
	if err != nil {
		t.Fatalf("LoadEngine: %v", err)
	}
	defer engine.Close()
	mustPolicy(t, engine, "p")
	_, err = breakwater.LoadEngine(filepath.Join(t.TempDir(), "missing.toml"))
	wantErr(t, err, breakwater.ErrIO, "")
	if err := engine.ReloadFile(filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, breakwater.ErrIO) {
		t.Fatalf("ReloadFile of a missing file: %v", err)
	}
}

func TestReloadIsAllOrNothingAndHeldHandlesFollow(t *testing.T) {
	engine := mustEngine(t, "[policies.p]\ntimeout = \"1s\"\n[policies.p.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "p")
	if got := policy.Timeout(); got != time.Second {
		t.Fatalf("timeout %v", got)
	}
	err := engine.Reload("[policies.p.bulkhead]\nmax_concurrent = 0\n")
	wantErr(t, err, breakwater.ErrInvalidConfig, "max_concurrent")
	if got := policy.Timeout(); got != time.Second {
		t.Fatalf("a failed reload changed the timeout to %v", got)
	}
	if err := engine.Reload("[policies.p]\ntimeout = \"2s\"\n[policies.p.bulkhead]\nmax_concurrent = 2\n"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := policy.Timeout(); got != 2*time.Second {
		t.Fatalf("the held handle did not follow the reload: timeout %v", got)
	}
	first, err := policy.Allow()
	if err != nil {
		t.Fatalf("first permit: %v", err)
	}
	second, err := policy.Allow()
	if err != nil {
		t.Fatalf("the reloaded bulkhead of 2 refused a second permit: %v", err)
	}
	first(breakwater.Success)
	second(breakwater.Success)
}

func TestPrometheusAndHealth(t *testing.T) {
	engine := mustEngine(t, "[policies.payments.circuit_breaker]\nminimum_calls = 2\n")
	policy := mustPolicy(t, engine, "payments")
	done, err := policy.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(breakwater.Success)
	text, err := engine.Prometheus()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, `policy="payments"`) {
		t.Fatalf("exposition lacks the policy:\n%s", text)
	}
	health, err := engine.Health()
	if err != nil || health.Status != breakwater.Healthy {
		t.Fatalf("health %+v, %v", health, err)
	}
	if err := policy.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	health, err = engine.Health()
	if err != nil || health.Status == breakwater.Healthy || len(health.Reasons) == 0 || health.Reasons[0].Policy != "payments" {
		t.Fatalf("health after force-open %+v, %v", health, err)
	}
	if !strings.Contains(health.JSON, `"status"`) {
		t.Fatalf("JSON %s", health.JSON)
	}
}

func TestClosedEngineAndPolicyAnswerErrClosed(t *testing.T) {
	engine := mustEngine(t, "[policies.p.bulkhead]\nmax_concurrent = 1\n")
	policy := mustPolicy(t, engine, "p")
	engine.Close()
	engine.Close() // idempotent
	if _, err := engine.Policy("p"); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatalf("Policy after Close: %v", err)
	}
	if err := engine.Reload(""); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	if _, err := engine.Prometheus(); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
	if _, err := engine.Health(); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
	// Policies looked up before keep working.
	done, err := policy.Allow()
	if err != nil {
		t.Fatalf("policy after its engine closed: %v", err)
	}
	done(breakwater.Success)
	policy.Close()
	policy.Close()
	if _, err := policy.Allow(); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
	if err := policy.Execute(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
	if _, err := policy.Stats(); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
	if err := policy.ForceOpen(); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
}

func TestHandlesAreReleasedByCleanups(t *testing.T) {
	// Handles dropped without Close, and closed ones, go back through their cleanups;
	// a listener's goroutine ends with its last handle.
	for i := 0; i < 200; i++ {
		engine, err := breakwater.EngineFromTOML("[policies.p.bulkhead]\nmax_concurrent = 1\n",
			breakwater.WithEventListener(func(breakwater.Event) {}))
		if err != nil {
			t.Fatal(err)
		}
		policy, _ := engine.Policy("p")
		if i%2 == 0 {
			policy.Close()
			engine.Close()
		}
		limiter, _ := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1})
		limiter.Allow()
		clock := breakwater.NewManualClock(time.Second)
		clock.Advance(time.Second)
	}
	runtime.GC()
	runtime.GC()
}
