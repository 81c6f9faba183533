package breakwater_test

import (
	"context"
	"errors"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestAdmitSaysWhatFaultInjectionDecided(t *testing.T) {
	engine := mustEngine(t, "[policies.c.chaos]\nenabled = true\nfailure_probability = 1.0\nlatency_probability = 1.0\nlatency = \"7ms\"\n")
	policy := mustPolicy(t, engine, "c")
	permit, err := policy.Admit(breakwater.Critical)
	if err != nil {
		t.Fatal(err)
	}
	if !permit.InjectedFailure() || permit.InjectedLatency() != 7*time.Millisecond {
		t.Fatalf("injected failure %v, latency %v; want true, 7ms", permit.InjectedFailure(), permit.InjectedLatency())
	}
	if err := permit.Done(breakwater.Failure); err != nil {
		t.Fatal(err)
	}
	wantErr(t, permit.Done(breakwater.Failure), breakwater.ErrPermitUsed, "")
	stats, _ := policy.Stats()
	if stats.Permitted != 1 || stats.Failure != 1 {
		t.Fatalf("permitted %d, failure %d; want 1, 1", stats.Permitted, stats.Failure)
	}
	_, err = policy.Admit(breakwater.Priority(9))
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
}

func TestRetryRunByHandFollowsThePolicysSchedule(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	engine := mustEngine(t, "[policies.r.retry]\nmax_attempts = 3\nbackoff = { initial = \"100ms\", multiplier = 2.0, max = \"1s\", jitter = \"none\" }\n",
		breakwater.WithClock(clock))
	policy := mustPolicy(t, engine, "r")
	run, err := policy.RetryBegin(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		delay, retry, _, err := run.Next(breakwater.Miss{Outcome: breakwater.Failure}, 0)
		if err != nil || !retry || delay != want {
			t.Fatalf("retry %d: delay %v, retry %v, err %v; want %v", i+1, delay, retry, err, want)
		}
	}
	_, retry, reason, err := run.Next(breakwater.Miss{Outcome: breakwater.Timeout}, 0)
	if err != nil || retry || reason != breakwater.AttemptsExhausted {
		t.Fatalf("third miss: retry %v, reason %v, err %v; want attempts_exhausted", retry, reason, err)
	}
	// retry_on defaults to failures and timeouts: a rejection is not retried.
	rejected, err := policy.RetryBegin(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, retry, reason, _ = rejected.Next(breakwater.Miss{Reason: breakwater.ErrCircuitOpen}, time.Second)
	if retry || reason != breakwater.NotRetryable {
		t.Fatalf("circuit open: retry %v, reason %v; want not_retryable", retry, reason)
	}
	_, _, _, err = run.Next(breakwater.Miss{Reason: errors.New("not a sentinel")}, 0)
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
	run.Close()
	run.Close()
	_, _, _, err = run.Next(breakwater.Miss{Outcome: breakwater.Failure}, 0)
	wantErr(t, err, breakwater.ErrClosed, "")
	if policy.Now() != time.Second {
		t.Fatalf("Now %v, want the manual clock's 1s", policy.Now())
	}

	// A deadline the next delay would reach gives up at once.
	deadlined, err := policy.RetryBegin(1, policy.Now()+50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer deadlined.Close()
	_, retry, reason, _ = deadlined.Next(breakwater.Miss{Outcome: breakwater.Timeout}, 0)
	if retry || reason != breakwater.DeadlineExceeded {
		t.Fatalf("retry %v, reason %v; want deadline_exceeded", retry, reason)
	}

	_, err = mustPolicy(t, mustEngine(t, "[policies.n.bulkhead]\nmax_concurrent = 1\n"), "n").RetryBegin(1, 0)
	wantErr(t, err, breakwater.ErrNoStage, "retry")
}

func TestFlushEventsDeliversEveryEarlierEvent(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	got := make(chan breakwater.Event, 16)
	engine := mustEngine(t, "[policies.b.circuit_breaker]\nminimum_calls = 100\n",
		breakwater.WithClock(clock), breakwater.WithEventListener(func(e breakwater.Event) { got <- e }))
	policy := mustPolicy(t, engine, "b")
	if err := policy.ForceOpen(); err != nil {
		t.Fatal(err)
	}
	if err := engine.FlushEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != breakwater.EventTransition || e.To != breakwater.ForcedOpen || e.At != time.Second {
			t.Fatalf("event %+v; want a transition to forced_open at 1s", e)
		}
	default:
		t.Fatal("FlushEvents returned before the listener had the event")
	}
	plain := mustEngine(t, "[policies.b.circuit_breaker]\n")
	if err := plain.FlushEvents(context.Background()); err != nil {
		t.Fatalf("FlushEvents without a listener: %v", err)
	}
}
