// Package testenv holds what the tests of several packages share: the test
// database's URL, the shared invalid needs profiles and the test
// directory. Only tests import it.
package testenv

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/seal"
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

// Org is an organisation of a test directory, with one service meeting
// Needs.
type Org struct {
	ID    string
	Needs []string
}

// Directory returns a directory of orgs in Portugal, each with one remote
// service for its needs (pt and en, by phone and in person), open always
// and accepting, and an age key pair whose recipient it publishes; the
// keys are put in keys, by organisation.
func Directory(t testing.TB, orgs []Org, keys map[string]seal.Key) *directory.Directory {
	t.Helper()
	d := &directory.Directory{}
	for _, o := range orgs {
		k, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[o.ID] = k
		d.Organisations = append(d.Organisations, directory.Organisation{
			ID: o.ID, Name: "Test " + o.ID, Country: "pt", Languages: []string{"pt", "en"},
			AgeRecipient: k.Recipient, Synthetic: true,
		})
		d.Services = append(d.Services, directory.Service{
			ID: o.ID + ".support", Organisation: o.ID, Name: "Support", Status: directory.StatusActive,
			Needs: o.Needs, Languages: []string{"pt", "en"},
			Channels: []string{events.ChannelPhone, events.ChannelInPerson},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"},
		})
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		t.Fatalf("test directory: %v", err)
	}
	return d
}

// Request returns a referral.requested payload for needs: urgent, in
// Lisbon (PT17), in Portuguese, by phone, an adult, with consent given at
// givenAt.
func Request(givenAt time.Time, needs ...string) *events.Requested {
	return &events.Requested{
		Profile: events.Profile{
			Needs:     needs,
			Urgency:   events.UrgencyUrgent,
			Location:  events.Location{Country: "pt", Region: "PT17"},
			Languages: []string{"pt"},
			AgeBand:   "adult",
			Channels:  []string{events.ChannelPhone},
		},
		Consent: events.Consent{Referral: true, ShareData: true, GivenAt: givenAt, Method: "verbal", RecordedBy: "staff-s001"},
	}
}

// SyncBuffer is a buffer safe for concurrent writes, such as a logger's
// in a test.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
