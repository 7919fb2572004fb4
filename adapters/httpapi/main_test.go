package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// server, stream, dispatcher and connection must be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
