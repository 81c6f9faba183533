package breakwater

// This is the only file of the package with #cgo lines.
// Inside the repository: the header in include/ and the library cargo builds
// (make -C bindings/c lib); dist.sh rewrites these lines for the dist layout.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libbreakwater.a -lm -ldl -lpthread

// Hot calls: their pointer arguments point to Go stack variables, which stay on the
// stack only when a function is marked both noescape (C keeps no pointer after it
// returns) and nocallback (it never calls back into Go). The policy and breaker calls
// can run a Go event listener, so each gets a *_quiet twin used only by handles whose
// engine or breaker has no listener (fixed at construction, so it cannot change under
// a running call).
#cgo noescape bwgo_limiter_allow
#cgo nocallback bwgo_limiter_allow
#cgo noescape bwgo_limiter_try_acquire
#cgo nocallback bwgo_limiter_try_acquire
#cgo noescape bw_limiter_reserve
#cgo nocallback bw_limiter_reserve
#cgo noescape bw_limiter_cancel
#cgo nocallback bw_limiter_cancel
#cgo noescape bw_bulkhead_try_acquire
#cgo nocallback bw_bulkhead_try_acquire
#cgo noescape bw_bulkhead_release
#cgo nocallback bw_bulkhead_release
#cgo noescape bwgo_policy_acquire_quiet
#cgo nocallback bwgo_policy_acquire_quiet
#cgo noescape bwgo_policy_complete_quiet
#cgo nocallback bwgo_policy_complete_quiet
#cgo noescape bwgo_policy_acquire_traced_quiet
#cgo nocallback bwgo_policy_acquire_traced_quiet
#cgo noescape bwgo_policy_complete_traced_quiet
#cgo nocallback bwgo_policy_complete_traced_quiet
#cgo noescape bwgo_policy_acquire_keyed_quiet
#cgo nocallback bwgo_policy_acquire_keyed_quiet
#cgo noescape bwgo_policy_complete_keyed_quiet
#cgo nocallback bwgo_policy_complete_keyed_quiet
#cgo noescape bwgo_policy_acquire_keyed_traced_quiet
#cgo nocallback bwgo_policy_acquire_keyed_traced_quiet
#cgo noescape bwgo_policy_complete_keyed_traced_quiet
#cgo nocallback bwgo_policy_complete_keyed_traced_quiet
#cgo noescape bwgo_policy_acquire_within_quiet
#cgo nocallback bwgo_policy_acquire_within_quiet
#cgo noescape bwgo_breaker_try_acquire_quiet
#cgo nocallback bwgo_breaker_try_acquire_quiet
#cgo noescape bwgo_breaker_complete_quiet
#cgo nocallback bwgo_breaker_complete_quiet
#cgo noescape bw_clock_now
#cgo nocallback bw_clock_now

*/
import "C"
