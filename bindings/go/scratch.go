package breakwater

/*
#include "bwgo.h"
*/
import "C"

import "sync"

// The calls that may run the Go event listener (those of engines and breakers built
// WithEventListener) cannot be noescape + nocallback: the listener's Go code may grow
// and so move this goroutine's stack, so what they point to must not be on it. They
// point into a scratch from a pool instead, which costs no allocation per call; the
// caller's own permit stays on its stack and is copied in and out. (A copy of a permit
// is completed only in place of the original, never beside it.)
type callScratch struct {
	permit     C.bw_keyed_permit
	retryAfter C.uint64_t
	maxWait    C.uint64_t
	trace      C.bw_trace_context
}

var scratchPool = sync.Pool{New: func() any { return new(callScratch) }}

func getScratch() *callScratch { return scratchPool.Get().(*callScratch) }

func putScratch(s *callScratch) { scratchPool.Put(s) }
