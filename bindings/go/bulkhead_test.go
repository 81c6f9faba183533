package breakwater_test

import (
	"context"
	"errors"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestBulkheadTryAcquireRelease(t *testing.T) {
	b, err := breakwater.NewBulkhead(breakwater.BulkheadConfig{MaxConcurrent: 2})
	if err != nil {
		t.Fatal(err)
	}
	if b.TryAcquire() != nil || b.TryAcquire() != nil {
		t.Fatal("two permits of two")
	}
	wantErr(t, b.TryAcquire(), breakwater.ErrBulkheadFull, "")
	wantErr(t, b.Acquire(context.Background()), breakwater.ErrBulkheadFull, "") // MaxWait 0
	if b.InFlight() != 2 || b.Available() != 0 {
		t.Fatalf("in flight %d, available %d", b.InFlight(), b.Available())
	}
	b.Release()
	b.Release()
	wantErr(t, b.Release(), breakwater.ErrPermitUsed, "")
	m, err := b.Metrics()
	if err != nil || m.Permitted != 2 || m.Rejected != 2 || m.Ignored != 2 {
		t.Fatalf("metrics %+v, %v", m, err)
	}
	_, err = breakwater.NewBulkhead(breakwater.BulkheadConfig{MaxConcurrent: 0})
	wantErr(t, err, breakwater.ErrInvalidConfig, "max_concurrent")
	b.Close()
	wantErr(t, b.TryAcquire(), breakwater.ErrClosed, "")
	wantErr(t, b.Acquire(context.Background()), breakwater.ErrClosed, "")
	wantErr(t, b.Release(), breakwater.ErrClosed, "")
}

func TestBulkheadAcquireWaits(t *testing.T) {
	b, err := breakwater.NewBulkhead(breakwater.BulkheadConfig{MaxConcurrent: 1, MaxWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(10*time.Millisecond, func() { b.Release() })
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatalf("the released permit should reach the waiter: %v", err)
	}
	// Cancelled during the wait: nothing held afterwards.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if b.InFlight() != 1 {
		t.Fatalf("in flight %d", b.InFlight())
	}
	short, err := breakwater.NewBulkhead(breakwater.BulkheadConfig{MaxConcurrent: 1, MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	short.TryAcquire()
	wantErr(t, short.Acquire(context.Background()), breakwater.ErrBulkheadFull, "")
}
