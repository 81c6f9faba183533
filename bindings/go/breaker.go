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

// CircuitBreakerConfig configures a standalone circuit breaker. Zero fields take the
// library's defaults (count window of 100, 20 minimum calls, 50 % failure rate, open
// 30 s, 5 half-open probes; see docs/design.md §3); the library validates every field
// and names the first invalid one in an ErrInvalidConfig.
type CircuitBreakerConfig struct {
	// WindowSize: rates over the last WindowSize outcomes (a count window).
	WindowSize uint32
	// WindowDuration and WindowBuckets: rates over the last WindowDuration in buckets
	// (a time window; used when WindowDuration > 0, with 10 buckets when 0).
	WindowDuration time.Duration
	WindowBuckets  uint32
	// MinimumCalls in the window before rates are evaluated.
	MinimumCalls uint32
	// FailureRateThreshold in percent, (0, 100].
	FailureRateThreshold float64
	// SlowCallDuration and SlowCallRateThreshold (percent): a slow-call rate of that
	// many percent trips the breaker; off when the threshold is 0.
	SlowCallDuration      time.Duration
	SlowCallRateThreshold float64
	// ConsecutiveFailures trips after that many failures in a row; off when 0.
	ConsecutiveFailures uint32
	// OpenDuration: how long the breaker stays open before probing.
	OpenDuration time.Duration
	// OpenBackoffMultiplier (>= 1) lengthens each consecutive opening, up to
	// MaxOpenDuration (default 5 min).
	OpenBackoffMultiplier float64
	MaxOpenDuration       time.Duration
	// OpenJitter randomizes each open duration by up to this fraction, [0, 1], drawing
	// from a generator seeded with JitterSeed.
	OpenJitter float64
	JitterSeed uint64
	// HalfOpenPermits probes are let through while half-open (default 5); the breaker
	// waits HalfOpenMaxWait (default 60 s) for their outcomes before reopening.
	HalfOpenPermits uint32
	HalfOpenMaxWait time.Duration
}

// CircuitBreaker is a standalone circuit breaker, safe for concurrent use.
type CircuitBreaker struct {
	ptr       *C.bw_breaker
	closed    atomic.Bool
	listening bool
	refs      *refs
}

// NewCircuitBreaker builds a breaker (WithClock, WithEventListener apply).
func NewCircuitBreaker(config CircuitBreakerConfig, opts ...Option) (*CircuitBreaker, error) {
	if errABI != nil {
		return nil, errABI
	}
	o := collect(opts)
	var cfg *C.bw_breaker_config
	C.bw_breaker_config_new(&cfg)
	defer C.bw_breaker_config_free(cfg)
	if config.WindowDuration > 0 {
		buckets := config.WindowBuckets
		if buckets == 0 {
			buckets = 10
		}
		C.bw_breaker_config_set_time_window(cfg, durationNs(config.WindowDuration), C.uint32_t(buckets))
	} else if config.WindowSize > 0 {
		C.bw_breaker_config_set_count_window(cfg, C.uint32_t(config.WindowSize))
	}
	if config.MinimumCalls > 0 {
		C.bw_breaker_config_set_minimum_calls(cfg, C.uint32_t(config.MinimumCalls))
	}
	if config.FailureRateThreshold != 0 {
		C.bw_breaker_config_set_failure_rate_threshold(cfg, C.double(config.FailureRateThreshold))
	}
	if config.SlowCallRateThreshold != 0 || config.SlowCallDuration != 0 {
		C.bw_breaker_config_set_slow_calls(cfg, durationNs(config.SlowCallDuration), C.double(config.SlowCallRateThreshold))
	}
	if config.ConsecutiveFailures > 0 {
		C.bw_breaker_config_set_consecutive_failures(cfg, C.uint32_t(config.ConsecutiveFailures))
	}
	if config.OpenDuration != 0 {
		C.bw_breaker_config_set_open_duration(cfg, durationNs(config.OpenDuration))
	}
	if config.OpenBackoffMultiplier != 0 || config.MaxOpenDuration != 0 {
		multiplier, max := config.OpenBackoffMultiplier, config.MaxOpenDuration
		if multiplier == 0 {
			multiplier = 1
		}
		if max == 0 {
			max = 5 * time.Minute
		}
		C.bw_breaker_config_set_open_backoff(cfg, C.double(multiplier), durationNs(max))
	}
	if config.OpenJitter != 0 {
		C.bw_breaker_config_set_open_jitter(cfg, C.double(config.OpenJitter), C.uint64_t(config.JitterSeed))
	}
	if config.HalfOpenPermits != 0 || config.HalfOpenMaxWait != 0 {
		permits, wait := config.HalfOpenPermits, config.HalfOpenMaxWait
		if permits == 0 {
			permits = 5
		}
		if wait == 0 {
			wait = time.Minute
		}
		C.bw_breaker_config_set_half_open(cfg, C.uint32_t(permits), durationNs(wait))
	}
	var ptr *C.bw_breaker
	if err := withMessage("NewCircuitBreaker", func() C.bw_status { return C.bw_breaker_new(cfg, o.clock.cptr(), &ptr) }); err != nil {
		return nil, err
	}
	runtime.KeepAlive(o.clock)
	b := &CircuitBreaker{ptr: ptr, refs: &refs{}, listening: o.onEvent != nil}
	b.refs.acquire()
	if o.onEvent != nil {
		l := newListener(o.onEvent, o.eventBuffer)
		b.refs.listener = l
		if err := withMessage("WithEventListener", func() C.bw_status {
			return C.bw_breaker_set_listener(ptr, C.bwgo_listener(), C.bwgo_handle_data(C.uintptr_t(l.handle)))
		}); err != nil {
			C.bw_breaker_free(ptr)
			l.close()
			return nil, err
		}
	}
	runtime.AddCleanup(b, func(r breakerRelease) {
		C.bw_breaker_free(r.ptr)
		r.refs.release()
	}, breakerRelease{ptr, b.refs})
	return b, nil
}

