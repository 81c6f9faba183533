package breakwater_test

import (
	"errors"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

func TestManualClock(t *testing.T) {
	clock := breakwater.NewManualClock(0)
	if clock.Now() != time.Nanosecond {
		t.Fatalf("a start of 0 reads as 1ns (0 means never), got %v", clock.Now())
	}
	if err := clock.Advance(time.Second); err != nil || clock.Now() != time.Second+time.Nanosecond {
		t.Fatalf("%v, %v", clock.Now(), err)
	}
	wantErr(t, clock.Advance(-time.Second), breakwater.ErrInvalidArgument, "negative")
	if err := clock.Set(5 * time.Second); err != nil || clock.Now() != 5*time.Second {
		t.Fatalf("%v, %v", clock.Now(), err)
	}
	clock.Close()
	clock.Close()
	if err := clock.Advance(time.Second); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
	if err := clock.Set(time.Second); !errors.Is(err, breakwater.ErrClosed) {
		t.Fatal(err)
	}
}
