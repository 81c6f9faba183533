package breakwater_test

import (
	"errors"
	"strings"
	"testing"

	breakwater "breakwater.example/go"
)

func mustEngine(t *testing.T, toml string, opts ...breakwater.Option) *breakwater.Engine {
	t.Helper()
	engine, err := breakwater.EngineFromTOML(toml, opts...)
	if err != nil {
		t.Fatalf("EngineFromTOML: %v", err)
	}
	t.Cleanup(func() { engine.Close() })
	return engine
}

func mustPolicy(t *testing.T, engine *breakwater.Engine, name string) *breakwater.Policy {
	t.Helper()
	policy, err := engine.Policy(name)
	if err != nil {
		t.Fatalf("Policy(%q): %v", name, err)
	}
	t.Cleanup(func() { policy.Close() })
	return policy
}

func mustStats(t *testing.T, policy *breakwater.Policy) breakwater.PolicyStats {
	t.Helper()
	stats, err := policy.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return stats
}

// wantErr checks errors.Is and, when mention is not empty, that the message names it.
func wantErr(t *testing.T, err, target error, mention string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want an error matching %v", err, target)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Fatalf("error %q does not mention %q", err, mention)
	}
}

var errDependency = errors.New("dependency failed")
