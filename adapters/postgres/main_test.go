package postgres_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// relay, inbox, projection, pool, connection and server must be stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
