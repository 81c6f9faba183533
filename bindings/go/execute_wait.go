package breakwater

/*
#include <stdlib.h>
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"math"
	"runtime"
	"time"
	"unsafe"
)

// A policy whose bulkhead has a max_wait: the library's acquire would block the thread
// for the whole wait, deaf to ctx. Execute (ExecuteKey, Do, DoKey) asks through
// bw_policy_acquire_within instead: first without waiting, and when the bulkhead is
// full, in slices of at most waitSlice with ctx looked at between them, as
// Bulkhead.Acquire waits. A refusal while waiting is not counted; the call is counted
// once — its permit, its other rejection, or, when max_wait has passed, one last ask
// that counts a full bulkhead. A call whose ctx ends during the wait holds nothing and
// is not counted (as a cancelled Rust future). Waiters are not served in arrival order
// as the library's own waiters are: each slice queues anew, and asks every stage anew
// (as the tower layer's waiters do), so the breaker and the rate limiter are asked once
// per slice and give back what the full bulkhead's refusal unwinds (a limiter token
// exactly, unless a call was admitted after it; see RateLimiter's Reservation.Cancel).

// acquireCancellable is attempt's acquire on a policy whose bulkhead waits. On BW_OK
// *out holds the permit (its key's slot when o.keyed); a non-nil error is ctx's, with
// nothing held and nothing counted.
func (p *Policy) acquireCancellable(ctx context.Context, o *callOptions, trace *TraceContext, out *C.bw_keyed_permit) (C.bw_status, C.uint64_t, error) {
	status, retryAfter, maxWait := p.acquireWithin(o, trace, 0, false, out)
	if status != C.BW_BULKHEAD_FULL || maxWait == 0 {
		return status, retryAfter, nil
	}
	return p.waitBulkhead(ctx, o, trace, nsDuration(maxWait), out)
}

// waitBulkhead is acquireCancellable's wait, after a first refusal by the full
// bulkhead. As the library's own wait, it gives up when either the real max_wait has
// passed or the policy's clock (a manual one in tests) has reached its end.
//
//go:noinline
func (p *Policy) waitBulkhead(ctx context.Context, o *callOptions, trace *TraceContext, maxWait time.Duration, out *C.bw_keyed_permit) (C.bw_status, C.uint64_t, error) {
	deadline := time.Now().Add(maxWait)
	start := p.now()
	clockDeadline := start + durationNs(maxWait)
	if clockDeadline < start {
		clockDeadline = math.MaxUint64
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		left := time.Until(deadline)
		last := left <= 0 || p.now() >= clockDeadline
		var slice time.Duration
		if !last {
			slice = min(left, waitSlice)
			if d, ok := ctx.Deadline(); ok {
				// No slice past ctx's deadline: the wait ends with it.
				if slice = min(slice, time.Until(d)); slice <= 0 {
					return 0, 0, context.DeadlineExceeded
				}
			}
		}
		status, retryAfter, stillFull := p.acquireWithin(o, trace, slice, last, out)
		if status == C.BW_OK && ctx.Err() != nil {
			// Admitted during the slice in which ctx ended: the call is not made.
			p.completePermit(out, o.keyed, Ignored, trace)
			return 0, 0, ctx.Err()
		}
		if status != C.BW_BULKHEAD_FULL || stillFull == 0 {
			return status, retryAfter, nil
		}
	}
}

// now reads the policy's clock.
func (p *Policy) now() C.uint64_t {
	now := C.bw_policy_now(p.ptr)
	runtime.KeepAlive(p)
	return now
}

// acquireWithin is one bw_policy_acquire_within: the permit goes to *out, and maxWait
// is the bulkhead's max_wait when it refused without counting. For engines without a
// listener the key, the trace and out stay where they are (see cgo.go); with one they
// go through a scratch and the key through C memory (see acquireKeyedListening).
func (p *Policy) acquireWithin(o *callOptions, trace *TraceContext, wait time.Duration, last bool, out *C.bw_keyed_permit) (status C.bw_status, retryAfter, maxWait C.uint64_t) {
	if p.shared.listening {
		return p.acquireWithinListening(o, trace, wait, last, out)
	}
	var key *C.uint8_t
	if o.keyed {
		key = keyBytes(o.key)
	}
	var ct C.bw_trace_context
	var traceArg *C.bw_trace_context
	if trace != nil {
		ct = trace.c()
		traceArg = &ct
	}
	C.bwgo_policy_acquire_within_quiet(handle(unsafe.Pointer(p.ptr)), key, C.size_t(len(o.key)), C.bool(o.keyed), C.int32_t(o.priority), traceArg, durationNs(wait), C.bool(last), out, &retryAfter, &maxWait, &status)
	runtime.KeepAlive(p)
	return status, retryAfter, maxWait
}

//go:noinline
func (p *Policy) acquireWithinListening(o *callOptions, trace *TraceContext, wait time.Duration, last bool, out *C.bw_keyed_permit) (C.bw_status, C.uint64_t, C.uint64_t) {
	var key *C.uint8_t
	if o.keyed && len(o.key) > 0 {
		key = (*C.uint8_t)(C.CBytes(o.key))
		defer C.free(unsafe.Pointer(key))
	}
	s := getScratch()
	var traceArg *C.bw_trace_context
	if trace != nil {
		s.trace = trace.c()
		traceArg = &s.trace
	}
	status := C.bw_policy_acquire_within(p.ptr, key, C.size_t(len(o.key)), C.bool(o.keyed), C.int32_t(o.priority), traceArg, durationNs(wait), C.bool(last), &s.permit, &s.retryAfter, &s.maxWait)
	runtime.KeepAlive(p)
	if status == C.BW_OK {
		*out = s.permit
	}
	retryAfter, maxWait := s.retryAfter, s.maxWait
	putScratch(s)
	return status, retryAfter, maxWait
}
