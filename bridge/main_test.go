package bridge_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind (OCP
// receivers, milter sessions, spool writers).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
