package breakwater

/*
#include "breakwater.h"
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventTransition: a circuit breaker changed state (From, To, Generation).
	EventTransition EventKind = C.BW_EVENT_TRANSITION
	// EventBudgetExhausted: a retry budget refused a retry after having had room.
	EventBudgetExhausted EventKind = C.BW_EVENT_BUDGET_EXHAUSTED
	// EventRejected: a call was rejected (Reason).
	EventRejected EventKind = C.BW_EVENT_REJECTED
	// EventReload: the engine applied a new configuration (Added, Removed, Changed).
	EventReload EventKind = C.BW_EVENT_RELOAD
)

func (k EventKind) String() string {
	switch k {
	case EventTransition:
		return "transition"
	case EventBudgetExhausted:
		return "budget_exhausted"
	case EventRejected:
		return "rejected"
	case EventReload:
		return "reload"
	}
	return "unknown"
}

// Event is one event of an engine, its policies, or a standalone breaker. Fields that do
// not apply to the Kind are zero.
type Event struct {
	Kind EventKind
	// Policy is the policy's name; empty for engine-wide events and standalone breakers.
	Policy string
	// From and To are the breaker states of a transition.
	From, To BreakerState
	// Generation is the breaker's generation after a transition.
	Generation uint64
	// Reason is the rejection sentinel (ErrCircuitOpen, ...) of EventRejected.
	Reason error
	// At is the clock time of the event (0 for reloads).
	At time.Duration
	// Added, Removed and Changed count the policies of a reload.
	Added, Removed, Changed uint64
	// Trace is the trace context of the call that caused a transition, a budget
	// exhaustion or a load-shed rejection, when that call was traced (zero otherwise).
	Trace TraceContext
}

// listener carries events from the thread that caused them to the user's function: the
// C callback copies the event and offers it to a buffered channel without waiting; one
// goroutine drains the channel into fn.
type listener struct {
	fn      func(Event)
	events  chan delivery
	dropped atomic.Uint64
	handle  cgo.Handle
	stop    sync.Once
}

// delivery is one item of the listener's queue: an event, or a flush marker closed
// once every item queued before it was handed to fn.
type delivery struct {
	event   Event
	flushed chan struct{}
}

func newListener(fn func(Event), buffer int) *listener {
	l := &listener{fn: fn, events: make(chan delivery, buffer)}
	l.handle = cgo.NewHandle(l)
	go l.run()
	return l
}

func (l *listener) run() {
	for d := range l.events {
		if d.flushed != nil {
			close(d.flushed)
			continue
		}
		l.fn(d.event)
	}
}

// flush waits until fn has been handed every event queued before the call.
func (l *listener) flush(ctx context.Context) error {
	flushed := make(chan struct{})
	select {
	case l.events <- delivery{flushed: flushed}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close ends delivery. Call it only once the library can no longer call back: every C
// reference that could emit (engine, policies, breaker) has been freed.
func (l *listener) close() {
	l.stop.Do(func() {
		l.handle.Delete()
		close(l.events)
	})
}

//export bwgoDeliverEvent
func bwgoDeliverEvent(event *C.bw_event, userData unsafe.Pointer) {
	l := cgo.Handle(uintptr(userData)).Value().(*listener)
	e := Event{
		Kind:       EventKind(event.kind),
		From:       BreakerState(event.from_state),
		To:         BreakerState(event.to_state),
		Generation: uint64(event.generation),
		At:         time.Duration(event.at_ns),
		Added:      uint64(event.added),
		Removed:    uint64(event.removed),
		Changed:    uint64(event.changed),
		Trace:      traceFromC(&event.trace),
	}
	if event.policy_len > 0 {
		e.Policy = C.GoStringN(event.policy, C.int(event.policy_len))
	}
	if e.Kind == EventRejected {
		e.Reason = rejectionReason(C.bw_status(event.reason))
	}
	select {
	case l.events <- delivery{event: e}:
	default:
		l.dropped.Add(1)
	}
}

// refs counts the Go handles through which the library may still call a listener
// (an engine and its policies); the listener closes when the last one is released.
type refs struct {
	count    atomic.Int64
	listener *listener
}

func (r *refs) acquire() { r.count.Add(1) }

func (r *refs) release() {
	if r.count.Add(-1) == 0 && r.listener != nil {
		r.listener.close()
	}
}

func (r *refs) dropped() uint64 {
	if r.listener == nil {
		return 0
	}
	return r.listener.dropped.Load()
}
