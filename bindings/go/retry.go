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
	"sync/atomic"
	"time"
)

// Jitter spreads retry delays.
type Jitter int32

// Jitters.
const (
	// JitterNone: every delay is the exponential base.
	JitterNone Jitter = C.BW_JITTER_NONE
	// JitterFull: uniform in [0, base] (the default).
	JitterFull Jitter = C.BW_JITTER_FULL
	// JitterEqual: uniform in [base/2, base].
	JitterEqual Jitter = C.BW_JITTER_EQUAL
	// JitterDecorrelated: decorrelated jitter, capped at MaxBackoff.
	JitterDecorrelated Jitter = C.BW_JITTER_DECORRELATED
)

// RetryConfig configures a standalone retry loop. Zero fields take the defaults: 3
// attempts, backoff 100 ms × 2 up to 10 s with full jitter, no MaxElapsed, no budget.
type RetryConfig struct {
	MaxAttempts    uint32
	InitialBackoff time.Duration
	Multiplier     float64
	MaxBackoff     time.Duration
	// Jitter; JitterFull when left at its zero value (set JitterNone explicitly with
	// NoJitter).
	Jitter   Jitter
	NoJitter bool
	// MaxElapsed: no retry starts later than this after the call's start (0: no bound).
	MaxElapsed time.Duration
	// Budget limits retries to a share of the traffic (nil: no budget).
	Budget *RetryBudgetConfig
	// RetryIf says which errors are retried (nil: every error). A *RejectedError's
	// RetryAfter is honoured as the minimum delay.
	RetryIf func(error) bool
}

// RetryBudgetConfig lets retries add at most Ratio of the requests, plus MinPerSecond,
// over a sliding Window (default 10 s).
type RetryBudgetConfig struct {
	Ratio        float64
	MinPerSecond uint32
	Window       time.Duration
}

// Retry is a standalone retry loop (backoff, jitter, deadline and budget), safe for
// concurrent use: each Execute has its own schedule.
type Retry struct {
	config  *C.bw_retry_config
	budget  *C.bw_retry_budget
	clock   *ManualClock
	retryIf func(error) bool
	seed    uint64
	seeded  bool
	closed  atomic.Bool
}

// NewRetry validates config and builds the loop (WithClock, WithSeed apply).
func NewRetry(config RetryConfig, opts ...Option) (*Retry, error) {
	if errABI != nil {
		return nil, errABI
	}
	o := collect(opts)
	var cfg *C.bw_retry_config
	C.bw_retry_config_new(&cfg)
	r := &Retry{config: cfg, clock: o.clock, retryIf: config.RetryIf, seed: o.seed, seeded: o.seeded}
	fail := func(err error) (*Retry, error) {
		C.bw_retry_config_free(cfg)
		if r.budget != nil {
			C.bw_retry_budget_free(r.budget)
		}
		return nil, err
	}
	if config.MaxAttempts != 0 {
		C.bw_retry_config_set_max_attempts(cfg, C.uint32_t(config.MaxAttempts))
	}
	if config.InitialBackoff != 0 || config.Multiplier != 0 || config.MaxBackoff != 0 {
		initial, multiplier, max := config.InitialBackoff, config.Multiplier, config.MaxBackoff
		if initial == 0 {
			initial = 100 * time.Millisecond
		}
		if multiplier == 0 {
			multiplier = 2
		}
		if max == 0 {
			max = max2(10*time.Second, initial)
		}
		if initial < 0 || max < 0 {
			return fail(&Error{Op: "NewRetry", Message: "backoff: durations must not be negative", kind: ErrInvalidConfig})
		}
		C.bw_retry_config_set_backoff(cfg, durationNs(initial), C.double(multiplier), durationNs(max))
	}
	jitter := config.Jitter
	if config.NoJitter {
		jitter = JitterNone
	} else if jitter == JitterNone {
		jitter = JitterFull
	}
	if err := withMessage("NewRetry", func() C.bw_status { return C.bw_retry_config_set_jitter(cfg, C.int32_t(jitter)) }); err != nil {
		return fail(err)
	}
	if config.MaxElapsed < 0 {
		return fail(&Error{Op: "NewRetry", Message: "max_elapsed: must not be negative", kind: ErrInvalidConfig})
	}
	C.bw_retry_config_set_max_elapsed(cfg, durationNs(config.MaxElapsed))
	// The configuration is validated where it is used: build one state to check it.
	var probe *C.bw_retry_state
	if err := withMessage("NewRetry", func() C.bw_status { return C.bw_retry_state_new(cfg, 0, 1, 0, &probe) }); err != nil {
		return fail(err)
	}
	C.bw_retry_state_free(probe)
	if b := config.Budget; b != nil {
		window := b.Window
		if window == 0 {
			window = 10 * time.Second
		}
		if err := withMessage("NewRetry", func() C.bw_status {
			return C.bw_retry_budget_new(C.double(b.Ratio), C.uint32_t(b.MinPerSecond), durationNs(window), o.clock.cptr(), &r.budget)
		}); err != nil {
			return fail(err)
		}
	}
	runtime.KeepAlive(o.clock)
	runtime.AddCleanup(r, func(h retryRelease) {
		C.bw_retry_config_free(h.config)
		C.bw_retry_budget_free(h.budget)
	}, retryRelease{cfg, r.budget})
	return r, nil
}

