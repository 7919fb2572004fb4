package natsjs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// embedded server, connection and consumer must be shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
