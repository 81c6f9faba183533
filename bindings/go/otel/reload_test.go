package otel_test

import (
	"context"
	"reflect"
	"testing"

	breakwater "breakwater.example/go"
	bwotel "breakwater.example/go/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// RegisterEngine observes what the engine holds at each collection: a policy a reload
// adds, one it changes (a breaker gained), one it removes; counters carry on across a
// change of configuration.
func TestRegisterEngineFollowsReloads(t *testing.T) {
	engine, err := breakwater.EngineFromTOML("[policies.payments.bulkhead]\nmax_concurrent = 4\n")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	registration, err := bwotel.RegisterEngine(provider.Meter(bwotel.MeterName), engine)
	if err != nil {
		t.Fatal(err)
	}
	defer registration.Unregister()
	payments, _ := engine.Policy("payments")
	defer payments.Close()
	run := func(p *breakwater.Policy, failures, successes int) {
		for i := 0; i < failures+successes; i++ {
			_ = p.Execute(context.Background(), func(context.Context) error {
				if i < failures {
					return errDependency
				}
				return nil
			})
		}
	}
	check := func(step string, policies ...*breakwater.Policy) {
		t.Helper()
		if points, want := collect(t, reader), snapshotPoints(t, policies...); !reflect.DeepEqual(points, want) {
			t.Fatalf("%s: collected\n%v\nsnapshots\n%v", step, points, want)
		}
	}
	run(payments, 2, 3)
	check("before any reload", payments)

	// search is added; payments gains a breaker (its counters carry on).
	if err := engine.Reload(`
[policies.payments.bulkhead]
max_concurrent = 4
[policies.payments.circuit_breaker]
minimum_calls = 100
[policies.search]
`); err != nil {
		t.Fatal(err)
	}
	search, _ := engine.Policy("search")
	defer search.Close()
	run(payments, 1, 1)
	run(search, 0, 2)
	check("after adding search and a breaker", payments, search)
	if s := mustStats(t, payments); s.Permitted != 7 || s.BreakerState != breakwater.Closed {
		t.Fatalf("payments %+v", s)
	}

	// payments is removed: only search is observed.
	if err := engine.Reload("[policies.search]\n"); err != nil {
		t.Fatal(err)
	}
	run(search, 1, 0)
	check("after removing payments", search)

	// payments comes back as a new policy: the new one is observed, not the removed one
	// that the old handle still holds.
	if err := engine.Reload("[policies.search]\n[policies.payments]\n"); err != nil {
		t.Fatal(err)
	}
	again, _ := engine.Policy("payments")
	defer again.Close()
	run(again, 0, 1)
	run(payments, 0, 5) // the removed policy, through the old handle
	check("after adding payments again", search, again)
	if mustStats(t, again).Permitted != 1 {
		t.Fatalf("the new payments should hold only its own call")
	}

	// A closed engine is observed as empty.
	engine.Close()
	check("after closing the engine")
}
