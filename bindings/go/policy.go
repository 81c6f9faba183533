package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// Outcome is how a call went, reported through a Done.
type Outcome int32

// Outcomes.
const (
	// Success: the call succeeded.
	Success Outcome = C.BW_OUTCOME_SUCCESS
	// Failure: the call failed.
	Failure Outcome = C.BW_OUTCOME_FAILURE
	// Timeout: the call timed out (counts as a failure).
	Timeout Outcome = C.BW_OUTCOME_TIMEOUT
	// Ignored: the call says nothing about the dependency (cancelled); it frees the permit.
	Ignored Outcome = C.BW_OUTCOME_IGNORED
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Timeout:
		return "timeout"
	case Ignored:
		return "ignored"
	}
	return "unknown"
}

// Priority is a call's class under load: the adaptive limit sheds Sheddable calls first
// and Critical ones last.
type Priority int32

// Priorities.
const (
	Critical  Priority = C.BW_PRIORITY_CRITICAL
	Default   Priority = C.BW_PRIORITY_DEFAULT
	Sheddable Priority = C.BW_PRIORITY_SHEDDABLE
)

// Policy is one named pipeline of an engine: circuit breaker, rate limiter, bulkhead or
// adaptive limit, fault injection, with retries and a timeout around them. Get one from
// Engine.Policy; it is safe for concurrent use and follows the engine's reloads.
type Policy struct {
	ptr      *C.bw_policy
	name     string
	shared   *engineShared
	closed   atomic.Bool
	settings atomic.Pointer[policySettings]
}

// policySettings is what Execute needs from the configuration beyond the permit: read
// once and again after each reload of the engine (not on every call).
type policySettings struct {
	reloads  uint64
	timeout  time.Duration
	retryOn  uint32
	hasRetry bool
	// bulkheadWait: the bulkhead's max_wait, which Execute waits out in ctx-aware
	// slices (execute_wait.go); 0 when the acquire never blocks.
	bulkheadWait time.Duration
	// plain: no retries, no timeout, no listener, so Execute may take its plain path
	// (execute_plain.go).
	plain bool
}

func newPolicy(ptr *C.bw_policy, name string, shared *engineShared) *Policy {
	shared.refs.acquire()
	p := &Policy{ptr: ptr, name: name, shared: shared}
	runtime.AddCleanup(p, releasePolicy, policyRelease{ptr, shared})
	return p
}

type policyRelease struct {
	ptr    *C.bw_policy
	shared *engineShared
}

func releasePolicy(r policyRelease) {
	C.bw_policy_free(r.ptr)
	r.shared.refs.release()
}

// handle passes a C handle to the hot shims of bwgo.h as an integer, which cgo does not
// check (see bwgo.h). The handle is C memory: the garbage collector neither moves nor
// frees it; each caller keeps its Go owner alive past the call (runtime.KeepAlive).
func handle(ptr unsafe.Pointer) C.uintptr_t { return C.uintptr_t(uintptr(ptr)) }

// Name is the policy's name.
func (p *Policy) Name() string { return p.name }

// Close marks the policy closed: every later call returns ErrClosed (Allow's Done of
// permits taken before still completes them). The library's reference is dropped by the
// cleanup once the Policy is unreachable. Idempotent.
func (p *Policy) Close() error {
	p.closed.Store(true)
	return nil
}

// current returns the policy's settings, re-read after a reload of its engine.
func (p *Policy) current() *policySettings {
	s := p.settings.Load()
	if s != nil && s.reloads == p.shared.reloads.Load() {
		return s
	}
	return p.refresh()
}

func (p *Policy) refresh() *policySettings {
	s := &policySettings{reloads: p.shared.reloads.Load()}
	var timeout C.uint64_t
	if C.bw_policy_timeout(p.ptr, &timeout) == C.BW_OK {
		s.timeout = time.Duration(timeout)
	}
	var mask C.uint32_t
	if C.bw_policy_retry_on(p.ptr, &mask) == C.BW_OK {
		s.retryOn, s.hasRetry = uint32(mask), true
	}
	var maxWait C.uint64_t
	if C.bw_policy_bulkhead_max_wait(p.ptr, &maxWait) == C.BW_OK {
		s.bulkheadWait = nsDuration(maxWait)
	}
	s.plain = !s.hasRetry && s.timeout == 0 && !p.shared.listening
	runtime.KeepAlive(p)
	p.settings.Store(s)
	return s
}

