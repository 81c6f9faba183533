package breakwater_test

import (
	"context"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

// collect gathers events; next waits for one (the listener runs on its own goroutine).
type collector chan breakwater.Event

func (c collector) listen(e breakwater.Event) { c <- e }

func (c collector) next(t *testing.T) breakwater.Event {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event arrived")
		return breakwater.Event{}
	}
}

func TestEngineEventsReachTheListener(t *testing.T) {
	events := make(collector, 64)
	engine := mustEngine(t, "[policies.payments.circuit_breaker]\nminimum_calls = 2\n",
		breakwater.WithEventListener(events.listen))
	policy := mustPolicy(t, engine, "payments")
	if err := policy.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	e := events.next(t)
	if e.Kind != breakwater.EventTransition || e.Policy != "payments" || e.From != breakwater.Closed || e.To != breakwater.ForcedOpen {
		t.Fatalf("transition event %+v", e)
	}
	_, err := policy.Allow()
	wantErr(t, err, breakwater.ErrCircuitOpen, "payments")
	if err := policy.Reset(); err != nil {
		t.Fatal(err)
	}
	if e = events.next(t); e.From != breakwater.ForcedOpen || e.To != breakwater.Closed {
		t.Fatalf("reset event %+v", e)
	}
	if err := engine.Reload("[policies.payments.circuit_breaker]\nminimum_calls = 2\n[policies.other.bulkhead]\nmax_concurrent = 1\n"); err != nil {
		t.Fatal(err)
	}
	for {
		e = events.next(t)
		if e.Kind == breakwater.EventReload {
			break
		}
	}
	if e.Added != 1 || e.Kind.String() != "reload" {
		t.Fatalf("reload event %+v", e)
	}
	if engine.DroppedEvents() != 0 {
		t.Fatalf("dropped %d", engine.DroppedEvents())
	}
}

func TestASlowListenerNeverBlocksTheCaller(t *testing.T) {
	release := make(chan struct{})
	engine := mustEngine(t, "[policies.p.circuit_breaker]\nminimum_calls = 2\n",
		breakwater.WithEventListener(func(breakwater.Event) { <-release }), breakwater.WithEventBuffer(1))
	defer close(release)
	policy := mustPolicy(t, engine, "p")
	// The listener is stuck on the first event and the buffer holds one: the rest are
	// dropped, and every call still returns.
	for i := 0; i < 10; i++ {
		if err := policy.ForceOpen(); err != nil {
			t.Fatal(err)
		}
		if err := policy.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	if engine.DroppedEvents() == 0 {
		t.Fatal("no event was dropped although the listener never returned")
	}
}

// On an engine with a listener, Execute's acquire and complete run the listener from
// inside the library (here: the failure that trips the breaker, and the probe that
// half-opens it), which the callback-free fast path must never see.
func TestListeningEngineDeliversEventsFromExecute(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	events := make(collector, 16)
	engine := mustEngine(t, "[policies.p.circuit_breaker]\nconsecutive_failures = 1\nopen_duration = \"1s\"\nhalf_open_permits = 1\n",
		breakwater.WithClock(clock), breakwater.WithEventListener(events.listen))
	policy := mustPolicy(t, engine, "p")
	ctx := context.Background()
	wantErr(t, policy.Execute(ctx, func(context.Context) error { return errDependency }), errDependency, "")
	if e := events.next(t); e.From != breakwater.Closed || e.To != breakwater.Open || e.Policy != "p" {
		t.Fatalf("at %v: %+v", clock.Now(), e)
	}
	clock.Advance(time.Second)
	done, err := policy.Allow()
	if err != nil {
		t.Fatalf("at %v: %v", clock.Now(), err)
	}
	if e := events.next(t); e.To != breakwater.HalfOpen {
		t.Fatalf("at %v: %+v", clock.Now(), e)
	}
	if err := done(breakwater.Success); err != nil {
		t.Fatal(err)
	}
	if e := events.next(t); e.To != breakwater.Closed {
		t.Fatalf("at %v: %+v", clock.Now(), e)
	}
}
