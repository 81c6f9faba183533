package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// BulkheadConfig configures a bulkhead: at most MaxConcurrent permits out at once;
// Acquire waits up to MaxWait (default 0: no wait) for one to free.
type BulkheadConfig struct {
	MaxConcurrent uint32
	MaxWait       time.Duration
}

// Bulkhead is a standalone concurrency limit, safe for concurrent use.
type Bulkhead struct {
	ptr     *C.bw_bulkhead
	maxWait time.Duration
	closed  atomic.Bool
}

// NewBulkhead builds a bulkhead (WithClock applies to its waits).
func NewBulkhead(config BulkheadConfig, opts ...Option) (*Bulkhead, error) {
	if errABI != nil {
		return nil, errABI
	}
	o := collect(opts)
	var cfg *C.bw_bulkhead_config
	C.bw_bulkhead_config_new(&cfg)
	defer C.bw_bulkhead_config_free(cfg)
	C.bw_bulkhead_config_set_max_concurrent(cfg, C.uint32_t(config.MaxConcurrent))
	if config.MaxWait < 0 {
		return nil, &Error{Op: "NewBulkhead", Message: "max_wait: must not be negative", kind: ErrInvalidConfig}
	}
	C.bw_bulkhead_config_set_max_wait(cfg, durationNs(config.MaxWait))
	var ptr *C.bw_bulkhead
	if err := withMessage("NewBulkhead", func() C.bw_status { return C.bw_bulkhead_new(cfg, o.clock.cptr(), &ptr) }); err != nil {
		return nil, err
	}
	runtime.KeepAlive(o.clock)
	b := &Bulkhead{ptr: ptr, maxWait: config.MaxWait}
	runtime.AddCleanup(b, func(ptr *C.bw_bulkhead) { C.bw_bulkhead_free(ptr) }, ptr)
	return b, nil
}

// Close marks the bulkhead closed: every later call returns ErrClosed. Idempotent.
func (b *Bulkhead) Close() error {
	b.closed.Store(true)
	return nil
}

// TryAcquire takes a permit if one is free and nobody waits; never blocks. Release it
// exactly once. A full bulkhead is a *RejectedError matching ErrBulkheadFull.
func (b *Bulkhead) TryAcquire() error {
	if b.closed.Load() {
		return ErrClosed
	}
	status := C.bw_bulkhead_try_acquire(b.ptr)
	runtime.KeepAlive(b)
	if status == C.BW_OK {
		return nil
	}
	return bulkheadRejection(status)
}

// waitSlice bounds one blocking wait inside the library, so that Acquire sees ctx end
// within this long.
const waitSlice = 5 * time.Millisecond

// Acquire takes a permit, waiting up to the configured MaxWait for one to free, or
// less if ctx ends first (then it returns ctx's error and holds nothing). Release the
// permit exactly once.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.TryAcquire(); err == nil || b.maxWait == 0 {
		return err
	}
	// The library blocks the thread; it waits in slices so a cancelled ctx is seen soon.
	deadline := time.Now().Add(b.maxWait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return bulkheadRejection(C.BW_BULKHEAD_FULL)
		}
		slice := min(left, waitSlice)
		status := C.bw_bulkhead_acquire(b.ptr, durationNs(slice))
		runtime.KeepAlive(b)
		if status == C.BW_OK {
			if err := ctx.Err(); err != nil {
				b.Release()
				return err
			}
			return nil
		}
		if status != C.BW_BULKHEAD_FULL {
			return statusError("Bulkhead.Acquire", status)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func bulkheadRejection(status C.bw_status) error {
	if status == C.BW_BULKHEAD_FULL {
		return &RejectedError{Reason: ErrBulkheadFull}
	}
	return statusError("Bulkhead.TryAcquire", status)
}

// Release returns one permit (to the longest waiter, if any). Releasing with no permit
// out is ErrPermitUsed and changes nothing.
func (b *Bulkhead) Release() error {
	if b.closed.Load() {
		return ErrClosed
	}
	status := C.bw_bulkhead_release(b.ptr)
	runtime.KeepAlive(b)
	return statusError("Bulkhead.Release", status)
}

// InFlight is how many permits are out now.
func (b *Bulkhead) InFlight() uint32 {
	n := C.bw_bulkhead_in_flight(b.ptr)
	runtime.KeepAlive(b)
	return uint32(n)
}

// Available is how many permits are free now.
func (b *Bulkhead) Available() uint32 {
	n := C.bw_bulkhead_available(b.ptr)
	runtime.KeepAlive(b)
	return uint32(n)
}

// Metrics reads the bulkhead's exact counters (releases count as Ignored completions).
func (b *Bulkhead) Metrics() (Metrics, error) {
	if b.closed.Load() {
		return Metrics{}, ErrClosed
	}
	var m C.bw_metrics
	status := C.bw_bulkhead_get_metrics(b.ptr, &m)
	runtime.KeepAlive(b)
	if status != C.BW_OK {
		return Metrics{}, statusError("Bulkhead.Metrics", status)
	}
	return metricsOf(&m), nil
}