type breakerRelease struct {
	ptr  *C.bw_breaker
	refs *refs
}

// Close marks the breaker closed: every later call returns ErrClosed. Idempotent; the
// library's reference is dropped once the breaker is unreachable.
func (b *CircuitBreaker) Close() error {
	b.closed.Store(true)
	return nil
}

// Allow is the two-step form (as gobreaker's): ask, call, report with done.
// A rejection is a *RejectedError matching ErrCircuitOpen with the RetryAfter hint.
func (b *CircuitBreaker) Allow() (Done, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	box := &breakerPermit{breaker: b}
	var retryAfter C.uint64_t
	var status C.bw_status
	if b.listening {
		status = C.bw_breaker_try_acquire(b.ptr, &box.permit, &retryAfter)
	} else {
		status = C.bwgo_breaker_try_acquire_quiet(handle(unsafe.Pointer(b.ptr)), &box.permit, &retryAfter)
	}
	runtime.KeepAlive(b)
	if status != C.BW_OK {
		if reason := rejectionReason(status); reason != nil {
			return nil, &RejectedError{Reason: reason, RetryAfter: time.Duration(retryAfter)}
		}
		return nil, statusError("CircuitBreaker.Allow", status)
	}
	return holdPermit(box), nil
}

type breakerPermit struct {
	breaker *CircuitBreaker
	permit  C.bw_breaker_permit
	guard   completionGuard
}

func (b *breakerPermit) complete(outcome Outcome) error {
	return b.guard.complete(func() C.bw_status {
		var status C.bw_status
		if b.breaker.listening {
			status = C.bw_breaker_complete(b.breaker.ptr, &b.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN)
		} else {
			status = C.bwgo_breaker_complete_quiet(handle(unsafe.Pointer(b.breaker.ptr)), &b.permit, C.int32_t(outcome), C.BW_DURATION_UNKNOWN)
		}
		runtime.KeepAlive(b)
		return status
	})
}

func (b *breakerPermit) abandon() { b.guard.abandon(b.complete) }

// State is the breaker's state (an open breaker whose open duration has passed reads
// Open until the next Allow moves it to HalfOpen).
func (b *CircuitBreaker) State() BreakerState {
	state := C.bw_breaker_state(b.ptr)
	runtime.KeepAlive(b)
	return BreakerState(state)
}

// ForceOpen rejects every call until Reset.
func (b *CircuitBreaker) ForceOpen() error {
	return b.control("CircuitBreaker.ForceOpen", func() C.bw_status { return C.bw_breaker_force_open(b.ptr) })
}

// Disable lets every call through (outcomes still recorded) until Reset.
func (b *CircuitBreaker) Disable() error {
	return b.control("CircuitBreaker.Disable", func() C.bw_status { return C.bw_breaker_disable(b.ptr) })
}

