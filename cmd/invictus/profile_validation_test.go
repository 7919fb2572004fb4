package main

import (
	"strings"
	"testing"

	"github.com/invictus-network/invictus/internal/testenv"
)

// invictus match and invictus refer reject the same profiles with the same
// pointers (both relative to the profile, as the CLI reports them); POST
// /v1/match is checked on the same file in adapters/httpapi.
func TestMatchAndReferRejectTheSameProfiles(t *testing.T) {
	t.Parallel()
	for _, c := range testenv.InvalidProfiles(t) {
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
