package breakwater

/*
#include "bwgo.h"
*/
import "C"

import "time"

// Permit is a policy's admission taken by Admit: report how the call went with Done,
// exactly once. Unlike Allow's Done it also says what fault injection decided for the
// call, which the caller honours: sleep InjectedLatency, and skip the call (reporting
// Failure) when InjectedFailure. A Permit dropped without Done releases its permit as
// Ignored when the garbage collector finds it.
type Permit struct {
	done    Done
	failure bool
	latency time.Duration
}

// Done reports the call's outcome (ErrPermitUsed the second time).
func (p *Permit) Done(outcome Outcome) error { return p.done(outcome) }

// InjectedFailure says fault injection failed this call: skip it, report Failure.
func (p *Permit) InjectedFailure() bool { return p.failure }

// InjectedLatency is the latency fault injection adds before the call (0: none).
func (p *Permit) InjectedLatency() time.Duration { return p.latency }

// Admit is the two-step form with the fault-injection decisions: a *Permit at priority,
// or a *RejectedError. It sleeps and skips nothing (Execute does that).
func (p *Policy) Admit(priority Priority) (*Permit, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	permit, retryAfter, status := p.acquire(priority)
	if status != C.BW_OK {
		return nil, p.rejection("Policy.Admit", status, retryAfter)
	}
	out := &Permit{failure: permit.flags&C.BW_PERMIT_INJECTED_FAILURE != 0}
	if permit.flags&C.BW_PERMIT_INJECTED_LATENCY != 0 {
		out.latency = time.Duration(permit.injected_latency_ns)
	}
	out.done = holdPermit(&policyPermit{policy: p, permit: C.bw_keyed_permit{permit: permit}})
	return out, nil
}
