package breakwater

/*
#include "breakwater.h"
*/
import "C"

import "fmt"

// Version is the linked library's version ("0.1.0").
func Version() string { return C.GoString(C.bw_version()) }

// errABI is set when the linked library's ABI is not the one this package was compiled
// against (a dist module mixed with another version's library): every constructor then
// refuses with it, rather than misread a struct.
var errABI = checkABI(uint32(C.bw_abi_version()), C.BW_ABI_VERSION)

func checkABI(linked, compiled uint32) error {
	if linked == compiled {
		return nil
	}
	return &Error{Op: "load", Message: fmt.Sprintf("the linked library has ABI %d, this package was built for ABI %d", linked, compiled), kind: ErrInternal}
}
