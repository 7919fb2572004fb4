package events_test

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/invictus-network/invictus/events"
)

func TestNUTSVersions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cc, code string
		known    bool
		as2021   string
	}{
		{"pt", "PT17", true, "PT17"},   // NUTS 2021: Área Metropolitana de Lisboa
		{"pt", "PT170", true, "PT170"}, // its one NUTS 3 region
		{"pt", "PT1A", true, "PT17"},   // NUTS 2024: Grande Lisboa, split from PT17
		{"pt", "PT1B", true, "PT17"},   // NUTS 2024: Península de Setúbal, split from PT17
		{"pt", "PT1B0", true, "PT170"},
		{"pt", "PT191", true, "PT16D"}, // Região de Aveiro, renumbered
		{"pt", "PT1D", true, "PT1"},    // straddles PT16 and PT18: their parent
		{"pt", "PT1D3", true, "PT185"}, // Lezíria do Tejo moved from Alentejo
		{"pt", "PT11A", true, "PT11A"}, // unchanged
		{"pt", "PT71", false, "PT71"},  // a typo for PT17
		{"pt", "PT99", false, "PT99"},
		{"pt", "FR101", false, "FR101"}, // another country's
		{"fr", "FR101", true, "FR101"},  // not tabulated: prefix only
		{"fr", "PT170", false, "PT170"},
		{"fr", "FR999", true, "FR999"}, // well-formed: no complete list of France (README, Schemas)
		{"gr", "EL30", true, "EL30"},   // Greece's NUTS prefix is EL
		{"gr", "GR30", false, "GR30"},
	} {
		if got := events.IsKnownNUTS(tt.cc, tt.code); got != tt.known {
			t.Errorf("IsKnownNUTS(%s, %s) = %v, want %v", tt.cc, tt.code, got, tt.known)
		}
		if got := events.NUTS2021Of(tt.code); got != tt.as2021 {
			t.Errorf("NUTS2021Of(%s) = %s, want %s", tt.code, got, tt.as2021)
		}
	}
}

// invalidProfiles are the shared cases of events/testdata/invalid_profiles.json.
type invalidProfiles struct {
	Cases []struct {
		Name    string          `json:"name"`
		Pointer string          `json:"pointer"`
		Profile json.RawMessage `json:"profile"`
	} `json:"cases"`
}

// The shared invalid profiles fail ValidateProfile at their pointer; the
// CLI and HTTP tests check that match, refer and POST /v1/match say the
// same.
func TestInvalidProfilesFailAtTheirPointer(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/invalid_profiles.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc invalidProfiles
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Cases {
		var p events.Profile
		if err := json.Unmarshal(c.Profile, &p); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		var ve *events.ValidationError
		if err := events.ValidateProfile(p); !errors.As(err, &ve) || !slices.ContainsFunc(ve.Problems, func(pr events.Problem) bool { return pr.Pointer == c.Pointer }) {
			t.Errorf("%s: %v, want a problem at %s", c.Name, err, c.Pointer)
		}
	}
}
