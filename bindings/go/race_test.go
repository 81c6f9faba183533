//go:build race

package breakwater_test

// raceEnabled: under -race, sync.Pool drops a share of what is put back (to find
// misuse), so a path through a pool allocates now and then (see allocs_test.go).
const raceEnabled = true
