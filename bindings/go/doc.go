// Package breakwater is the Go face of breakwater, an embedded resilience runtime: circuit
// breakers, rate limiters, bulkheads, adaptive concurrency limits, retries with budgets,
// timeouts and fault injection, from one engine shared with Rust, C and Python (the
// same policy file gives the same behaviour in every language).
//
// The package links the engine's static library through cgo, so a Go binary has no
// run-time dependency on it.
//
// # Shapes
//
//   - An Engine loads named policies from a policy file (LoadEngine, EngineFromTOML) and
//     reloads them atomically; Engine.Policy hands out a Policy that follows reloads.
//   - Policy.Execute(ctx, fn) runs fn with retries, backoff sleeps and bulkhead waits
//     that end with ctx, a per-attempt timeout that cancels the attempt's context, and
//     an optional fallback; Do[T] returns a value. Policy.Allow is the two-step form: done, err := Allow(),
//     then done(outcome).
//   - Per-key limits (a policy's per_key section): Policy.AllowKey, ExecuteKey and DoKey
//     give each key (client, API key, tenant: any bytes) its own quota and concurrency.
//   - Standalone handles: NewCircuitBreaker, NewRateLimiter (Allow, Reserve, Wait),
//     NewBulkhead (TryAcquire, Acquire(ctx), Release), NewRetry.
//   - Rejections are errors matching ErrCircuitOpen, ErrRateLimited, ErrBulkheadFull,
//     ErrLoadShed, ErrRetryBudgetExhausted with errors.Is; errors.As with a
//     *RejectedError gives the policy name and RetryAfter.
//   - Tests drive time with a ManualClock (WithClock).
//   - Observability: Stats snapshots, Engine.Prometheus, Engine.Health, and events
//     delivered to a func (WithEventListener) without ever blocking the caller.
//
// # Lifetimes
//
// Every handle has an idempotent Close after which its methods return ErrClosed. The
// library's memory is released by a cleanup (runtime.AddCleanup) once the handle is
// unreachable, so a method still running on another goroutine can never see freed
// memory; each method keeps its handle alive across its C call (runtime.KeepAlive).
//
// # Cost
//
// The hot calls (Policy.Execute and Allow's acquire and complete, RateLimiter.Allow,
// Bulkhead.TryAcquire/Release) are marked #cgo noescape and nocallback, so the permit
// stays on the goroutine's stack and a successful Execute allocates nothing. A handle
// with an event listener uses the plain calls instead (the listener runs Go code from
// inside them), which point into a pooled scratch rather than at the stack, so they
// allocate nothing either.
package breakwater
