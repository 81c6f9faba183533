package breakwater

/*
#include <stdlib.h>
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// Per-key limits: a policy's per_key section gives every key (a client, an API key, a
// tenant: any bytes, the empty key included) its own rate and concurrency limit, asked
// before every other stage of the policy, in memory fixed by max_keys. A key's own
// refusals are the usual rejections: ErrRateLimited (its quota, with RetryAfter),
// ErrBulkheadFull (its max_concurrent) and ErrLoadShed (the table's bucket for the key
// is full of keys holding permits). On a policy without a per_key section the key is
// not looked at: the keyed calls behave as the unkeyed ones.
//
// Trace context is as for the unkeyed calls: ExecuteKey and DoKey attach the one the
// telemetry hooks find in ctx (SetTelemetryHooks) to each attempt's acquire and
// completion, so a trip or a load shed a keyed call causes carries its trace; AllowKey,
// like Allow, has no ctx and is untraced.

// AllowKey is Allow for a call on behalf of key.
//
//	done, err := policy.AllowKey([]byte(tenant))
//	if err != nil {
//		return err // errors.Is(err, breakwater.ErrRateLimited): this tenant's quota
//	}
//	done(breakwater.OutcomeOf(call()))
func (p *Policy) AllowKey(key []byte) (Done, error) { return p.AllowKeyPriority(key, Default) }

// AllowKeyPriority is AllowKey at a priority.
func (p *Policy) AllowKeyPriority(key []byte, priority Priority) (Done, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	box := &policyPermit{policy: p, keyed: true}
	status, retryAfter := p.acquireKeyed(key, priority, nil, &box.permit)
	if status != C.BW_OK {
		return nil, p.rejection("Policy.AllowKey", status, retryAfter)
	}
	return holdPermit(box), nil
}

// ExecuteKey is Execute for a call on behalf of key: every attempt asks the key's
// limits first (a retry is a new call of the key).
func (p *Policy) ExecuteKey(ctx context.Context, key []byte, fn func(context.Context) error, opts ...CallOption) error {
	if len(opts) == 0 {
		if s := p.plain(); s != nil {
			return p.executePlain(ctx, fn, key, true, s)
		}
	}
	o := callOptions{priority: Default}
	if len(opts) > 0 {
		o = applyCallOptions(opts)
	}
	o.key, o.keyed = key, true
	return p.executeWithFallback(ctx, fn, &o)
}

// DoKey is Do for a call on behalf of key.
func DoKey[T any](ctx context.Context, p *Policy, key []byte, fn func(context.Context) (T, error), opts ...CallOption) (T, error) {
	o := callOptions{priority: Default}
	if len(opts) > 0 {
		o = applyCallOptions(opts)
	}
	o.key, o.keyed = key, true
	return do(ctx, p, fn, &o)
}

// keyBytes is the key as the C calls take it (NULL for the empty key).
func keyBytes(key []byte) *C.uint8_t {
	if len(key) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(key)))
}

// acquireKeyed asks the key's limits and then every stage for a permit, written to out,
// with the trace context when trace is not nil (as acquireTraced). For engines without a
// listener the key, the trace and out stay where they are (see cgo.go).
func (p *Policy) acquireKeyed(key []byte, priority Priority, trace *TraceContext, out *C.bw_keyed_permit) (status C.bw_status, retryAfter C.uint64_t) {
	if p.shared.listening {
		return p.acquireKeyedListening(key, priority, trace, out)
	}
	if trace != nil {
		ct := trace.c()
		C.bwgo_policy_acquire_keyed_traced_quiet(handle(unsafe.Pointer(p.ptr)), keyBytes(key), C.size_t(len(key)), C.int32_t(priority), &ct, out, &retryAfter, &status)
	} else {
		C.bwgo_policy_acquire_keyed_quiet(handle(unsafe.Pointer(p.ptr)), keyBytes(key), C.size_t(len(key)), C.int32_t(priority), out, &retryAfter, &status)
	}
	runtime.KeepAlive(p)
	return status, retryAfter
}

// acquireKeyedListening is acquireKeyed through the calls that may run the Go listener,
// whose Go code may move this goroutine's stack: the key is copied to C memory and the
// trace and permit go through a scratch (scratch.go), so the caller's stay on its stack.
//
//go:noinline
func (p *Policy) acquireKeyedListening(key []byte, priority Priority, trace *TraceContext, out *C.bw_keyed_permit) (C.bw_status, C.uint64_t) {
	var ckey *C.uint8_t
	if len(key) > 0 {
		ckey = (*C.uint8_t)(C.CBytes(key))
		defer C.free(unsafe.Pointer(ckey))
	}
	s := getScratch()
	var status C.bw_status
	if trace != nil {
		s.trace = trace.c()
		status = C.bw_policy_acquire_keyed_traced(p.ptr, ckey, C.size_t(len(key)), C.int32_t(priority), &s.trace, &s.permit, &s.retryAfter)
	} else {
		status = C.bw_policy_acquire_keyed(p.ptr, ckey, C.size_t(len(key)), C.int32_t(priority), &s.permit, &s.retryAfter)
	}
	runtime.KeepAlive(p)
	if status == C.BW_OK {
		*out = s.permit
	}
	retryAfter := s.retryAfter
	putScratch(s)
	return status, retryAfter
}

// completeKeyed reports a keyed permit's outcome and gives back the key's slot, with
// the trace context when trace is not nil (as completeTraced).
func (p *Policy) completeKeyed(permit *C.bw_keyed_permit, outcome Outcome, trace *TraceContext) C.bw_status {
	if p.shared.listening {
		return p.completeKeyedListening(permit, outcome, trace)
	}
	var status C.bw_status
	if trace != nil {
		ct := trace.c()
		C.bwgo_policy_complete_keyed_traced_quiet(handle(unsafe.Pointer(p.ptr)), permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &ct, &status)
	} else {
		C.bwgo_policy_complete_keyed_quiet(handle(unsafe.Pointer(p.ptr)), permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &status)
	}
	runtime.KeepAlive(p)
	return status
}

//go:noinline
func (p *Policy) completeKeyedListening(permit *C.bw_keyed_permit, outcome Outcome, trace *TraceContext) C.bw_status {
	s := getScratch()
	s.permit = *permit
	var status C.bw_status
	if trace != nil {
		s.trace = trace.c()
		status = C.bw_policy_complete_keyed_traced(p.ptr, &s.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &s.trace)
	} else {
		status = C.bw_policy_complete_keyed(p.ptr, &s.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN)
	}
	runtime.KeepAlive(p)
	*permit = s.permit
	putScratch(s)
	return status
}
