package breakwater_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	breakwater "breakwater.example/go"
)

func ExamplePolicy_Execute() {
	engine, err := breakwater.EngineFromTOML(`
[policies.payments]
timeout = "2s"
[policies.payments.circuit_breaker]
minimum_calls = 10
[policies.payments.retry]
max_attempts = 3
backoff = { initial = "1ms", multiplier = 2.0, max = "10ms" }
`)
	if err != nil {
		panic(err)
	}
	defer engine.Close()
	payments, _ := engine.Policy("payments")
	attempts := 0
	err = payments.Execute(context.Background(), func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			return errors.New("connection reset")
		}
		return nil
	})
	fmt.Println(err, attempts)
	// Output: <nil> 2
}

func ExamplePolicy_ExecuteKey() {
	clock := breakwater.NewManualClock(0) // a frozen clock, for an exact RetryAfter
	engine, _ := breakwater.EngineFromTOML(`
[policies.api.per_key]
rate = 2
period = "1m"
`, breakwater.WithClock(clock))
	defer engine.Close()
	api, _ := engine.Policy("api")
	handle := func(context.Context) error { return nil }
	for _, tenant := range []string{"acme", "acme", "acme", "globex"} {
		err := api.ExecuteKey(context.Background(), []byte(tenant), handle)
		var rejected *breakwater.RejectedError
		if errors.As(err, &rejected) {
			fmt.Println(tenant, "rejected:", errors.Is(err, breakwater.ErrRateLimited), "retry after", rejected.RetryAfter)
			continue
		}
		fmt.Println(tenant, "served")
	}
	// Output:
	// acme served
	// acme served
	// acme rejected: true retry after 30s
	// globex served
}

func ExamplePolicy_Allow() {
	engine, _ := breakwater.EngineFromTOML("[policies.db.bulkhead]\nmax_concurrent = 1\n")
	db, _ := engine.Policy("db")
	done, err := db.Allow()
	if err != nil {
		panic(err)
	}
	_, err = db.Allow()
	fmt.Println(errors.Is(err, breakwater.ErrBulkheadFull))
	done(breakwater.OutcomeOf(nil))
	// Output: true
}

func ExampleDo() {
	engine, _ := breakwater.EngineFromTOML("[policies.api.rate_limiter]\nrate = 100\nperiod = \"1s\"\n")
	api, _ := engine.Policy("api")
	price, err := breakwater.Do(context.Background(), api, func(ctx context.Context) (int, error) {
		return 42, nil
	})
	fmt.Println(price, err)
	// Output: 42 <nil>
}

func ExampleRateLimiter_Allow() {
	clock := breakwater.NewManualClock(time.Second)
	limiter, _ := breakwater.NewRateLimiter(breakwater.RateLimiterConfig{Rate: 2, Period: time.Second}, breakwater.WithClock(clock))
	fmt.Println(limiter.Allow(), limiter.Allow(), limiter.Allow())
	err := limiter.AllowN(1)
	var rejected *breakwater.RejectedError
	if errors.As(err, &rejected) {
		fmt.Println("retry after", rejected.RetryAfter)
	}
	clock.Advance(500 * time.Millisecond)
	fmt.Println(limiter.Allow())
	// Output:
	// true true false
	// retry after 500ms
	// true
}

func ExampleBulkhead_Acquire() {
	bulkhead, _ := breakwater.NewBulkhead(breakwater.BulkheadConfig{MaxConcurrent: 2, MaxWait: time.Second})
	ctx := context.Background()
	if err := bulkhead.Acquire(ctx); err != nil {
		panic(err)
	}
	defer bulkhead.Release()
	fmt.Println(bulkhead.InFlight(), bulkhead.Available())
	// Output: 1 1
}

func ExampleNewCircuitBreaker() {
	clock := breakwater.NewManualClock(time.Second)
	breaker, _ := breakwater.NewCircuitBreaker(breakwater.CircuitBreakerConfig{ConsecutiveFailures: 1, OpenDuration: 10 * time.Second, HalfOpenPermits: 1},
		breakwater.WithClock(clock))
	done, _ := breaker.Allow()
	done(breakwater.Failure)
	_, err := breaker.Allow()
	fmt.Println(breaker.State(), errors.Is(err, breakwater.ErrCircuitOpen))
	clock.Advance(10 * time.Second)
	done, err = breaker.Allow()
	fmt.Println(breaker.State(), err)
	done(breakwater.Success)
	fmt.Println(breaker.State())
	// Output:
	// open true
	// half_open <nil>
	// closed
}

func ExampleWithEventListener() {
	transitions := make(chan breakwater.Event, 4)
	engine, _ := breakwater.EngineFromTOML("[policies.payments.circuit_breaker]\nminimum_calls = 5\n",
		breakwater.WithEventListener(func(e breakwater.Event) { transitions <- e }))
	payments, _ := engine.Policy("payments")
	payments.ForceOpen()
	e := <-transitions
	fmt.Println(e.Kind, e.Policy, e.From, "->", e.To)
	// Output: transition payments closed -> forced_open
}
