package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"
)

// The plain path of Execute and ExecuteKey: a policy without retries, timeout and
// bulkhead wait, on an engine without a listener, no call options and no telemetry
// hooks. Then an attempt is the acquire, the call and the completion, with nothing to
// arrange around them: no derived context, no timer, no closure, the permit on the
// stack and each C call taken directly (two crossings, nothing allocated). Anything
// else takes the general path (execute).

// plain reports whether Execute may take the plain path: the cached settings say so and
// are current, and no telemetry hooks are installed.
func (p *Policy) plain() bool {
	s := p.settings.Load()
	return s != nil && s.plain && s.reloads == p.shared.reloads.Load() && telemetryHooks.Load() == nil
}

// executePlain is Execute's plain path (ExecuteKey's when keyed), with the general
// path's behaviour: the same checks first, the same outcomes (fault injection goes
// through run).
func (p *Policy) executePlain(ctx context.Context, fn func(context.Context) error, key []byte, keyed bool) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var permit C.bw_keyed_permit
	var retryAfter C.uint64_t
	var status C.bw_status
	if keyed {
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
