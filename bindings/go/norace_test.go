//go:build !race

package breakwater_test

// raceEnabled: see race_test.go.
const raceEnabled = false
