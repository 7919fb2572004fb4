package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// sharedInvalidProfiles reads the invalid profiles every way in must
// reject at the same pointer (events/testdata/invalid_profiles.json).
func sharedInvalidProfiles(t *testing.T) []struct {
	Name    string          `json:"name"`
	Pointer string          `json:"pointer"`
	Profile json.RawMessage `json:"profile"`
} {
	t.Helper()
	raw, err := os.ReadFile("../../events/testdata/invalid_profiles.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Name    string          `json:"name"`
			Pointer string          `json:"pointer"`
			Profile json.RawMessage `json:"profile"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

// invictus match and invictus refer reject the same profiles with the same
// pointers (both relative to the profile, as the CLI reports them); POST
// /v1/match is checked on the same file in adapters/httpapi.
func TestMatchAndReferRejectTheSameProfiles(t *testing.T) {
	t.Parallel()
	for _, c := range sharedInvalidProfiles(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := cliRun(t, "match", writeFile(t, "p.json", c.Profile), "--demo")
			if code == exitOK || !strings.Contains(errOut, " "+c.Pointer+" ") {
				t.Errorf("match: exit %d, %q; want a rejection at %s", code, errOut, c.Pointer)
			}
			req := strings.TrimSuffix(strings.TrimSpace(string(c.Profile)), "}") +
				`,"consent":{"referral":true,"share_data":true,"given_at":"2026-11-26T10:00:00Z","method":"verbal","recorded_by":"staff-s017"}}`
			// Refer validates before it connects: the port is never dialled.
			code, _, errOut = cliRun(t, "refer", writeFile(t, "r.json", []byte(req)), "--nats-url", "nats://127.0.0.1:1")
			if code == exitOK || !strings.Contains(errOut, " "+c.Pointer+" ") {
				t.Errorf("refer: exit %d, %q; want a rejection at %s", code, errOut, c.Pointer)
			}
		})
	}
}
