package benchmarks

// The price of the cgo crossing itself, and the least that any limiter with one exact
// shared state can cost from Go, to read the other numbers against.

/*
#include <stdint.h>

static inline int bench_noop(void) { return 0; }

// One word every caller writes, alone on its cache line: what an exact limiter shared
// by all its callers must at least do on every admission.
static _Alignas(128) uint64_t bench_shared_word;
static inline void bench_shared_add(void) {
	__atomic_fetch_add(&bench_shared_word, 1, __ATOMIC_RELAXED);
}

#cgo noescape bench_noop
#cgo nocallback bench_noop
#cgo noescape bench_shared_add
#cgo nocallback bench_shared_add
*/
import "C"

func cgoNoop() int { return int(C.bench_noop()) }

func cgoSharedAdd() { C.bench_shared_add() }