// Timeout is the policy's per-attempt timeout (0 for none).
func (p *Policy) Timeout() time.Duration { return p.current().timeout }

// acquire asks every stage for a permit. The permit stays on the caller's stack for
// engines without a listener (see cgo.go).
func (p *Policy) acquire(priority Priority) (permit C.bw_permit, retryAfter C.uint64_t, status C.bw_status) {
	if p.shared.listening {
		return p.acquireListening(priority)
	}
	C.bwgo_policy_acquire_quiet(handle(unsafe.Pointer(p.ptr)), C.int32_t(priority), &permit, &retryAfter, &status)
	runtime.KeepAlive(p)
	return permit, retryAfter, status
}

// acquireListening is acquire through the call that may run the Go listener (see
// scratch.go).
//
//go:noinline
func (p *Policy) acquireListening(priority Priority) (C.bw_permit, C.uint64_t, C.bw_status) {
	s := getScratch()
	status := C.bw_policy_acquire(p.ptr, C.int32_t(priority), &s.permit.permit, &s.retryAfter)
	runtime.KeepAlive(p)
	permit, retryAfter := s.permit.permit, s.retryAfter
	putScratch(s)
	return permit, retryAfter, status
}

// complete reports a permit's outcome; the policy measures the duration on its clock.
func (p *Policy) complete(permit *C.bw_permit, outcome Outcome) C.bw_status {
	if p.shared.listening {
		return p.completeListening(permit, outcome)
	}
	var status C.bw_status
	C.bwgo_policy_complete_quiet(handle(unsafe.Pointer(p.ptr)), permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN, &status)
	runtime.KeepAlive(p)
	return status
}

//go:noinline
func (p *Policy) completeListening(permit *C.bw_permit, outcome Outcome) C.bw_status {
	s := getScratch()
	s.permit.permit = *permit
	status := C.bw_policy_complete(p.ptr, &s.permit.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN)
	runtime.KeepAlive(p)
	*permit = s.permit.permit
	putScratch(s)
	return status
}

// completePermit completes a permit: as the permit of a keyed call when keyed (else
// its inner policy permit), with the trace context when trace is not nil.
func (p *Policy) completePermit(permit *C.bw_keyed_permit, keyed bool, outcome Outcome, trace *TraceContext) C.bw_status {
	switch {
	case keyed:
		return p.completeKeyed(permit, outcome, trace)
	case trace != nil:
		return p.completeTraced(&permit.permit, outcome, trace)
	default:
		return p.complete(&permit.permit, outcome)
	}
}

// Done reports how a call admitted by Allow went. Call it exactly once; a second call
// returns ErrPermitUsed, an unknown outcome ErrInvalidArgument (the permit stays live).
// A Done dropped without being called releases its permit as Ignored when the garbage
// collector finds it, as a dropped Rust permit does: a forgotten call never holds a
// bulkhead slot or a half-open probe for good.
type Done func(Outcome) error

// Allow is the two-step form: ask before the call, report after it.
//
//	done, err := policy.Allow()
//	if err != nil {
//		return err // a *RejectedError: errors.Is(err, breakwater.ErrCircuitOpen), ...
//	}
//	err = call()
//	done(breakwater.OutcomeOf(err))
//
// Allow neither sleeps for injected latency nor skips calls with an injected fault: use
// Execute for that.
func (p *Policy) Allow() (Done, error) { return p.AllowPriority(Default) }

// AllowPriority is Allow at a priority.
func (p *Policy) AllowPriority(priority Priority) (Done, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	permit, retryAfter, status := p.acquire(priority)
	if status != C.BW_OK {
		return nil, p.rejection("Policy.Allow", status, retryAfter)
	}
	box := &policyPermit{policy: p, permit: C.bw_keyed_permit{permit: permit}}
	return holdPermit(box), nil
}

