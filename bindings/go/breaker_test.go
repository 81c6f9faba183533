package breakwater_test

import (
	"errors"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestBreakerTripsAndRecovers(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	events := make(collector, 16)
	b, err := breakwater.NewCircuitBreaker(breakwater.CircuitBreakerConfig{
		ConsecutiveFailures: 2, OpenDuration: time.Second, HalfOpenPermits: 1,
	}, breakwater.WithClock(clock), breakwater.WithEventListener(events.listen))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(breakwater.Failure)
	}
	_, err = b.Allow()
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, breakwater.ErrCircuitOpen) || rejected.RetryAfter != time.Second {
		t.Fatalf("at %v: %v", clock.Now(), err)
	}
	clock.Advance(time.Second)
	done, err := b.Allow()
	if err != nil || b.State() != breakwater.HalfOpen {
		t.Fatalf("at %v: probe %v, state %v", clock.Now(), err, b.State())
	}
	done(breakwater.Success)
	wantErr(t, done(breakwater.Success), breakwater.ErrPermitUsed, "")
	want := [][2]breakwater.BreakerState{{breakwater.Closed, breakwater.Open}, {breakwater.Open, breakwater.HalfOpen}, {breakwater.HalfOpen, breakwater.Closed}}
	for _, w := range want {
		if e := events.next(t); e.From != w[0] || e.To != w[1] || e.Policy != "" {
			t.Fatalf("event %+v, want %v -> %v", e, w[0], w[1])
		}
	}
	stats, err := b.Stats()
	if err != nil || stats.State != breakwater.Closed || stats.TransitionsToOpen != 1 {
		t.Fatalf("stats %+v, %v", stats, err)
	}
	m, err := b.Metrics()
	if err != nil || m.Permitted != 3 || m.Rejected != 1 || m.Failure != 2 || m.Success != 1 {
		t.Fatalf("metrics %+v, %v", m, err)
	}
	b.ForceOpen()
	if b.State() != breakwater.ForcedOpen {
		t.Fatal(b.State())
	}
	b.Disable()
	b.Reset()
	if b.State() != breakwater.Closed {
		t.Fatal(b.State())
	}
	b.Close()
	_, err = b.Allow()
	wantErr(t, err, breakwater.ErrClosed, "")
	wantErr(t, b.ForceOpen(), breakwater.ErrClosed, "")
}

func TestBreakerInvalidConfigNamesTheField(t *testing.T) {
	_, err := breakwater.NewCircuitBreaker(breakwater.CircuitBreakerConfig{FailureRateThreshold: 150})
	wantErr(t, err, breakwater.ErrInvalidConfig, "failure_rate_threshold")
	_, err = breakwater.NewCircuitBreaker(breakwater.CircuitBreakerConfig{WindowSize: 10_000})
	wantErr(t, err, breakwater.ErrInvalidConfig, "window")
}
