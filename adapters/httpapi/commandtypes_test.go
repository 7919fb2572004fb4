package httpapi_test

import (
	"slices"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/referral"
)

// POST /v1/events accepts the commands the router decides, no more and no
// fewer: one list (referral.CommandTypes; its own test ties it to Decide).
func TestCommandTypesAreTheRoutersCommands(t *testing.T) {
	t.Parallel()
	if !slices.Equal(httpapi.CommandTypes, referral.CommandTypes) {
		t.Errorf("httpapi.CommandTypes %v, referral.CommandTypes %v", httpapi.CommandTypes, referral.CommandTypes)
	}
}
