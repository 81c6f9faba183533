/* Helpers shared by the package's cgo preambles (each Go file is its own C translation
 * unit, so they are static inline here). Not part of the public API. */
#ifndef BWGO_H
#define BWGO_H

#include <stdint.h>
#include "breakwater.h"

/* The hot calls take their handle as a uintptr_t: the handle is C memory, but cgo
 * cannot see inside an opaque struct, so a typed handle argument costs a
 * cgoCheckPointer call on every crossing (measured: ~7% of Execute). The hottest ones
 * (Allow, Execute's acquire and completion) return nothing and write their status
 * through a pointer: the cgo wrapper of a function with a result reads the stack top
 * twice, for callbacks that could move the stack, which nocallback rules out
 * (measured: 19 instructions of Allow's 479). */
static inline void bwgo_policy_acquire_quiet(uintptr_t policy, int32_t priority,
		bw_permit *out_permit, uint64_t *out_retry_after_ns, bw_status *out_status) {
	*out_status = bw_policy_acquire((const bw_policy *)policy, priority, out_permit, out_retry_after_ns);
}

static inline void bwgo_policy_complete_quiet(uintptr_t policy, bw_permit *permit,
		int32_t outcome, uint64_t duration_ns, bw_status *out_status) {
	*out_status = bw_policy_complete((const bw_policy *)policy, permit, outcome, duration_ns);
}

static inline void bwgo_policy_acquire_traced_quiet(uintptr_t policy, int32_t priority,
		const bw_trace_context *trace, bw_permit *out_permit, uint64_t *out_retry_after_ns,
		bw_status *out_status) {
	*out_status = bw_policy_acquire_traced((const bw_policy *)policy, priority, trace,
		out_permit, out_retry_after_ns);
}

static inline void bwgo_policy_complete_traced_quiet(uintptr_t policy, bw_permit *permit,
		int32_t outcome, uint64_t duration_ns, const bw_trace_context *trace,
		bw_status *out_status) {
	*out_status = bw_policy_complete_traced((const bw_policy *)policy, permit, outcome,
		duration_ns, trace);
}

static inline void bwgo_policy_acquire_keyed_quiet(uintptr_t policy, const uint8_t *key,
		size_t key_len, int32_t priority, bw_keyed_permit *out_permit,
		uint64_t *out_retry_after_ns, bw_status *out_status) {
	*out_status = bw_policy_acquire_keyed((const bw_policy *)policy, key, key_len, priority,
		out_permit, out_retry_after_ns);
}

static inline void bwgo_policy_complete_keyed_quiet(uintptr_t policy,
		bw_keyed_permit *permit, int32_t outcome, uint64_t duration_ns,
		bw_status *out_status) {
	*out_status = bw_policy_complete_keyed((const bw_policy *)policy, permit, outcome, duration_ns);
}

static inline void bwgo_policy_acquire_keyed_traced_quiet(uintptr_t policy,
		const uint8_t *key, size_t key_len, int32_t priority, const bw_trace_context *trace,
		bw_keyed_permit *out_permit, uint64_t *out_retry_after_ns, bw_status *out_status) {
	*out_status = bw_policy_acquire_keyed_traced((const bw_policy *)policy, key, key_len,
		priority, trace, out_permit, out_retry_after_ns);
}

static inline void bwgo_policy_complete_keyed_traced_quiet(uintptr_t policy,
		bw_keyed_permit *permit, int32_t outcome, uint64_t duration_ns,
		const bw_trace_context *trace, bw_status *out_status) {
	*out_status = bw_policy_complete_keyed_traced((const bw_policy *)policy, permit, outcome,
		duration_ns, trace);
}

static inline void bwgo_policy_acquire_within_quiet(uintptr_t policy, const uint8_t *key,
		size_t key_len, bool keyed, int32_t priority, const bw_trace_context *trace,
		uint64_t wait_ns, bool count_full, bw_keyed_permit *out_permit,
		uint64_t *out_retry_after_ns, uint64_t *out_max_wait_ns, bw_status *out_status) {
	*out_status = bw_policy_acquire_within((const bw_policy *)policy, key, key_len, keyed,
		priority, trace, wait_ns, count_full, out_permit, out_retry_after_ns, out_max_wait_ns);
}

static inline bw_status bwgo_breaker_try_acquire_quiet(uintptr_t breaker,
		bw_breaker_permit *out_permit, uint64_t *out_retry_after_ns) {
	return bw_breaker_try_acquire((const bw_breaker *)breaker, out_permit, out_retry_after_ns);
}

static inline bw_status bwgo_breaker_complete_quiet(uintptr_t breaker,
		bw_breaker_permit *permit, int32_t outcome, uint64_t duration_ns) {
	return bw_breaker_complete((const bw_breaker *)breaker, permit, outcome, duration_ns);
}

static inline bw_status bwgo_limiter_try_acquire(uintptr_t limiter, uint64_t n,
		uint64_t *out_retry_after_ns) {
	return bw_limiter_try_acquire((const bw_limiter *)limiter, n, out_retry_after_ns);
}

static inline void bwgo_limiter_allow(uintptr_t limiter, bw_status *out_status) {
	*out_status = bw_limiter_try_acquire((const bw_limiter *)limiter, 1, NULL);
}

// The listener trampoline: the library calls it with the event; it hands the event to
// the Go side (events.go), whose user data is a runtime/cgo.Handle. Files with an
// //export (events.go) must not include this header: their preambles hold only
// declarations.
extern void bwgoDeliverEvent(bw_event *event, void *user_data);

static inline void bwgo_on_event(const bw_event *event, void *user_data) {
	bwgoDeliverEvent((bw_event *)event, user_data);
}

static inline bw_event_callback bwgo_listener(void) { return bwgo_on_event; }

// A cgo.Handle is an integer; C keeps it as the opaque user data pointer.
static inline void *bwgo_handle_data(uintptr_t handle) { return (void *)handle; }
#endif
