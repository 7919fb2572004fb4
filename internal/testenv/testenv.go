// Package testenv holds what the tests of several packages share: the test
// database's URL and the shared invalid needs profiles. Only tests import
// it.
package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvDatabaseURL names the environment variable holding the URL of a
// PostgreSQL database in which the tests may create and drop schemas.
const EnvDatabaseURL = "INVICTUS_TEST_DATABASE_URL"

// DatabaseURL returns the test database's URL. Without one the test is
// skipped with instructions, except in CI (CI=true), where it fails.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvDatabaseURL)
	if u == "" {
		msg := EnvDatabaseURL + " is not set: set it to a PostgreSQL database in which the tests may create and drop schemas, " +
			"e.g. " + EnvDatabaseURL + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

// InvalidProfile is one case of events/testdata/invalid_profiles.json: a
// needs profile every way in must reject with a problem at Pointer.
type InvalidProfile struct {
	Name    string          `json:"name"`
	Pointer string          `json:"pointer"`
	Profile json.RawMessage `json:"profile"`
}

// InvalidProfiles reads the shared invalid profiles.
func InvalidProfiles(t testing.TB) []InvalidProfile {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: no caller information")
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "events", "testdata", "invalid_profiles.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []InvalidProfile `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("testenv: invalid_profiles.json has no cases")
	}
	return doc.Cases
}