func max2(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

type retryRelease struct {
	config *C.bw_retry_config
	budget *C.bw_retry_budget
}

// Close marks the retry closed: later calls return ErrClosed. Idempotent.
func (r *Retry) Close() error {
	r.closed.Store(true)
	return nil
}

// processStart anchors the monotonic nanoseconds a Retry without a manual clock uses.
var processStart = time.Now()

func (r *Retry) now() C.uint64_t {
	if r.clock != nil {
		return C.uint64_t(r.clock.Now())
	}
	return C.uint64_t(time.Since(processStart)) + 1
}

// Execute calls fn until it succeeds, the schedule gives up (attempts, MaxElapsed,
// ctx's deadline: a retry whose backoff would end past it is not started), the budget
// refuses (a *RejectedError matching ErrRetryBudgetExhausted and the last error), or ctx
// ends (its error joined with the last one). It returns the last attempt's error.
func (r *Retry) Execute(ctx context.Context, fn func(context.Context) error) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	seed := r.seed
	if !r.seeded {
		seed = rand.Uint64()
	}
	start := r.now()
	deadline := C.uint64_t(0)
	if d, ok := ctx.Deadline(); ok {
		deadline = start + durationNs(time.Until(d))
		if deadline == 0 {
			deadline = 1
		}
	}
	var state *C.bw_retry_state
	if err := statusError("Retry.Execute", C.bw_retry_state_new(r.config, C.uint64_t(seed), start, deadline, &state)); err != nil {
		return err
	}
	defer C.bw_retry_state_free(state)
	if r.budget != nil {
		C.bw_retry_budget_record_request(r.budget)
	}
	defer runtime.KeepAlive(r)
	for {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || (r.retryIf != nil && !r.retryIf(err)) {
			return err
		}
		hint := C.uint64_t(C.BW_RETRY_AFTER_NONE)
		var rejected *RejectedError
		if errors.As(err, &rejected) && rejected.RetryAfter > 0 {
			hint = durationNs(rejected.RetryAfter)
		}
		var delay C.uint64_t
		var reason C.int32_t
		status := C.bw_retry_state_next_delay(state, r.now(), hint, r.budget, &delay, &reason)
		if status != C.BW_OK {
			if status == C.BW_RETRY_GIVE_UP && reason == C.BW_GIVE_UP_BUDGET_EXHAUSTED {
				return &RejectedError{Reason: ErrRetryBudgetExhausted, Last: err}
			}
			return err
		}
		if serr := sleep(ctx, time.Duration(delay)); serr != nil {
			return fmt.Errorf("%w (last attempt: %w)", serr, err)
		}
	}
}

func (r *Retry) budgetStats() (requests, retries, available uint64) {
	if r.budget == nil {
		return 0, 0, 0
	}
	var s C.bw_retry_budget_stats
	C.bw_retry_budget_get_stats(r.budget, &s)
	runtime.KeepAlive(r)
	return uint64(s.requests), uint64(s.retries), uint64(s.available)
}

// BudgetStats is a retry budget's state.
type BudgetStats struct {
	// Requests and Retries recorded in the window; Available retries would be granted now.
	Requests, Retries, Available uint64
}

// Budget reads the retry budget's counters (zero without a budget).
func (r *Retry) Budget() BudgetStats {
	q, t, a := r.budgetStats()
	return BudgetStats{Requests: q, Retries: t, Available: a}
}
