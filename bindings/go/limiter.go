package breakwater

/*
#include <stdint.h>
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// RateLimiterConfig configures a rate limiter: Rate permits per Period (default 1 s),
// with bursts of up to Burst permits after an idle spell (default Rate). GCRA, one
// atomic word: Allow never blocks and never allocates.
type RateLimiterConfig struct {
	Rate   uint64
	Period time.Duration
	Burst  uint64
}

// RateLimiter is a standalone rate limiter, safe for concurrent use.
type RateLimiter struct {
	ptr    *C.bw_limiter
	closed atomic.Bool
}

// NewRateLimiter builds a limiter with a full bucket (WithClock applies).
func NewRateLimiter(config RateLimiterConfig, opts ...Option) (*RateLimiter, error) {
	if errABI != nil {
		return nil, errABI
	}
	o := collect(opts)
	period := config.Period
	if period == 0 {
		period = time.Second
	}
	var cfg *C.bw_limiter_config
	C.bw_limiter_config_new(&cfg)
	defer C.bw_limiter_config_free(cfg)
	C.bw_limiter_config_set_rate(cfg, C.uint64_t(config.Rate), durationNs(period))
	if config.Burst > 0 {
		C.bw_limiter_config_set_burst(cfg, C.uint64_t(config.Burst))
	}
	var ptr *C.bw_limiter
	if err := withMessage("NewRateLimiter", func() C.bw_status { return C.bw_limiter_new(cfg, o.clock.cptr(), &ptr) }); err != nil {
		return nil, err
	}
	runtime.KeepAlive(o.clock)
	l := &RateLimiter{ptr: ptr}
	runtime.AddCleanup(l, func(ptr *C.bw_limiter) { C.bw_limiter_free(ptr) }, ptr)
	return l, nil
}

// Close marks the limiter closed: Allow and its reservations' Cancel then answer
// false, the other methods ErrClosed. Idempotent; the library's reference is dropped
// once it is unreachable.
func (l *RateLimiter) Close() error {
	l.closed.Store(true)
	return nil
}

// Allow takes one permit if one is free now. Never blocks, never allocates.
func (l *RateLimiter) Allow() bool {
	if l.closed.Load() {
		return false
	}
	var status C.bw_status
	C.bwgo_limiter_allow(handle(unsafe.Pointer(l.ptr)), &status)
	runtime.KeepAlive(l)
	return status == C.BW_OK
}

// AllowN takes n permits at once or none: a *RejectedError (ErrRateLimited) carries
// the exact wait after which the same request would pass; n above the burst is
// ErrNeverPasses.
func (l *RateLimiter) AllowN(n uint64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	var retryAfter C.uint64_t
	status := C.bwgo_limiter_try_acquire(handle(unsafe.Pointer(l.ptr)), C.uint64_t(n), &retryAfter)
	runtime.KeepAlive(l)
	switch status {
	case C.BW_OK:
		return nil
	case C.BW_RATE_LIMITED:
		return &RejectedError{Reason: ErrRateLimited, RetryAfter: time.Duration(retryAfter)}
	}
	return statusError("RateLimiter.AllowN", status)
}

// Reservation is permits committed for the future: go ahead after Delay, or give them
// back with Cancel.
type Reservation struct {
	limiter *RateLimiter
	r       C.bw_reservation
	delay   time.Duration
}

// Delay is how long to wait before going ahead, as of the reservation.
func (r *Reservation) Delay() time.Duration { return r.delay }

// Cancel gives the permits back if nothing was admitted after them, so the schedule is
// as if they had never been taken; it reports whether they went back. A second Cancel
// returns false, and so does a Cancel after the limiter's Close (nothing goes back to
// a closed limiter) or on a nil Reservation.
func (r *Reservation) Cancel() bool {
	if r == nil || r.limiter.closed.Load() {
		return false
	}
	var cancelled C.bool
	status := C.bw_limiter_cancel(r.limiter.ptr, &r.r, &cancelled)
	runtime.KeepAlive(r)
	return status == C.BW_OK && bool(cancelled)
}

// Reserve commits one permit, however far ahead it falls due.
func (l *RateLimiter) Reserve() (*Reservation, error) {
	return l.ReserveN(1, time.Duration(math.MaxInt64))
}

// ReserveN commits n permits that fall due within maxWait; later than that it commits
// nothing and answers a *RejectedError (ErrRateLimited) saying when it would pass.
func (l *RateLimiter) ReserveN(n uint64, maxWait time.Duration) (*Reservation, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	res := &Reservation{limiter: l}
	var retryAfter C.uint64_t
	status := C.bw_limiter_reserve(l.ptr, C.uint64_t(n), durationNs(maxWait), &res.r, &retryAfter)
	runtime.KeepAlive(l)
	switch status {
	case C.BW_OK:
		res.delay = time.Duration(res.r.wait_ns)
		return res, nil
	case C.BW_RATE_LIMITED:
		return nil, &RejectedError{Reason: ErrRateLimited, RetryAfter: time.Duration(retryAfter)}
	}
	return nil, statusError("RateLimiter.ReserveN", status)
}

// Wait blocks until one permit is due or ctx ends.
func (l *RateLimiter) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN blocks until n permits are due or ctx ends. A context that has already ended
// takes nothing; one whose deadline comes before the permits are due takes nothing
// either and returns a *RejectedError (ErrRateLimited) at once; one that ends during the
// wait gives the permits back (Cancel) and returns ctx's error.
func (l *RateLimiter) WaitN(ctx context.Context, n uint64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	maxWait := C.uint64_t(math.MaxUint64)
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		maxWait = C.uint64_t(left)
	}
	var res C.bw_reservation
	var retryAfter C.uint64_t
	status := C.bw_limiter_reserve(l.ptr, C.uint64_t(n), maxWait, &res, &retryAfter)
	runtime.KeepAlive(l)
	switch status {
	case C.BW_OK:
	case C.BW_RATE_LIMITED:
		return &RejectedError{Reason: ErrRateLimited, RetryAfter: time.Duration(retryAfter)}
	default:
		return statusError("RateLimiter.WaitN", status)
	}
	if res.wait_ns == 0 {
		return nil
	}
	if err := sleep(ctx, time.Duration(res.wait_ns)); err != nil {
		C.bw_limiter_cancel(l.ptr, &res, nil)
		runtime.KeepAlive(l)
		return err
	}
	return nil
}

// Available is how many permits would pass now.
func (l *RateLimiter) Available() uint64 {
	n := C.bw_limiter_available(l.ptr)
	runtime.KeepAlive(l)
	return uint64(n)
}

// Metrics reads the limiter's exact counters (a limiter has no completions).
func (l *RateLimiter) Metrics() (Metrics, error) {
	if l.closed.Load() {
		return Metrics{}, ErrClosed
	}
	var m C.bw_metrics
	status := C.bw_limiter_get_metrics(l.ptr, &m)
	runtime.KeepAlive(l)
	if status != C.BW_OK {
		return Metrics{}, statusError("RateLimiter.Metrics", status)
	}
	return metricsOf(&m), nil
}
