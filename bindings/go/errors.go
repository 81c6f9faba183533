package breakwater

/*
#include <stdlib.h>
#include "breakwater.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Rejections: the call was answered "not now". Test with errors.Is; errors.As with a
// *RejectedError gives the policy name and the RetryAfter hint.
var (
	// ErrCircuitOpen: the circuit breaker is open.
	ErrCircuitOpen = errors.New("breakwater: circuit open")
	// ErrRateLimited: the rate limiter has no token now.
	ErrRateLimited = errors.New("breakwater: rate limited")
	// ErrBulkheadFull: every bulkhead slot is taken.
	ErrBulkheadFull = errors.New("breakwater: bulkhead full")
	// ErrLoadShed: shed by the adaptive limit or the client-side throttle.
	ErrLoadShed = errors.New("breakwater: load shed")
	// ErrRetryBudgetExhausted: the retry budget refused a retry.
	ErrRetryBudgetExhausted = errors.New("breakwater: retry budget exhausted")
	// ErrInjectedRejection: fault injection forced a rejection.
	ErrInjectedRejection = errors.New("breakwater: injected rejection")
)

// Outcomes that are not rejections.
var (
	// ErrInjectedFault: fault injection decided that this call fails; Execute skipped the
	// real call and recorded a failure.
	ErrInjectedFault = errors.New("breakwater: injected fault")
	// ErrTimeout: an attempt ran past the policy's timeout; its context was cancelled and
	// the call recorded as a timeout. Carried by *TimeoutError.
	ErrTimeout = errors.New("breakwater: attempt timed out")
)

// Errors: nothing was done.
var (
	// ErrClosed: the handle was closed.
	ErrClosed = errors.New("breakwater: handle closed")
	// ErrInvalidArgument: an argument is out of range (an unknown outcome or priority).
	ErrInvalidArgument = errors.New("breakwater: invalid argument")
	// ErrInvalidConfig: a configuration is invalid; the message names the field.
	ErrInvalidConfig = errors.New("breakwater: invalid configuration")
	// ErrNotFound: no policy has that name.
	ErrNotFound = errors.New("breakwater: no such policy")
	// ErrNeverPasses: the request can never pass (a weight above the limiter's burst).
	ErrNeverPasses = errors.New("breakwater: request can never pass")
	// ErrPermitUsed: the permit was already completed or released.
	ErrPermitUsed = errors.New("breakwater: permit already used")
	// ErrIO: a file could not be read.
	ErrIO = errors.New("breakwater: cannot read file")
	// ErrNoStage: the policy has no such stage (e.g. no circuit breaker to force open).
	ErrNoStage = errors.New("breakwater: policy has no such stage")
	// ErrHostSegment: a host-wide segment (scope = "host") could not be used: another
	// configuration or layout under the same segment name, a corrupt or foreign
	// segment. The message starts with the cause (config_mismatch, not_owner, ...). It
	// is also an ErrInvalidConfig for errors.Is.
	ErrHostSegment = fmt.Errorf("breakwater: host segment unusable: %w", ErrInvalidConfig)
	// ErrInternal: the library caught a panic or answered with an unexpected status.
	ErrInternal = errors.New("breakwater: internal error")
)

// RejectedError is a rejection with its context: which policy (empty for standalone
// handles), why (one of the rejection sentinels, matched by errors.Is) and when a new
// attempt may pass (0 when unknown).
type RejectedError struct {
	Policy     string
	Reason     error
	RetryAfter time.Duration
	// Last is the error of the last attempt when a retry loop gave up because the retry
	// budget refused another attempt; nil otherwise. errors.Is sees it too.
	Last error
}

func (e *RejectedError) Error() string {
	msg := e.Reason.Error()
	if e.Policy != "" {
		msg = fmt.Sprintf("%s (policy %q)", msg, e.Policy)
	}
	if e.RetryAfter > 0 {
		msg = fmt.Sprintf("%s, retry after %v", msg, e.RetryAfter)
	}
	if e.Last != nil {
		msg = fmt.Sprintf("%s; last attempt: %v", msg, e.Last)
	}
	return msg
}

// Unwrap gives the reason sentinel and, after a budget refusal, the last attempt's error.
func (e *RejectedError) Unwrap() []error {
	if e.Last != nil {
		return []error{e.Reason, e.Last}
	}
	return []error{e.Reason}
}

// TimeoutError says that an attempt ran past the policy's timeout. errors.Is matches
// ErrTimeout and whatever the call returned (usually context.DeadlineExceeded).
type TimeoutError struct {
	Policy  string
	Timeout time.Duration
	Err     error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("breakwater: policy %q: attempt timed out after %v: %v", e.Policy, e.Timeout, e.Err)
}

// Unwrap gives ErrTimeout and the call's own error.
func (e *TimeoutError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrTimeout}
	}
	return []error{ErrTimeout, e.Err}
}

// Error is an error status of the library: Op names the Go operation, Message is the
// library's explanation (naming the policy, field and reason for configurations), and
// errors.Is matches the sentinel of the status (ErrInvalidConfig, ErrNotFound, ...).
type Error struct {
	Op      string
	Status  int
	Message string
	kind    error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("breakwater: %s: %v", e.Op, e.kind)
	}
	return fmt.Sprintf("breakwater: %s: %s", e.Op, e.Message)
}

// Unwrap gives the sentinel of the status.
func (e *Error) Unwrap() error { return e.kind }

// rejectionReason maps a rejection status to its sentinel; nil for other statuses.
func rejectionReason(status C.bw_status) error {
	switch status {
	case C.BW_CIRCUIT_OPEN:
		return ErrCircuitOpen
	case C.BW_RATE_LIMITED:
		return ErrRateLimited
	case C.BW_BULKHEAD_FULL:
		return ErrBulkheadFull
	case C.BW_LOAD_SHED:
		return ErrLoadShed
	case C.BW_RETRY_BUDGET_EXHAUSTED:
		return ErrRetryBudgetExhausted
	case C.BW_INJECTED_REJECTION:
		return ErrInjectedRejection
	}
	return nil
}

func statusKind(status C.bw_status) error {
	switch status {
	case C.BW_INVALID_ARGUMENT:
		return ErrInvalidArgument
	case C.BW_NULL_POINTER:
		return ErrClosed // the Go side never passes NULL except for a handle that is gone
	case C.BW_INVALID_CONFIG:
		return ErrInvalidConfig
	case C.BW_NOT_FOUND:
		return ErrNotFound
	case C.BW_NEVER_PASSES:
		return ErrNeverPasses
	case C.BW_PERMIT_ALREADY_USED:
		return ErrPermitUsed
	case C.BW_IO_ERROR:
		return ErrIO
	case C.BW_NO_STAGE:
		return ErrNoStage
	case C.BW_HOST_SEGMENT:
		return ErrHostSegment
	}
	if reason := rejectionReason(status); reason != nil {
		return reason
	}
	return ErrInternal
}

// statusError is the error of a status without the thread's message: for hot paths,
// where the goroutine may have moved to another thread since the call.
func statusError(op string, status C.bw_status) error {
	if status == C.BW_OK {
		return nil
	}
	return &Error{Op: op, Status: int(status), Message: C.GoString(C.bw_status_str(C.int32_t(status))), kind: statusKind(status)}
}

// withMessage runs a cold C call with the goroutine locked to its thread, so that the
// library's thread-local message read after a failure is this call's message.
func withMessage(op string, call func() C.bw_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := call()
	if status == C.BW_OK {
		return nil
	}
	message := C.GoString(C.bw_status_str(C.int32_t(status)))
	if n := C.bw_last_error_message(nil, 0); status >= 100 && n > 0 {
		buf := C.malloc(n + 1)
		defer C.free(buf)
		C.bw_last_error_message((*C.char)(buf), n+1)
		message = C.GoStringN((*C.char)(buf), C.int(n))
	}
	return &Error{Op: op, Status: int(status), Message: message, kind: statusKind(status)}
}

// cString copies s into C memory; free it with freeString.
func cString(s string) *C.char { return C.CString(s) }

func freeString(s *C.char) { C.free(unsafe.Pointer(s)) }
