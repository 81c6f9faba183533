package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"
)

// CallOption configures one Execute or Do.
type CallOption func(*callOptions)

type callOptions struct {
	priority      Priority
	key           []byte
	keyed         bool
	fallback      func(context.Context, error) error
	fallbackValue any
	seed          uint64
	seeded        bool
}

// WithPriority runs the call at a priority (default: Default).
func WithPriority(priority Priority) CallOption {
	return func(o *callOptions) { o.priority = priority }
}

// WithFallback calls fn with the final error when the call does not succeed (a rejection,
// the last failure once retries are over, a timeout); its result is Execute's.
func WithFallback(fn func(ctx context.Context, err error) error) CallOption {
	return func(o *callOptions) { o.fallback = fn }
}

// WithFallbackValue is WithFallback for Do: fn supplies the value.
func WithFallbackValue[T any](fn func(ctx context.Context, err error) (T, error)) CallOption {
	return func(o *callOptions) { o.fallbackValue = fn }
}

// WithRetrySeed seeds the jitter of this call's retry schedule (default: random).
func WithRetrySeed(seed uint64) CallOption {
	return func(o *callOptions) { o.seed, o.seeded = seed, true }
}

//go:noinline
func applyCallOptions(opts []CallOption) callOptions {
	o := callOptions{priority: Default}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Execute runs fn under the policy:
//
//   - every attempt asks each stage for a permit; a rejection is a *RejectedError;
//   - an attempt runs with a context cancelled at the policy's timeout (a real cut,
//     recorded as a timeout, returned as a *TimeoutError);
//   - injected latency is slept (inside the attempt's timeout), an injected fault skips
//     fn and counts as a failure (ErrInjectedFault);
//   - the policy's retry section retries what it names (failures and timeouts by
//     default) with its backoff and budget; sleeps end early when ctx ends, and no
//     retry starts whose backoff would end past ctx's deadline;
//   - a cancelled ctx stops everything: the attempt in flight is recorded as ignored;
//     a wait for a full bulkhead (one with a max_wait) ends with ctx's error, holding
//     nothing and counted nowhere (see execute_wait.go).
//
// With WithFallback, the fallback turns the final error into Execute's result.
// Execute allocates nothing when the call succeeds on a policy without retries.
func (p *Policy) Execute(ctx context.Context, fn func(context.Context) error, opts ...CallOption) error {
	if len(opts) == 0 {
		if s := p.plain(); s != nil {
			return p.executePlain(ctx, fn, nil, false, s)
		}
	}
	o := callOptions{priority: Default}
	if len(opts) > 0 {
		o = applyCallOptions(opts)
	}
	return p.executeWithFallback(ctx, fn, &o)
}

// executeWithFallback is execute, with the fallback turning its error into the result.
func (p *Policy) executeWithFallback(ctx context.Context, fn func(context.Context) error, o *callOptions) error {
	err := p.execute(ctx, fn, o)
	if err != nil && o.fallback != nil {
		return o.fallback(ctx, err)
	}
	return err
}

// Do is Execute for a call that returns a value.
func Do[T any](ctx context.Context, p *Policy, fn func(context.Context) (T, error), opts ...CallOption) (T, error) {
	o := callOptions{priority: Default}
	if len(opts) > 0 {
		o = applyCallOptions(opts)
	}
	return do(ctx, p, fn, &o)
}

func do[T any](ctx context.Context, p *Policy, fn func(context.Context) (T, error), o *callOptions) (T, error) {
	var result T
	err := p.execute(ctx, func(ctx context.Context) error {
		v, err := fn(ctx)
		if err == nil {
			result = v
		}
		return err
	}, o)
	if err != nil {
		if fallback, ok := o.fallbackValue.(func(context.Context, error) (T, error)); ok {
			return fallback(ctx, err)
		}
		if o.fallback != nil {
			var zero T
			return zero, o.fallback(ctx, err)
		}
	}
	return result, err
}

func (p *Policy) execute(ctx context.Context, fn func(context.Context) error, o *callOptions) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := p.current()
	if !s.hasRetry {
		err, _, _ := p.attempt(ctx, fn, o, s)
		return err
	}
	return p.retryLoop(ctx, fn, o, s)
}

