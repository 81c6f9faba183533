package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// TraceContext is the W3C trace context of a call: trace id, span id and trace flags.
// The zero value means "not traced".
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// IsValid reports whether both ids are non-zero (the W3C rule).
func (t TraceContext) IsValid() bool {
	return t.TraceID != [16]byte{} && t.SpanID != [8]byte{}
}

// TelemetryHooks connect Execute and Do (keyed or not) to a tracing library without
// this module depending on one; the subpackage breakwater.example/go/otel installs them
// for OpenTelemetry (otel.Install).
type TelemetryHooks struct {
	// TraceContext returns the trace context of the call running under ctx. Execute
	// (ExecuteKey, Do, DoKey) attaches it to each attempt's acquire and completion and
	// to the retry step, so the events the attempt causes (a trip, a load-shed
	// rejection, a refused retry) carry it.
	TraceContext func(ctx context.Context) (TraceContext, bool)
	// OnRejection is called with the call's ctx when an attempt is rejected, e.g. to add
	// a span event.
	OnRejection func(ctx context.Context, err *RejectedError)
}

var telemetryHooks atomic.Pointer[TelemetryHooks]

// SetTelemetryHooks installs hooks for every policy of the process (nil removes them).
// Without hooks Execute pays one atomic load per attempt.
func SetTelemetryHooks(hooks *TelemetryHooks) {
	telemetryHooks.Store(hooks)
}

// traceOf is the trace context the hooks find in ctx, if any.
func traceOf(ctx context.Context) (*TelemetryHooks, TraceContext, bool) {
	hooks := telemetryHooks.Load()
	if hooks == nil || hooks.TraceContext == nil {
		return hooks, TraceContext{}, false
	}
	trace, ok := hooks.TraceContext(ctx)
	return hooks, trace, ok && trace.IsValid()
}

func (t *TraceContext) c() C.bw_trace_context {
	var c C.bw_trace_context
	*(*[16]byte)(unsafe.Pointer(&c.trace_id)) = t.TraceID
	*(*[8]byte)(unsafe.Pointer(&c.span_id)) = t.SpanID
	c.flags = C.uint8_t(t.Flags)
	return c
}

func traceFromC(c *C.bw_trace_context) TraceContext {
	var t TraceContext
	for i := range t.TraceID {
		t.TraceID[i] = byte(c.trace_id[i])
	}
	for i := range t.SpanID {
		t.SpanID[i] = byte(c.span_id[i])
	}
	t.Flags = byte(c.flags)
	return t
}

// acquireTraced is acquire with a trace context. As there, the permit, the trace and
// the outputs stay on the stack for engines without a listener.
func (p *Policy) acquireTraced(priority Priority, trace *TraceContext) (permit C.bw_permit, retryAfter C.uint64_t, status C.bw_status) {
	if p.shared.listening {
		return p.acquireTracedListening(priority, trace)
	}
	ct := trace.c()
	C.bwgo_policy_acquire_traced_quiet(handle(unsafe.Pointer(p.ptr)), C.int32_t(priority), &ct, &permit, &retryAfter, &status)
	runtime.KeepAlive(p)
	return permit, retryAfter, status
}

// completeTraced is complete with a trace context.
func (p *Policy) completeTraced(permit *C.bw_permit, outcome Outcome, trace *TraceContext) C.bw_status {
	if p.shared.listening {
		return p.completeTracedListening(permit, outcome, trace)
	}
	ct := trace.c()
	var status C.bw_status
	C.bwgo_policy_complete_traced_quiet(handle(unsafe.Pointer(p.ptr)), permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &ct, &status)
	runtime.KeepAlive(p)
	return status
}

//go:noinline
func (p *Policy) acquireTracedListening(priority Priority, trace *TraceContext) (C.bw_permit, C.uint64_t, C.bw_status) {
	s := getScratch()
	s.trace = trace.c()
	status := C.bw_policy_acquire_traced(p.ptr, C.int32_t(priority), &s.trace, &s.permit.permit, &s.retryAfter)
	runtime.KeepAlive(p)
	permit, retryAfter := s.permit.permit, s.retryAfter
	putScratch(s)
	return permit, retryAfter, status
}

//go:noinline
func (p *Policy) completeTracedListening(permit *C.bw_permit, outcome Outcome, trace *TraceContext) C.bw_status {
	s := getScratch()
	s.permit.permit, s.trace = *permit, trace.c()
	status := C.bw_policy_complete_traced(p.ptr, &s.permit.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &s.trace)
	runtime.KeepAlive(p)
	*permit = s.permit.permit
	putScratch(s)
	return status
}

func (p *Policy) retryNextTraced(state *C.bw_retry_state, what uint32, hint C.uint64_t, trace *TraceContext, delay *C.uint64_t, reason *C.int32_t) C.bw_status {
	var ct *C.bw_trace_context
	if trace != nil {
		c := trace.c()
		ct = &c
	}
	status := C.bw_policy_retry_next_traced(p.ptr, state, C.uint32_t(what), hint, ct, delay, reason)
	runtime.KeepAlive(p)
	return status
}
