package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

// A case file sent unsealed by mistake must not come back in a problem's
// message: problems travel in command.rejected, DLQ headers and logs.
func TestProblemDoesNotEchoEnvelope(t *testing.T) {
	t.Parallel()
	const secret = "Maria Silva, Rua das Flores 12"
	h := events.SamplePayload(events.TypeReferralHandover).(*events.Handover)
	h.Envelope = "Name: " + secret + ", safe to call after 6pm"

	err := events.ValidatePayload(h)
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ValidatePayload = %v, want a *ValidationError", err)
	}
	if got := ve.Problems[0].Pointer; got != "/data/envelope" {
		t.Errorf("pointer = %q, want /data/envelope", got)
	}
	if strings.Contains(err.Error(), "Maria") {
		t.Errorf("ValidatePayload error echoes the envelope: %v", err)
	}

	// The same through Decode, as the router and the HTTP API see it.
	m := sampleMessage(t, events.TypeReferralHandover)
	var data map[string]any
	if err := json.Unmarshal(m.Data, &data); err != nil {
		t.Fatal(err)
	}
	data["envelope"] = h.Envelope
	m.Data, _ = json.Marshal(data)
	_, err = events.Decode(m)
	if !errors.As(err, &ve) || ve.Problems[0].Pointer != "/data/envelope" {
		t.Fatalf("Decode = %v, want a problem at /data/envelope", err)
	}
	if strings.Contains(err.Error(), "Maria") {
		t.Errorf("Decode error echoes the envelope: %v", err)
	}
}