// attempt runs one attempt. what is the retry class of a failed attempt (0: not
// retryable, e.g. the caller gave up or the library answered an error).
func (p *Policy) attempt(ctx context.Context, fn func(context.Context) error, o *callOptions, s *policySettings) (err error, what uint32, retryAfter C.uint64_t) {
	hooks, trace, traced := traceOf(ctx)
	// The permit of a keyed call is the policy permit with the key's slot; an unkeyed
	// call uses the policy permit inside it.
	var permit C.bw_keyed_permit
	var status C.bw_status
	var traceArg *TraceContext
	if traced {
		traceArg = &trace
	}
	switch {
	case s.bulkheadWait > 0:
		status, retryAfter, err = p.acquireCancellable(ctx, o, traceArg, &permit)
		if err != nil {
			return err, 0, 0
		}
	case o.keyed:
		status, retryAfter = p.acquireKeyed(o.key, o.priority, traceArg, &permit)
	case traced:
		permit.permit, retryAfter, status = p.acquireTraced(o.priority, traceArg)
	default:
		permit.permit, retryAfter, status = p.acquire(o.priority)
	}
	if status != C.BW_OK {
		err = p.rejection("Policy.Execute", status, retryAfter)
		if rejected, ok := err.(*RejectedError); ok && hooks != nil && hooks.OnRejection != nil {
			hooks.OnRejection(ctx, rejected)
		}
		if rejectionReason(status) != nil {
			// Retry classes of rejections: bit 1 + status (BW_RETRY_ON_CIRCUIT_OPEN, ...).
			what = 1 << (1 + uint32(status))
		}
		return err, what, retryAfter
	}
	err, what = p.run(ctx, fn, &permit, o.keyed, s.timeout, traceArg)
	return err, what, 0
}

// run makes the call of an admitted attempt and completes its permit (see
// completePermit). It applies the attempt's timeout, the injected latency and fault,
// and classifies the outcome; what is as for attempt.
func (p *Policy) run(ctx context.Context, fn func(context.Context) error, permit *C.bw_keyed_permit, keyed bool, timeout time.Duration, trace *TraceContext) (err error, what uint32) {
	callCtx := ctx
	var cancel context.CancelFunc
	if timeout > 0 {
		callCtx, cancel = context.WithTimeout(ctx, timeout)
	}
	if permit.permit.flags&C.BW_PERMIT_INJECTED_LATENCY != 0 {
		err = sleep(callCtx, time.Duration(permit.permit.injected_latency_ns))
	}
	injectedFault := permit.permit.flags&C.BW_PERMIT_INJECTED_FAILURE != 0
	if err == nil {
		if injectedFault {
			err = ErrInjectedFault
		} else {
			err = fn(callCtx)
		}
	}
	outcome := Success
	switch {
	case timeout > 0 && ctx.Err() == nil && errors.Is(callCtx.Err(), context.DeadlineExceeded):
		// The attempt ran into the policy's timeout: its context was cut.
		outcome, what = Timeout, C.BW_RETRY_ON_TIMEOUT
		if err != nil {
			err = &TimeoutError{Policy: p.name, Timeout: timeout, Err: err}
		}
	case err == nil:
	case ctx.Err() != nil:
		// The caller gave up: the call says nothing about the dependency.
		outcome = Ignored
	default:
		outcome, what = Failure, C.BW_RETRY_ON_FAILURE
	}
	if cancel != nil {
		cancel()
	}
	status := p.completePermit(permit, keyed, outcome, trace)
	if status != C.BW_OK && err == nil {
		err = statusError("Policy.Execute", status)
	}
	return err, what
}

func (p *Policy) retryLoop(ctx context.Context, fn func(context.Context) error, o *callOptions, s *policySettings) error {
	seed := o.seed
	if !o.seeded {
		seed = rand.Uint64()
	}
	// The caller's deadline, on the policy's clock: the library then starts no retry whose
	// backoff would end at or after it (the rule Policy::call follows in Rust).
	deadline := C.uint64_t(0)
	if d, ok := ctx.Deadline(); ok {
		deadline = C.bw_policy_now(p.ptr) + durationNs(time.Until(d))
		if deadline == 0 {
			deadline = 1
		}
	}
	var state *C.bw_retry_state
	status := C.bw_policy_retry_begin(p.ptr, C.uint64_t(seed), deadline, &state)
	runtime.KeepAlive(p)
	if status != C.BW_OK {
		// A reload removed the retry section since the settings were read: one attempt.
		err, _, _ := p.attempt(ctx, fn, o, s)
		return err
	}
	defer C.bw_retry_state_free(state)
	for {
		err, what, retryAfter := p.attempt(ctx, fn, o, s)
		if err == nil || what == 0 {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		hint := C.uint64_t(C.BW_RETRY_AFTER_NONE)
		if retryAfter > 0 {
			hint = retryAfter
		}
		var delay C.uint64_t
		var reason C.int32_t
		var status C.bw_status
		if _, trace, traced := traceOf(ctx); traced {
			status = p.retryNextTraced(state, what, hint, &trace, &delay, &reason)
		} else {
			status = C.bw_policy_retry_next(p.ptr, state, C.uint32_t(what), hint, &delay, &reason)
			runtime.KeepAlive(p)
		}
		if status != C.BW_OK {
			if status == C.BW_RETRY_GIVE_UP && reason == C.BW_GIVE_UP_BUDGET_EXHAUSTED {
				rejected := &RejectedError{Policy: p.name, Reason: ErrRetryBudgetExhausted, Last: err}
				if hooks := telemetryHooks.Load(); hooks != nil && hooks.OnRejection != nil {
					hooks.OnRejection(ctx, rejected)
				}
				return rejected
			}
			return err
		}
		if serr := sleep(ctx, time.Duration(delay)); serr != nil {
			return fmt.Errorf("%w (last attempt: %w)", serr, err)
		}
	}
}

// sleep waits d or until ctx ends (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
