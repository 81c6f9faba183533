package breakwater

import (
	"errors"
	"testing"
)

func TestABIVersionCheck(t *testing.T) {
	if errABI != nil {
		t.Fatalf("the library linked in the test binary: %v", errABI)
	}
	if err := checkABI(1, 2); !errors.Is(err, ErrInternal) {
		t.Fatalf("a mismatch must be refused: %v", err)
	}
	if Version() == "" {
		t.Fatal("no version")
	}
}
