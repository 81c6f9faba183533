// A breaker-protected call from Go through the C ABI (cgo). The Go module with
// errors.Is, context and Execute comes with the Go bindings; this is the layer under it.
// Run: make -C bindings/c lib && (cd examples/quickstart/go && go run .)
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: ${SRCDIR}/../../../target/release/libbreakwater.a -lpthread -ldl -lm
#include <stdlib.h>
#include "breakwater.h"
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

func main() {
	policies := C.CString("[policies.payments.circuit_breaker]\nminimum_calls = 4\nfailure_rate_threshold = 50\n")
	defer C.free(unsafe.Pointer(policies))
	name := C.CString("payments")
	defer C.free(unsafe.Pointer(name))

	var engine *C.bw_engine
	if status := C.bw_engine_from_toml(policies, nil, &engine); status != C.BW_OK {
		panic(C.GoString(C.bw_status_str(C.int32_t(status))))
	}
	defer C.bw_engine_free(engine)
	var payments *C.bw_policy
	if status := C.bw_engine_policy(engine, name, &payments); status != C.BW_OK {
		panic(C.GoString(C.bw_status_str(C.int32_t(status))))
	}
	defer C.bw_policy_free(payments)

	for i := 0; i < 6; i++ {
		var permit C.bw_permit
		var retryAfter C.uint64_t
		status := C.bw_policy_acquire(payments, C.BW_PRIORITY_DEFAULT, &permit, &retryAfter)
		if status != C.BW_OK {
			fmt.Printf("call %d: %s, retry after %v\n", i, C.GoString(C.bw_status_str(C.int32_t(status))), time.Duration(retryAfter))
			continue
		}
		ok := i%2 == 0 // a flaky dependency
		outcome := C.int32_t(C.BW_OUTCOME_SUCCESS)
		if !ok {
			outcome = C.BW_OUTCOME_FAILURE
		}
		C.bw_policy_complete(payments, &permit, outcome, C.BW_DURATION_UNKNOWN)
		fmt.Printf("call %d: ok=%v\n", i, ok)
	}
}
