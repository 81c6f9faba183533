package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
)

// GiveUpReason says why a retry loop stopped.
type GiveUpReason int32

// Give-up reasons.
const (
	AttemptsExhausted GiveUpReason = C.BW_GIVE_UP_ATTEMPTS_EXHAUSTED
	ElapsedExceeded   GiveUpReason = C.BW_GIVE_UP_ELAPSED_EXCEEDED
	DeadlineExceeded  GiveUpReason = C.BW_GIVE_UP_DEADLINE_EXCEEDED
	BudgetExhausted   GiveUpReason = C.BW_GIVE_UP_BUDGET_EXHAUSTED
	NotRetryable      GiveUpReason = C.BW_GIVE_UP_NOT_RETRYABLE
)

func (r GiveUpReason) String() string {
	switch r {
	case AttemptsExhausted:
		return "attempts_exhausted"
	case ElapsedExceeded:
		return "elapsed_exceeded"
	case DeadlineExceeded:
		return "deadline_exceeded"
	case BudgetExhausted:
		return "budget_exhausted"
	case NotRetryable:
		return "not_retryable"
	}
	return "unknown"
}

// Miss is what an attempt that did not succeed ran into, as the policy file's retry_on
// names it: Failure or Timeout, or the rejection sentinel (ErrCircuitOpen, ...).
type Miss struct {
	Outcome Outcome
	Reason  error
}

// RetryRun is the retry loop of one logical call driven by hand (what Execute does):
// after each miss, Next says whether to retry and after what delay. Not for concurrent
// use; Close frees it (a dropped RetryRun is freed by the garbage collector).
type RetryRun struct {
	policy  *Policy
	mu      sync.Mutex
	state   *C.bw_retry_state
	cleanup runtime.Cleanup
}

// RetryBegin starts the retry loop of one logical call with the policy's retry section:
// seed seeds its jitter; deadline is the caller's deadline on the policy's clock (see
// Now; 0: none): no retry starts whose delay would end at or after it. One request is
// recorded in the retry budget. ErrNoStage without a retry section.
func (p *Policy) RetryBegin(seed uint64, deadline time.Duration) (*RetryRun, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	var state *C.bw_retry_state
	err := withMessage("Policy.RetryBegin", func() C.bw_status {
		return C.bw_policy_retry_begin(p.ptr, C.uint64_t(seed), durationNs(deadline), &state)
	})
	runtime.KeepAlive(p)
	if err != nil {
		return nil, err
	}
	r := &RetryRun{policy: p, state: state}
	r.cleanup = runtime.AddCleanup(r, freeRetryState, state)
	return r, nil
}

func freeRetryState(state *C.bw_retry_state) { C.bw_retry_state_free(state) }

// Now is the time on the policy's clock (its manual clock, or the monotonic clock).
func (p *Policy) Now() time.Duration {
	now := C.bw_policy_now(p.ptr)
	runtime.KeepAlive(p)
	return time.Duration(now)
}

// Next decides after a miss; retryAfter is a rejection's hint (0: none). It returns the
// delay to wait before retrying, or retry false and why the loop gives up (a give-up
// is final).
func (r *RetryRun) Next(miss Miss, retryAfter time.Duration) (delay time.Duration, retry bool, reason GiveUpReason, err error) {
	var what C.uint32_t
	switch {
	case miss.Reason != nil:
		code := rejectionStatus(miss.Reason)
		if code == 0 {
			return 0, false, 0, &Error{Op: "RetryRun.Next", Message: "not a rejection sentinel: " + miss.Reason.Error(), kind: ErrInvalidArgument}
		}
		what = 1 << (1 + code)
	case miss.Outcome == Failure:
		what = C.BW_RETRY_ON_FAILURE
	case miss.Outcome == Timeout:
		what = C.BW_RETRY_ON_TIMEOUT
	default:
		return 0, false, 0, &Error{Op: "RetryRun.Next", Message: "a miss is a Failure, a Timeout or a rejection", kind: ErrInvalidArgument}
	}
	hint := C.uint64_t(C.BW_RETRY_AFTER_NONE)
	if retryAfter > 0 {
		hint = durationNs(retryAfter)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return 0, false, 0, ErrClosed
	}
	var out C.uint64_t
	var why C.int32_t
	status := C.bw_policy_retry_next(r.policy.ptr, r.state, what, hint, &out, &why)
	runtime.KeepAlive(r.policy)
	switch status {
	case C.BW_OK:
		return time.Duration(out), true, 0, nil
	case C.BW_RETRY_GIVE_UP:
		return 0, false, GiveUpReason(why), nil
	}
	return 0, false, 0, statusError("RetryRun.Next", status)
}

// Close frees the run; later Next calls return ErrClosed. Idempotent.
func (r *RetryRun) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != nil {
		r.cleanup.Stop()
		C.bw_retry_state_free(r.state)
		r.state = nil
	}
	return nil
}

// rejectionStatus is the status code of a rejection sentinel (0 for anything else).
func rejectionStatus(reason error) uint32 {
	for code := C.bw_status(1); code <= C.BW_INJECTED_REJECTION; code++ {
		if rejectionReason(code) == reason {
			return uint32(code)
		}
	}
	return 0
}
