package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"runtime"
	"time"
	"unsafe"
)

// The plain path of Execute and ExecuteKey: a policy without retries and timeout, on
// an engine without a listener, no call options and no telemetry
// hooks. Then an attempt is the acquire, the call and the completion, with nothing to
// arrange around them: no derived context, no timer, no closure, the permit on the
// stack and each C call taken directly (two crossings, nothing allocated). Anything
// else takes the general path (execute).

// plain returns the policy's settings when Execute may take the plain path: they say so
// and are current, and no telemetry hooks are installed; nil otherwise.
func (p *Policy) plain() *policySettings {
	s := p.settings.Load()
	if s != nil && s.plain && s.reloads == p.shared.reloads.Load() && telemetryHooks.Load() == nil {
		return s
	}
	return nil
}

// executePlain is Execute's plain path (ExecuteKey's when keyed), with the general
// path's behaviour: the same checks first, the same outcomes (fault injection goes
// through run), a bulkhead wait that ends with ctx (execute_wait.go).
func (p *Policy) executePlain(ctx context.Context, fn func(context.Context) error, key []byte, keyed bool, s *policySettings) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var permit C.bw_keyed_permit
	var retryAfter C.uint64_t
	var status C.bw_status
	if s.bulkheadWait > 0 {
		// acquireCancellable's first ask, taken directly (the engine has no listener).
		var maxWait C.uint64_t
		C.bwgo_policy_acquire_within_quiet(handle(unsafe.Pointer(p.ptr)), keyBytes(key), C.size_t(len(key)), C.bool(keyed), C.BW_PRIORITY_DEFAULT, nil, 0, false, &permit, &retryAfter, &maxWait, &status)
		if status == C.BW_BULKHEAD_FULL && maxWait > 0 {
			var err error
			if status, retryAfter, err = p.waitPlain(ctx, key, keyed, nsDuration(maxWait), &permit); err != nil {
				return err
			}
		}
	} else if keyed {
		C.bwgo_policy_acquire_keyed_quiet(handle(unsafe.Pointer(p.ptr)), keyBytes(key), C.size_t(len(key)), C.BW_PRIORITY_DEFAULT, &permit, &retryAfter, &status)
	} else {
		C.bwgo_policy_acquire_quiet(handle(unsafe.Pointer(p.ptr)), C.BW_PRIORITY_DEFAULT, &permit.permit, &retryAfter, &status)
	}
	runtime.KeepAlive(p)
	if status != C.BW_OK {
		return p.rejection("Policy.Execute", status, retryAfter)
	}
	if permit.permit.flags&(C.BW_PERMIT_INJECTED_FAILURE|C.BW_PERMIT_INJECTED_LATENCY) != 0 {
		err, _ := p.run(ctx, fn, &permit, keyed, 0, nil)
		return err
	}
	err := fn(ctx)
	outcome := Success
	if err != nil {
		outcome = Failure
		if ctx.Err() != nil {
			// The caller gave up: the call says nothing about the dependency.
			outcome = Ignored
		}
	}
	if keyed {
		C.bwgo_policy_complete_keyed_quiet(handle(unsafe.Pointer(p.ptr)), &permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &status)
	} else {
		C.bwgo_policy_complete_quiet(handle(unsafe.Pointer(p.ptr)), &permit.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &status)
	}
	runtime.KeepAlive(p)
	if status != C.BW_OK && err == nil {
		return statusError("Policy.Execute", status)
	}
	return err
}

// waitPlain is the plain path's wait for a full bulkhead (see waitBulkhead).
//
//go:noinline
func (p *Policy) waitPlain(ctx context.Context, key []byte, keyed bool, maxWait time.Duration, out *C.bw_keyed_permit) (C.bw_status, C.uint64_t, error) {
	o := callOptions{priority: Default, key: key, keyed: keyed}
	return p.waitBulkhead(ctx, &o, nil, maxWait, out)
}
