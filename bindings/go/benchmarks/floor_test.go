package benchmarks

import "testing"

// Floors: what any binding of one shared C engine pays before the engine does any
// work, to read the goals against.

// BenchmarkFloorSharedAddParallel is one crossing and one atomic add on one shared word
// per call (RunParallel): the least an exact limiter shared by all callers costs from
// Go, since every admission must write its one state, and the word's cache line then
// moves between the cores on every call. With -cpu 2 it takes longer than our whole
// AllowParallel (which reads before it writes) and more than 0.5× x/time/rate's.
func BenchmarkFloorSharedAddParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cgoSharedAdd()
		}
	})
}

// BenchmarkFloorNoopParallel is the crossing alone from every goroutine: it scales, so
// the contended cost above is the shared word's, not cgo's.
func BenchmarkFloorNoopParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cgoNoop()
		}
	})
}

// BenchmarkFloorTwoNoops is two crossings: the least Execute can cost, since the user's
// function runs between the acquire and the completion (a C call back into Go costs
// more than a second crossing).
func BenchmarkFloorTwoNoops(b *testing.B) {
	for b.Loop() {
		cgoNoop()
		cgoNoop()
	}
}

// BenchmarkFloorTwoCrossingsOneAdd adds the one atomic read-modify-write a breaker's
// completion needs at least (its window of recent calls is shared by every caller),
// uncontended: the floor of Execute on a breaker policy.
func BenchmarkFloorTwoCrossingsOneAdd(b *testing.B) {
	for b.Loop() {
		cgoNoop()
		cgoSharedAdd()
	}
}
