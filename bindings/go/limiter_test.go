package breakwater_test

import (
	"context"
	"errors"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestLimiterAllowReserveCancel(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	limiter, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 2, Period: time.Second, Burst: 2}, breakwater.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer limiter.Close()
	if !limiter.Allow() || !limiter.Allow() || limiter.Allow() {
		t.Fatalf("at %v: a burst of 2 lets exactly 2 through", clock.Now())
	}
	err = limiter.AllowN(1)
	var rejected *breakwater.RejectedError
	if !errors.As(err, &rejected) || !errors.Is(err, breakwater.ErrRateLimited) || rejected.RetryAfter != 500*time.Millisecond {
		t.Fatalf("at %v: %v", clock.Now(), err)
	}
	wantErr(t, limiter.AllowN(3), breakwater.ErrNeverPasses, "")
	reservation, err := limiter.Reserve()
	if err != nil || reservation.Delay() != 500*time.Millisecond {
		t.Fatalf("at %v: reservation %v, %v", clock.Now(), reservation, err)
	}
	if !reservation.Cancel() || reservation.Cancel() {
		t.Fatal("the first Cancel gives the permit back, the second nothing")
	}
	if _, err := limiter.ReserveN(1, 100*time.Millisecond); !errors.Is(err, breakwater.ErrRateLimited) {
		t.Fatalf("a reservation due after max wait: %v", err)
	}
	clock.Advance(500 * time.Millisecond)
	if limiter.Available() != 1 || !limiter.Allow() {
		t.Fatalf("at %v: the cancelled reservation did not give its permit back exactly", clock.Now())
	}
	m, err := limiter.Metrics()
	if err != nil || m.Permitted != 4 || m.Rejected != 3 {
		t.Fatalf("metrics %+v, %v", m, err)
	}
}

func TestLimiterWaitAndContexts(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	limiter, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1, Period: time.Hour}, breakwater.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := limiter.Wait(context.Background()); err != nil {
		t.Fatalf("the first permit is free: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := limiter.Wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Minute)
	defer cancelShort()
	if err := limiter.Wait(short); !errors.Is(err, breakwater.ErrRateLimited) {
		t.Fatalf("a permit due in 1h cannot be had within a 1 min deadline: %v", err)
	}
	// Cancelled during the wait: the permit goes back, so the schedule is unchanged.
	during, cancelDuring := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancelDuring)
	if err := limiter.Wait(during); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	reservation, err := limiter.Reserve()
	if err != nil || reservation.Delay() != time.Hour {
		t.Fatalf("at %v: after the refunds the next permit is due in 1h, got %v (%v)", clock.Now(), reservation.Delay(), err)
	}
}

func TestLimiterBadInputAndClose(t *testing.T) {
	_, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 0})
	wantErr(t, err, breakwater.ErrInvalidConfig, "rate")
	_, err = breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 5, Burst: 0, Period: -time.Second})
	wantErr(t, err, breakwater.ErrInvalidConfig, "period")
	limiter, _ := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 5})
	limiter.Close()
	limiter.Close()
	if limiter.Allow() {
		t.Fatal("Allow after Close")
	}
	wantErr(t, limiter.AllowN(1), breakwater.ErrClosed, "")
	wantErr(t, limiter.Wait(context.Background()), breakwater.ErrClosed, "")
	_, err = limiter.Reserve()
	wantErr(t, err, breakwater.ErrClosed, "")
	_, err = limiter.Metrics()
	wantErr(t, err, breakwater.ErrClosed, "")
}

// A Reservation outliving its limiter's Close answers as Allow does after Close: false,
// nothing given back, no crash; so does a nil one (what a failed Reserve returns).
func TestReservationCancelAfterClose(t *testing.T) {
	clock := breakwater.NewManualClock(time.Second)
	defer clock.Close()
	limiter, err := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 1, Period: time.Hour}, breakwater.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	reservation, err := limiter.Reserve()
	if err != nil || reservation.Delay() != 0 {
		t.Fatalf("reservation %v, %v", reservation, err)
	}
	limiter.Close()
	if reservation.Cancel() {
		t.Fatal("Cancel after Close gave the permit back")
	}
	if reservation.Cancel() {
		t.Fatal("a second Cancel after Close")
	}
	if limiter.Available() != 0 {
		t.Fatalf("the permit went back to the closed limiter: %d available", limiter.Available())
	}
	var none *breakwater.Reservation
	if none.Cancel() {
		t.Fatal("Cancel of a nil Reservation")
	}
}
