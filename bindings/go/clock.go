package breakwater

/*
#include "breakwater.h"
*/
import "C"

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// ManualClock is a clock that moves only when told to, for tests: an engine or handle
// built WithClock reads it instead of the system's monotonic clock, so breaker open
// durations, limiter refills and retry schedules can be stepped through exactly.
// One clock may drive many handles; it is safe for concurrent use.
type ManualClock struct {
	ptr    *C.bw_clock
	closed atomic.Bool
}

// NewManualClock returns a clock reading start (a start of 0 reads as 1ns: the library
// keeps 0 for "never").
func NewManualClock(start time.Duration) *ManualClock {
	var ptr *C.bw_clock
	// Cannot fail: the only error is a NULL out-pointer.
	C.bw_clock_new_manual(durationNs(start), &ptr)
	c := &ManualClock{ptr: ptr}
	runtime.AddCleanup(c, func(ptr *C.bw_clock) { C.bw_clock_free(ptr) }, ptr)
	return c
}

// Now is the clock's reading.
func (c *ManualClock) Now() time.Duration {
	now := C.bw_clock_now(c.ptr)
	runtime.KeepAlive(c)
	return time.Duration(now)
}

// Advance moves the clock forward by d (negative values are refused with
// ErrInvalidArgument).
func (c *ManualClock) Advance(d time.Duration) error {
	if d < 0 {
		return &Error{Op: "ManualClock.Advance", Message: "negative duration " + d.String(), kind: ErrInvalidArgument}
	}
	if c.closed.Load() {
		return ErrClosed
	}
	C.bw_clock_advance(c.ptr, C.uint64_t(d))
	runtime.KeepAlive(c)
	return nil
}

// Set sets the clock to now; an earlier time models a misbehaving clock, which every
// policy tolerates.
func (c *ManualClock) Set(now time.Duration) error {
	if c.closed.Load() {
		return ErrClosed
	}
	C.bw_clock_set(c.ptr, durationNs(now))
	runtime.KeepAlive(c)
	return nil
}

// Close marks the clock closed; handles built with it keep their own reference.
// Idempotent.
func (c *ManualClock) Close() error {
	c.closed.Store(true)
	return nil
}

// cptr is the clock to pass to a constructor; nil means the system clock.
func (c *ManualClock) cptr() *C.bw_clock {
	if c == nil {
		return nil
	}
	return c.ptr
}

// durationNs converts a non-negative duration to nanoseconds (negative reads as 0).
func durationNs(d time.Duration) C.uint64_t {
	if d < 0 {
		return 0
	}
	return C.uint64_t(d)
}

// nsDuration converts nanoseconds from the library to a duration, saturating at the
// longest one (a max_wait may be up to 2^64 ns, past time.Duration's 292 years).
func nsDuration(ns C.uint64_t) time.Duration {
	return time.Duration(min(ns, C.uint64_t(math.MaxInt64)))
}
