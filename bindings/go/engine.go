package breakwater

/*
#include "bwgo.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"sync/atomic"
)

// Engine is a registry of named policies loaded from a policy file (TOML). Every
// language loads the same file and gets the same behaviour. An Engine is safe for
// concurrent use.
type Engine struct {
	ptr    *C.bw_engine
	closed atomic.Bool
	shared *engineShared
}

// engineShared is what an engine's policies share with it.
type engineShared struct {
	refs refs
	// listening is fixed at construction: policies of a listening engine use the calls
	// that may run the Go listener.
	listening bool
	// reloads counts this engine's reloads; a policy re-reads the configuration it caches
	// (timeout, retry classes) when it sees a new count.
	reloads atomic.Uint64
}

// LoadEngine loads the policy file at path. Errors: ErrIO when it cannot be read,
// ErrInvalidConfig (the message names every error's policy, field and line).
func LoadEngine(path string, opts ...Option) (*Engine, error) {
	if errABI != nil {
		return nil, errABI
	}
	cpath := cString(path)
	defer freeString(cpath)
	o := collect(opts)
	var ptr *C.bw_engine
	if err := withMessage("LoadEngine", func() C.bw_status {
		return C.bw_engine_from_path(cpath, o.clock.cptr(), &ptr)
	}); err != nil {
		return nil, err
	}
	runtime.KeepAlive(o.clock)
	return newEngine(ptr, o)
}

// EngineFromTOML builds an engine from the text of a policy file.
func EngineFromTOML(text string, opts ...Option) (*Engine, error) {
	if errABI != nil {
		return nil, errABI
	}
	ctext := cString(text)
	defer freeString(ctext)
	o := collect(opts)
	var ptr *C.bw_engine
	if err := withMessage("EngineFromTOML", func() C.bw_status {
		return C.bw_engine_from_toml(ctext, o.clock.cptr(), &ptr)
	}); err != nil {
		return nil, err
	}
	runtime.KeepAlive(o.clock)
	return newEngine(ptr, o)
}

func newEngine(ptr *C.bw_engine, o options) (*Engine, error) {
	shared := &engineShared{listening: o.onEvent != nil}
	shared.refs.acquire()
	if o.onEvent != nil {
		l := newListener(o.onEvent, o.eventBuffer)
		shared.refs.listener = l
		if err := withMessage("WithEventListener", func() C.bw_status {
			return C.bw_engine_set_listener(ptr, C.bwgo_listener(), C.bwgo_handle_data(C.uintptr_t(l.handle)))
		}); err != nil {
			C.bw_engine_free(ptr)
			l.close()
			return nil, err
		}
	}
	e := &Engine{ptr: ptr, shared: shared}
	runtime.AddCleanup(e, releaseEngine, engineRelease{ptr, shared})
	return e, nil
}

type engineRelease struct {
	ptr    *C.bw_engine
	shared *engineShared
}

func releaseEngine(r engineRelease) {
	C.bw_engine_free(r.ptr)
	r.shared.refs.release()
}

// Close marks the engine closed: every later call returns ErrClosed. Policies looked up
// before keep working. The library's reference is dropped by the cleanup once the Engine
// is unreachable, so a call still running on another goroutine never sees freed memory.
// Idempotent.
func (e *Engine) Close() error {
	e.closed.Store(true)
	return nil
}

// Policy returns the policy name. The handle follows reloads: after Reload changes the
// policy, its next call uses the new configuration. Look a policy up once and keep it.
func (e *Engine) Policy(name string) (*Policy, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	cname := cString(name)
	defer freeString(cname)
	var ptr *C.bw_policy
	err := withMessage("Engine.Policy", func() C.bw_status { return C.bw_engine_policy(e.ptr, cname, &ptr) })
	runtime.KeepAlive(e)
	if err != nil {
		return nil, err
	}
	return newPolicy(ptr, name, e.shared), nil
}

// PolicyNames lists the names of the engine's policies, in file order, as of now (a
// reload changes them).
func (e *Engine) PolicyNames() ([]string, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	var text *C.char
	err := withMessage("Engine.PolicyNames", func() C.bw_status { return C.bw_engine_policy_names(e.ptr, &text) })
	runtime.KeepAlive(e)
	if err != nil {
		return nil, err
	}
	defer C.bw_string_free(text)
	joined := C.GoString(text)
	if joined == "" {
		return nil, nil
	}
	return strings.Split(joined, "\n"), nil
}

// Reload replaces the engine's policies with those of a policy file's text, atomically:
// on any error nothing changes. Unchanged policies keep their state.
func (e *Engine) Reload(text string) error {
	if e.closed.Load() {
		return ErrClosed
	}
	ctext := cString(text)
	defer freeString(ctext)
	err := withMessage("Engine.Reload", func() C.bw_status { return C.bw_engine_reload_toml(e.ptr, ctext) })
	runtime.KeepAlive(e)
	if err == nil {
		e.shared.reloads.Add(1)
	}
	return err
}

// ReloadFile is Reload from the policy file at path.
func (e *Engine) ReloadFile(path string) error {
	if e.closed.Load() {
		return ErrClosed
	}
	cpath := cString(path)
	defer freeString(cpath)
	err := withMessage("Engine.ReloadFile", func() C.bw_status { return C.bw_engine_reload_path(e.ptr, cpath) })
	runtime.KeepAlive(e)
	if err == nil {
		e.shared.reloads.Add(1)
	}
	return err
}

// Prometheus is the Prometheus text exposition of every policy of the engine.
func (e *Engine) Prometheus() (string, error) {
	if e.closed.Load() {
		return "", ErrClosed
	}
	var text *C.char
	err := withMessage("Engine.Prometheus", func() C.bw_status { return C.bw_engine_prometheus(e.ptr, &text) })
	runtime.KeepAlive(e)
	if err != nil {
		return "", err
	}
	defer C.bw_string_free(text)
	return C.GoString(text), nil
}

// HealthStatus is the engine's overall health.
type HealthStatus int

// Health statuses, in order of severity.
const (
	Healthy   HealthStatus = 0
	Degraded  HealthStatus = 1
	Unhealthy HealthStatus = 2
)

func (s HealthStatus) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Unhealthy:
		return "unhealthy"
	}
	return "unknown"
}

// HealthReason is one reason of a health report.
type HealthReason struct {
	Policy string `json:"policy"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Health is the engine's health, for a service's health endpoint: JSON is the report
// as the library writes it ({"status":"...","reasons":[...]}).
type Health struct {
	Status  HealthStatus
	Reasons []HealthReason
	JSON    string
}

// Health reports the engine's health.
func (e *Engine) Health() (Health, error) {
	if e.closed.Load() {
		return Health{}, ErrClosed
	}
	var text *C.char
	var status C.int32_t
	err := withMessage("Engine.Health", func() C.bw_status { return C.bw_engine_health(e.ptr, &text, &status) })
	runtime.KeepAlive(e)
	if err != nil {
		return Health{}, err
	}
	defer C.bw_string_free(text)
	h := Health{Status: HealthStatus(status), JSON: C.GoString(text)}
	var parsed struct {
		Reasons []HealthReason `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(h.JSON), &parsed); err != nil {
		return Health{}, &Error{Op: "Engine.Health", Message: "unreadable health report: " + err.Error(), kind: ErrInternal}
	}
	h.Reasons = parsed.Reasons
	return h, nil
}

// FlushEvents waits until the engine's event listener (WithEventListener) has been
// handed every event emitted before the call, or ctx ends: events reach the listener
// on its own goroutine, so a test that checks what it received flushes first. Without
// a listener it returns at once.
func (e *Engine) FlushEvents(ctx context.Context) error {
	l := e.shared.refs.listener
	if l == nil {
		return nil
	}
	err := l.flush(ctx)
	runtime.KeepAlive(e)
	return err
}

// DroppedEvents counts the events that found the listener's buffer full.
func (e *Engine) DroppedEvents() uint64 { return e.shared.refs.dropped() }
