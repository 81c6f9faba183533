package breakwater_test

import (
	"context"
	"errors"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestRetryExecute(t *testing.T) {
	r, err := breakwater.NewRetry(breakwater.RetryConfig{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, NoJitter: true}, breakwater.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	attempts := 0
	err = r.Execute(context.Background(), func(context.Context) error {
		attempts++
		if attempts < 3 {
			return errDependency
		}
		return nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("%v after %d", err, attempts)
	}
	attempts = 0
	err = r.Execute(context.Background(), func(context.Context) error { attempts++; return errDependency })
	if !errors.Is(err, errDependency) || attempts != 3 {
		t.Fatalf("%v after %d", err, attempts)
	}
	permanent := errors.New("permanent")
	r2, _ := breakwater.NewRetry(breakwater.RetryConfig{RetryIf: func(err error) bool { return !errors.Is(err, permanent) }})
	attempts = 0
	if err := r2.Execute(context.Background(), func(context.Context) error { attempts++; return permanent }); !errors.Is(err, permanent) || attempts != 1 {
		t.Fatalf("%v after %d", err, attempts)
	}
}

func TestRetryContextAndBudget(t *testing.T) {
	r, err := breakwater.NewRetry(breakwater.RetryConfig{MaxAttempts: 5, InitialBackoff: time.Hour, MaxBackoff: time.Hour, NoJitter: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = r.Execute(ctx, func(context.Context) error { time.AfterFunc(10*time.Millisecond, cancel); return errDependency })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errDependency) {
		t.Fatal(err)
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), time.Minute)
	defer cancelDeadline()
	attempts := 0
	err = r.Execute(deadline, func(context.Context) error { attempts++; return errDependency })
	if !errors.Is(err, errDependency) || attempts != 1 {
		t.Fatalf("no retry may start past the deadline: %v after %d", err, attempts)
	}
	budgeted, err := breakwater.NewRetry(breakwater.RetryConfig{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Budget: &breakwater.RetryBudgetConfig{Ratio: 0, MinPerSecond: 1, Window: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	err = budgeted.Execute(context.Background(), func(context.Context) error { return errDependency })
	if !errors.Is(err, breakwater.ErrRetryBudgetExhausted) || !errors.Is(err, errDependency) {
		t.Fatalf("want a budget refusal with the last error: %v", err)
	}
	if s := budgeted.Budget(); s.Requests != 1 {
		t.Fatalf("budget %+v", s)
	}
}

func TestRetryInvalidConfig(t *testing.T) {
	_, err := breakwater.NewRetry(breakwater.RetryConfig{Multiplier: 0.5})
	wantErr(t, err, breakwater.ErrInvalidConfig, "multiplier")
	_, err = breakwater.NewRetry(breakwater.RetryConfig{Jitter: breakwater.Jitter(9)})
	wantErr(t, err, breakwater.ErrInvalidArgument, "")
	_, err = breakwater.NewRetry(breakwater.RetryConfig{Budget: &breakwater.RetryBudgetConfig{Ratio: -1}})
	wantErr(t, err, breakwater.ErrInvalidConfig, "ratio")
}