// A permit handed out by Allow: the box holds it (and outlives the Done, as the
// cleanup's argument); the holder is what the Done closes over.
type permitBox interface {
	complete(Outcome) error
	abandon()
}

type permitHolder struct {
	box     permitBox
	cleanup runtime.Cleanup
}

func holdPermit(box permitBox) Done {
	h := &permitHolder{box: box}
	h.cleanup = runtime.AddCleanup(h, permitBox.abandon, box)
	return h.done
}

func (h *permitHolder) done(outcome Outcome) error {
	err := h.box.complete(outcome)
	if err == nil {
		h.cleanup.Stop()
	}
	runtime.KeepAlive(h)
	return err
}

// policyPermit is the permit behind the Done of Allow, AllowKey (keyed) and Admit.
type policyPermit struct {
	policy *Policy
	permit C.bw_keyed_permit
	keyed  bool
	guard  completionGuard
}

func (b *policyPermit) complete(outcome Outcome) error {
	return b.guard.complete(func() C.bw_status { return b.policy.completePermit(&b.permit, b.keyed, outcome, nil) })
}

func (b *policyPermit) abandon() { b.guard.abandon(b.complete) }

// completionGuard is the completion bookkeeping of a permit handed out as a Done: one
// completion at a time (the library requires that nobody else touches the permit
// during the call; a second completion then gets ErrPermitUsed from the library), and
// whether one succeeded, so the cleanup of a dropped Done releases only a live permit.
type completionGuard struct {
	busy      atomic.Bool
	completed atomic.Bool
}

// complete runs the library's completion call unless another is running.
func (g *completionGuard) complete(call func() C.bw_status) error {
	if g.busy.Swap(true) {
		return &Error{Op: "Done", Message: "the permit is being completed by another goroutine", kind: ErrPermitUsed}
	}
	defer g.busy.Store(false)
	status := call()
	if status == C.BW_OK {
		g.completed.Store(true)
	}
	return statusError("Done", status)
}

// abandon releases the permit as Ignored if it was never completed.
func (g *completionGuard) abandon(complete func(Outcome) error) {
	if !g.completed.Load() {
		_ = complete(Ignored)
	}
}

// OutcomeOf maps a call's error to an outcome: nil is Success, anything else Failure.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return Success
	}
	return Failure
}

// rejection turns a refused acquire into its error.
func (p *Policy) rejection(op string, status C.bw_status, retryAfter C.uint64_t) error {
	if reason := rejectionReason(status); reason != nil {
		return &RejectedError{Policy: p.name, Reason: reason, RetryAfter: time.Duration(retryAfter)}
	}
	return statusError(op, status)
}

// BreakerState is a circuit breaker's state.
type BreakerState int32

// Breaker states.
const (
	Closed     BreakerState = C.BW_BREAKER_CLOSED
	Open       BreakerState = C.BW_BREAKER_OPEN
	HalfOpen   BreakerState = C.BW_BREAKER_HALF_OPEN
	ForcedOpen BreakerState = C.BW_BREAKER_FORCED_OPEN
	Disabled   BreakerState = C.BW_BREAKER_DISABLED
	NoBreaker  BreakerState = -1
)

func (s BreakerState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	case ForcedOpen:
		return "forced_open"
	case Disabled:
		return "disabled"
	case NoBreaker:
		return "none"
	}
	return "unknown"
}

// PolicyStats is a snapshot of a policy's counters and stage states. Counters are exact
// and monotonic; Success+Failure+Timeout+Ignored <= Permitted.
type PolicyStats struct {
	Permitted, Success, Failure, Timeout, Ignored, Slow uint64
	// Retries started by Execute's retry loops.
	Retries uint64
	// Rejections by reason; RejectedRetryBudgetExhausted counts the retries the retry
	// budget refused (one each, the same counter as in C and Prometheus).
	RejectedCircuitOpen, RejectedRateLimited, RejectedBulkheadFull   uint64
	RejectedLoadShed, RejectedRetryBudgetExhausted, RejectedInjected uint64
	// Breaker transitions by target state.
	TransitionsToClosed, TransitionsToOpen, TransitionsToHalfOpen uint64
	TransitionsToForcedOpen, TransitionsToDisabled                uint64
	LatencyCount                                                  uint64
	LatencySum, LatencyP50, LatencyP90, LatencyP99, LatencyP999   time.Duration
	BreakerState                                                  BreakerState
	BreakerGeneration                                             uint64
	// LimiterAvailable is -1 without a rate limiter.
	LimiterAvailable                        int64
	BulkheadInFlight, BulkheadMaxConcurrent uint32
	AdaptiveLimit, AdaptiveInFlight         uint32
}

