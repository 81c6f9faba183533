package breakwater

// Option configures a constructor: LoadEngine, EngineFromTOML, NewCircuitBreaker,
// NewRateLimiter, NewBulkhead, NewRetry. Options a constructor has no use for are
// ignored (a rate limiter has no events).
type Option func(*options)

type options struct {
	clock       *ManualClock
	onEvent     func(Event)
	eventBuffer int
	seed        uint64
	seeded      bool
}

// defaultEventBuffer is how many events wait for the listener before new ones are
// dropped (and counted): the caller that caused an event never blocks on the listener.
const defaultEventBuffer = 1024

func collect(opts []Option) options {
	o := options{eventBuffer: defaultEventBuffer}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithClock makes the handle read clock instead of the system's monotonic clock.
func WithClock(clock *ManualClock) Option {
	return func(o *options) { o.clock = clock }
}

// WithEventListener delivers the handle's events (breaker transitions, rejections,
// retry budget exhaustion, reloads) to fn, one at a time on a goroutine of its own.
// The call that caused an event never waits for fn: events that find the buffer full
// are dropped and counted (DroppedEvents). Set at construction only, so the hot calls
// of handles without a listener stay free of callbacks.
func WithEventListener(fn func(Event)) Option {
	return func(o *options) { o.onEvent = fn }
}

// WithEventBuffer sets how many events may wait for the listener (default 1024).
func WithEventBuffer(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.eventBuffer = n
		}
	}
}

// WithSeed seeds the jitter of retry schedules (NewRetry, and Execute's retries), so a
// run can be replayed exactly. Without it every call draws a fresh seed.
func WithSeed(seed uint64) Option {
	return func(o *options) { o.seed, o.seeded = seed, true }
}
