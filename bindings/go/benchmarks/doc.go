// Package benchmarks runs breakwater's Go hot paths beside the peers a Go service would
// otherwise use (golang.org/x/time/rate, sony/gobreaker/v2, failsafe-go) in the same
// `go test -bench` run, so each result reads as a ratio. A separate module, so the
// breakwater module itself depends on nothing.
package benchmarks