// Stats takes a snapshot of the policy's counters.
func (p *Policy) Stats() (PolicyStats, error) {
	if p.closed.Load() {
		return PolicyStats{}, ErrClosed
	}
	var s C.bw_policy_stats
	status := C.bw_policy_get_stats(p.ptr, &s)
	runtime.KeepAlive(p)
	if status != C.BW_OK {
		return PolicyStats{}, statusError("Policy.Stats", status)
	}
	return PolicyStats{
		Permitted: uint64(s.permitted), Success: uint64(s.success), Failure: uint64(s.failure),
		Timeout: uint64(s.timeout), Ignored: uint64(s.ignored), Slow: uint64(s.slow),
		Retries:                      uint64(s.retries),
		RejectedCircuitOpen:          uint64(s.rejected_circuit_open),
		RejectedRateLimited:          uint64(s.rejected_rate_limited),
		RejectedBulkheadFull:         uint64(s.rejected_bulkhead_full),
		RejectedLoadShed:             uint64(s.rejected_load_shed),
		RejectedRetryBudgetExhausted: uint64(s.rejected_retry_budget_exhausted),
		RejectedInjected:             uint64(s.rejected_injected),
		TransitionsToClosed:          uint64(s.transitions_to_closed),
		TransitionsToOpen:            uint64(s.transitions_to_open),
		TransitionsToHalfOpen:        uint64(s.transitions_to_half_open),
		TransitionsToForcedOpen:      uint64(s.transitions_to_forced_open),
		TransitionsToDisabled:        uint64(s.transitions_to_disabled),
		LatencyCount:                 uint64(s.latency_count),
		LatencySum:                   time.Duration(s.latency_sum_ns),
		LatencyP50:                   time.Duration(s.latency_p50_ns),
		LatencyP90:                   time.Duration(s.latency_p90_ns),
		LatencyP99:                   time.Duration(s.latency_p99_ns),
		LatencyP999:                  time.Duration(s.latency_p999_ns),
		BreakerState:                 BreakerState(s.breaker_state),
		BreakerGeneration:            uint64(s.breaker_generation),
		LimiterAvailable:             int64(s.limiter_available),
		BulkheadInFlight:             uint32(s.bulkhead_in_flight),
		BulkheadMaxConcurrent:        uint32(s.bulkhead_max_concurrent),
		AdaptiveLimit:                uint32(s.adaptive_limit),
		AdaptiveInFlight:             uint32(s.adaptive_in_flight),
	}, nil
}

// ForceOpen opens the policy's breaker until Reset (ErrNoStage without a breaker).
func (p *Policy) ForceOpen() error {
	return p.stage("Policy.ForceOpen", func() C.bw_status { return C.bw_policy_breaker_force_open(p.ptr) })
}

// DisableBreaker lets every call through the policy's breaker until Reset.
func (p *Policy) DisableBreaker() error {
	return p.stage("Policy.DisableBreaker", func() C.bw_status { return C.bw_policy_breaker_disable(p.ptr) })
}

// Reset puts the policy's breaker back to closed with an empty window.
func (p *Policy) Reset() error {
	return p.stage("Policy.Reset", func() C.bw_status { return C.bw_policy_breaker_reset(p.ptr) })
}

// SetChaos turns the policy's fault injection on or off (ErrNoStage without a chaos
// section).
func (p *Policy) SetChaos(enabled bool) error {
	return p.stage("Policy.SetChaos", func() C.bw_status { return C.bw_policy_chaos_set_enabled(p.ptr, C.bool(enabled)) })
}

func (p *Policy) stage(op string, call func() C.bw_status) error {
	if p.closed.Load() {
		return ErrClosed
	}
	err := withMessage(op, call)
	runtime.KeepAlive(p)
	return err
}
