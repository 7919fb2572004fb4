package events_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/invictus-network/invictus/events"
)

// Build a command: an organisation accepts the placement offered to it.
func ExampleNew() {
	e, err := events.New(
		events.SourceOf("pt.apav"),
		"0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f", // the referral id
		&events.Accepted{Placement: "p1"},
		events.WithID("0195f0c3-1111-7abc-8def-0123456789ab"),
		events.WithTime(time.Date(2025, 3, 10, 9, 31, 5, 0, time.UTC)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Type())
	fmt.Println(e.Source())
	fmt.Println(e.DataSchema())
	fmt.Println(string(e.Data()))
	// Output:
	// invictus.referral.accepted.v1
	// /orgs/pt.apav
	// urn:invictus:schema:referral.accepted.v1
	// {"placement":"p1"}
}

// Encode an event for NATS in binary content mode.
func ExampleToNATS() {
	e, err := events.New(events.SourceOf("pt.apav"), "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f",
		&events.Declined{Placement: "p1", Reason: "capacity"},
		events.WithID("0195f0c3-1111-7abc-8def-0123456789ab"),
		events.WithTime(time.Date(2025, 3, 10, 9, 31, 5, 0, time.UTC)),
		events.WithCorrelationID("offer-7"),
		events.WithTraceState("vendor=offer 7"), // percent-encoded in its header
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	subject, err := events.InboundSubject("pt.apav")
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := events.ToNATS(subject, e)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Subject)
	for _, k := range slices.Sorted(maps.Keys(m.Header)) {
		fmt.Printf("%s: %s\n", k, m.Header[k][0])
	}
	fmt.Println(string(m.Data))
	// Output:
	// in.pt.apav
	// Content-Type: application/json
	// ce-correlationid: offer-7
	// ce-datacontenttype: application/json
	// ce-dataschema: urn:invictus:schema:referral.declined.v1
	// ce-id: 0195f0c3-1111-7abc-8def-0123456789ab
	// ce-source: /orgs/pt.apav
	// ce-specversion: 1.0
	// ce-subject: 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f
	// ce-time: 2025-03-10T09:31:05Z
	// ce-tracestate: vendor=offer%207
	// ce-type: invictus.referral.declined.v1
	// {"placement":"p1","reason":"capacity"}
}

// Decode a message received from NATS, and tell the error classes apart.
func ExampleDecode() {
	m := events.Message{
		Subject: "in.pt.apav",
		Header: map[string][]string{
			"ce-specversion": {"1.0"},
			"ce-id":          {"0195f0c3-1111-7abc-8def-0123456789ab"},
			"ce-source":      {"/orgs/pt.apav"},
			"ce-type":        {"invictus.referral.completed.v1"},
			"ce-subject":     {"0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f"},
			"ce-time":        {"2025-03-10T09:31:05Z"},
			"ce-dataschema":  {"/schemas/referral.completed.v1.json"},
			"Content-Type":   {"application/json"},
		},
		Data: []byte(`{"placement":"p1","outcome":"supported"}`),
	}
	env, err := events.Decode(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch p := env.Payload.(type) {
	case *events.Completed:
		fmt.Println(env.Event.Subject(), p.Placement, p.Outcome)
	}

	m.Data = []byte(`{"placement":"p1","outcome":"fine","note":"x"}`)
	_, err = events.Decode(m)
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(errors.Is(err, events.ErrUnknownField))
		for _, p := range ve.Problems {
			fmt.Println(p.Pointer, p.Code)
		}
	}
	// Output:
	// 0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f p1 supported
	// true
	// /data/note free_text
	// /data/outcome enum
}

// Build and parse the subjects of one referral.
func ExampleDeliverySubject() {
	id := "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f"
	s, err := events.DeliverySubject("fi.riku", id)
	if err != nil {
		fmt.Println(err)
		return
	}
	org, ref, err := events.ParseDeliverySubject(s)
	fmt.Println(s, org, ref == id, err)
	fmt.Println(events.DeliveryFilter("fi.riku"))
	_, err = events.DeliverySubject("fi.*", id)
	fmt.Println(err)
	// Output:
	// out.fi.riku.0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f fi.riku true <nil>
	// out.fi.riku.>
	// invalid subject: "fi.*" is not an organisation id (<country>.<slug>)
}
