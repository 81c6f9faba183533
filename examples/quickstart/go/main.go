// A breaker-protected call from Go with the breakwater module: a flaky dependency trips
// the breaker, later calls are rejected with errors.Is-able errors and a retry-after hint.
//
// In the repository: make -C bindings/c lib && (cd examples/quickstart/go && go run .)
// Outside it, the same file builds against the dist layout (bindings/go/README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	breakwater "breakwater.example/go"
)

const policies = `
[policies.payments.circuit_breaker]
window = { type = "count", size = 4 }
minimum_calls = 4
failure_rate_threshold = 50
open_duration = "30s"
`

var errFlaky = errors.New("payment service failed")

func main() {
	engine, err := breakwater.EngineFromTOML(policies)
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	payments, err := engine.Policy("payments")
	if err != nil {
		log.Fatal(err)
	}
	defer payments.Close()

	for i := 0; i < 6; i++ {
		err := payments.Execute(context.Background(), func(ctx context.Context) error {
			if i%2 == 1 { // a flaky dependency
				return errFlaky
			}
			return nil
		})
		var rejected *breakwater.RejectedError
		switch {
		case errors.As(err, &rejected):
			fmt.Printf("call %d: rejected: %v (retry after %v)\n", i, rejected.Reason, rejected.RetryAfter)
		case err != nil:
			fmt.Printf("call %d: failed: %v\n", i, err)
		default:
			fmt.Printf("call %d: ok\n", i)
		}
	}
	stats, err := payments.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("breaker %v after %d permitted, %d rejected\n", stats.BreakerState, stats.Permitted, stats.RejectedCircuitOpen)
}
