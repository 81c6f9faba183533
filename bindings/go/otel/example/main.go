// Command example exports an engine's instruments to the console (docs/telemetry.md).
package main

import (
	"context"
	"errors"

	breakwater "breakwater.example/go"
	bwotel "breakwater.example/go/otel"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func main() {
	exporter, _ := stdoutmetric.New(stdoutmetric.WithPrettyPrint())
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exporter)))
	engine, _ := breakwater.EngineFromTOML("[policies.payments.bulkhead]\nmax_concurrent = 8\n")
	payments, _ := engine.Policy("payments")
	registration, _ := bwotel.RegisterEngine(provider.Meter(bwotel.MeterName), engine)
	bwotel.Install() // Execute attaches the span of its ctx to each call

	for n := 0; n < 10; n++ {
		_ = payments.Execute(context.Background(), func(context.Context) error {
			if n%3 == 0 {
				return errors.New("declined")
			}
			return nil
		})
	}
	_ = provider.Shutdown(context.Background()) // collects and prints once
	_ = registration.Unregister()
	payments.Close()
	engine.Close()
}
