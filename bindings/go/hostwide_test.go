package breakwater_test

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	breakwater "breakwater.example/go"
)

// hostPolicy is a host-wide bulkhead of one under its own segment, removed after the test.
func hostPolicy(t *testing.T, maxConcurrent int) (toml string) {
	t.Helper()
	segment := fmt.Sprintf("gotest-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.Remove("/dev/shm/breakwater." + segment) })
	return fmt.Sprintf("[policies.p]\nscope = \"host\"\nsegment = %q\n[policies.p.bulkhead]\nmax_concurrent = %d\n",
		segment, maxConcurrent)
}

func TestHostScopeSharesOneBulkheadBetweenEngines(t *testing.T) {
	toml := hostPolicy(t, 1)
	first := mustPolicy(t, mustEngine(t, toml), "p")
	second := mustPolicy(t, mustEngine(t, toml), "p")

	done, err := first.Allow()
	if err != nil {
		t.Fatalf("first Allow: %v", err)
	}
	// The second engine maps the same segment: the first engine's permit fills it.
	if _, err := second.Allow(); !errors.Is(err, breakwater.ErrBulkheadFull) {
		t.Fatalf("second Allow while the first holds the slot: %v, want ErrBulkheadFull", err)
	}
	if err := done(breakwater.Success); err != nil {
		t.Fatalf("done: %v", err)
	}
	done, err = second.Allow()
	if err != nil {
		t.Fatalf("second Allow after the release: %v", err)
	}
	if err := done(breakwater.Success); err != nil {
		t.Fatalf("done: %v", err)
	}
}

func TestAnotherConfigurationUnderTheSameSegmentIsErrHostSegment(t *testing.T) {
	toml := hostPolicy(t, 1)
	mustPolicy(t, mustEngine(t, toml), "p")
	changed := toml[:len(toml)-2] + "2\n" // max_concurrent 1 -> 2 under the same segment
	_, err := breakwater.EngineFromTOML(changed)
	wantErr(t, err, breakwater.ErrHostSegment, "config_mismatch")
	wantErr(t, err, breakwater.ErrInvalidConfig, "")
}