// Reset returns to closed with an empty window.
func (b *CircuitBreaker) Reset() error {
	return b.control("CircuitBreaker.Reset", func() C.bw_status { return C.bw_breaker_reset(b.ptr) })
}

func (b *CircuitBreaker) control(op string, call func() C.bw_status) error {
	if b.closed.Load() {
		return ErrClosed
	}
	status := call()
	runtime.KeepAlive(b)
	return statusError(op, status)
}

// BreakerStats is a snapshot of a breaker's state and window.
type BreakerStats struct {
	State                                          BreakerState
	Generation                                     uint64
	Calls, Failures, SlowCalls                     uint64
	ConsecutiveFailures                            uint64
	RetryAfter                                     time.Duration
	TransitionsToClosed, TransitionsToOpen         uint64
	TransitionsToHalfOpen                          uint64
	TransitionsToForcedOpen, TransitionsToDisabled uint64
	StaleOutcomes                                  uint64
	OpenLevel                                      uint32
	HalfOpenInFlight, HalfOpenCompleted            uint32
	HalfOpenFailures                               uint32
	At                                             time.Duration
}

// Stats takes a snapshot of the breaker.
func (b *CircuitBreaker) Stats() (BreakerStats, error) {
	if b.closed.Load() {
		return BreakerStats{}, ErrClosed
	}
	var s C.bw_breaker_stats
	status := C.bw_breaker_get_stats(b.ptr, &s)
	runtime.KeepAlive(b)
	if status != C.BW_OK {
		return BreakerStats{}, statusError("CircuitBreaker.Stats", status)
	}
	return BreakerStats{
		State: BreakerState(s.state), Generation: uint64(s.generation),
		Calls: uint64(s.calls), Failures: uint64(s.failures), SlowCalls: uint64(s.slow_calls),
		ConsecutiveFailures:     uint64(s.consecutive_failures),
		RetryAfter:              time.Duration(s.retry_after_ns),
		TransitionsToClosed:     uint64(s.transitions_to_closed),
		TransitionsToOpen:       uint64(s.transitions_to_open),
		TransitionsToHalfOpen:   uint64(s.transitions_to_half_open),
		TransitionsToForcedOpen: uint64(s.transitions_to_forced_open),
		TransitionsToDisabled:   uint64(s.transitions_to_disabled),
		StaleOutcomes:           uint64(s.stale_outcomes),
		OpenLevel:               uint32(s.open_level),
		HalfOpenInFlight:        uint32(s.half_open_in_flight),
		HalfOpenCompleted:       uint32(s.half_open_completed),
		HalfOpenFailures:        uint32(s.half_open_failures),
		At:                      time.Duration(s.at_ns),
	}, nil
}

// Metrics is a standalone handle's exact counters: Permitted and Rejected acquires,
// completions by outcome (a bulkhead's releases count as Ignored), slow calls and the
// latency of completions with a known duration.
type Metrics struct {
	Permitted, Rejected                uint64
	Success, Failure, Timeout, Ignored uint64
	Slow, LatencyCount                 uint64
	LatencySum, LatencyP50, LatencyP90 time.Duration
	LatencyP99, LatencyP999            time.Duration
}

func metricsOf(m *C.bw_metrics) Metrics {
	return Metrics{
		Permitted: uint64(m.permitted), Rejected: uint64(m.rejected),
		Success: uint64(m.success), Failure: uint64(m.failure), Timeout: uint64(m.timeout),
		Ignored: uint64(m.ignored), Slow: uint64(m.slow), LatencyCount: uint64(m.latency_count),
		LatencySum: time.Duration(m.latency_sum_ns), LatencyP50: time.Duration(m.latency_p50_ns),
		LatencyP90: time.Duration(m.latency_p90_ns), LatencyP99: time.Duration(m.latency_p99_ns),
		LatencyP999: time.Duration(m.latency_p999_ns),
	}
}

// Metrics reads the breaker's exact counters.
func (b *CircuitBreaker) Metrics() (Metrics, error) {
	if b.closed.Load() {
		return Metrics{}, ErrClosed
	}
	var m C.bw_metrics
	status := C.bw_breaker_get_metrics(b.ptr, &m)
	runtime.KeepAlive(b)
	if status != C.BW_OK {
		return Metrics{}, statusError("CircuitBreaker.Metrics", status)
	}
	return metricsOf(&m), nil
}

// DroppedEvents counts the events that found the listener's buffer full.
func (b *CircuitBreaker) DroppedEvents() uint64 { return b.refs.dropped() }
