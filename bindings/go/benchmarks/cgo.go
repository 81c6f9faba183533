package benchmarks

// The price of the cgo crossing itself, to read the other numbers against.

/*
static inline int bench_noop(void) { return 0; }
#cgo noescape bench_noop
#cgo nocallback bench_noop
*/
import "C"

func cgoNoop() int { return int(C.bench_noop()) }
