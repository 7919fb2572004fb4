// Package wire holds the names of the NATS wire contract of DESIGN.md
// section 3 that are not subjects (events has those): the streams, the
// buckets, the consumers, the inbox prefixes and the Invictus-* headers;
// and the one way to encode a command for INBOUND, with its
// deduplication key. The server's adapters, the client and the CLI all
// take them from here, so a name is written once.
//
// It imports only the standard library and events: the domain may not
// depend on a NATS client, and neither need the HTTP or e-mail adapters.
package wire

import (
	"errors"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/invictus-network/invictus/events"
)

// Streams and buckets.
const (
	// StreamInbound holds the commands organisations publish on in.<cc>.<org>;
	// work-queue retention, so a command is gone once processed.
	StreamInbound = "INBOUND"
	// StreamReferrals is the event log: every event of one referral on
	// referral.<cc>.<referral id>.
	StreamReferrals = "REFERRALS"
	// StreamDelivery holds what each organisation must see, on
	// out.<cc>.<org>.<referral id>.
	StreamDelivery = "DELIVERY"
	// StreamTimers holds offer deadlines and reminders as scheduled
	// messages on timer.<referral id>.<placement>, which fire to
	// timer.fire.>.
	StreamTimers = "TIMERS"
	// StreamDLQ holds messages that could not be decoded or authorised, on
	// dlq.<reason>.
	StreamDLQ = "DLQ"
	// BucketDirectory is the KV bucket of organisations (org.<cc>.<org>)
	// and services (svc.<cc>.<org>.<svc>).
	BucketDirectory = "directory"
	// BucketTokens holds the HTTP API's tokens (hashes, never tokens).
	BucketTokens = "tokens"
	// BucketWebhooks holds webhook registrations, cursors and logs.
	BucketWebhooks = "webhooks"
	// BucketKeys holds organisations' age identities wrapped by a
	// passphrase (the server cannot open them) and the public intake's
	// sealed envelopes until their handover.
	BucketKeys = "keys"
	// BucketEmail holds the e-mail adapter's state.
	BucketEmail = "email"
	// BucketEmailMarks holds used action links and sent messages.
	BucketEmailMarks = "email_marks"
)

// Subject filters of the streams and the directory's event subjects.
const (
	SubjectsInbound   = "in.>"       // filter of [StreamInbound]
	SubjectsReferrals = "referral.>" // filter of [StreamReferrals]
	SubjectsDelivery  = "out.>"      // filter of [StreamDelivery]
	SubjectsTimers    = "timer.>"    // filter of [StreamTimers]
	SubjectsDLQ       = "dlq.>"      // filter of [StreamDLQ]
	// SubjectsTimerFire is where scheduled timers fire.
	SubjectsTimerFire = "timer.fire.>"
	// SubjectDirectoryEvents is the filter of every directory event.
	SubjectDirectoryEvents = "directory.>"
	// SubjectDirectoryOrganisation prefixes an organisation's updates.
	SubjectDirectoryOrganisation = "directory.organisation."
	// SubjectDirectoryService prefixes a service's updates.
	SubjectDirectoryService = "directory.service."
	// SubjectDirectoryCapacity prefixes a service's capacity updates.
	SubjectDirectoryCapacity = "directory.capacity."
)

// Consumers.
const (
	// ConsumerRouting is the routing services' shared consumer on INBOUND.
	ConsumerRouting = "routing"
	// ConsumerDispatcher is the dispatcher's consumer on REFERRALS.
	ConsumerDispatcher = "dispatcher"
	// ConsumerTimers is the consumer of fired timers on TIMERS.
	ConsumerTimers = "timers"
	// OrgConsumerPrefix starts every organisation consumer name.
	OrgConsumerPrefix = "org_"
	// EmailConsumerPrefix starts the name of an e-mail organisation's
	// durable consumer.
	EmailConsumerPrefix = "email_"
	// OrgInboxPrefix starts every organisation inbox prefix.
	OrgInboxPrefix = "_INBOX_"
	// ReaderSlots is how many reader consumers an organisation may have.
	ReaderSlots = 8
)

// Headers next to the CloudEvents ce-* headers. NATS clients match names
// case-insensitively; these are canonical.
const (
	// HeaderMsgID is JetStream's deduplication header, set on every
	// command to [events.MsgID] of its source and id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderRecipients, on a REFERRALS message, lists the organisations
	// (comma-separated ids) whose delivery subjects receive the event.
	HeaderRecipients = "Invictus-Recipients"
	// HeaderTimer, on a REFERRALS referral.offered message, asks the
	// dispatcher to schedule the offer's reminder and deadline.
	HeaderTimer = "Invictus-Timer"
	// HeaderCancel, on a REFERRALS message, lists placements whose timers
	// the dispatcher purges.
	HeaderCancel = "Invictus-Cancel"
	// HeaderErase, on a REFERRALS referral.erased message, asks the
	// dispatcher to purge every other copy of the referral first.
	HeaderErase = "Invictus-Erase"
	// HeaderTimerKind, on a TIMERS message, is "reminder" or "deadline".
	HeaderTimerKind = "Invictus-Timer-Kind"
	// HeaderAttempt, on a TIMERS message, is the offer's attempt number.
	HeaderAttempt = "Invictus-Attempt"
	// HeaderOrganisation, on a TIMERS message, is the offered organisation.
	HeaderOrganisation = "Invictus-Organisation"
	// HeaderDeadline, on a TIMERS reminder, is the deadline to schedule
	// once the reminder has fired.
	HeaderDeadline = "Invictus-Deadline"
	// HeaderReminder, on a DELIVERY message, marks the copy of an offer
	// sent again as a reminder.
	HeaderReminder = "Invictus-Reminder"
	// HeaderSequence, on a DELIVERY message, is the REFERRALS sequence of
	// the event.
	HeaderSequence = "Invictus-Sequence"
	// HeaderReason, on a DLQ message, is why it was set aside.
	HeaderReason = "Invictus-Reason"
	// HeaderError, on a DLQ message, is the first problem found, for people.
	HeaderError = "Invictus-Error"
	// HeaderOrigin, on a DLQ message, is "<stream> <sequence> <subject>"
	// of the original message.
	HeaderOrigin = "Invictus-Origin"
)

// orgTokens returns the country and slug of an organisation id, or false.
func orgTokens(org string) (cc, slug string, ok bool) {
	if !events.IsOrgID(org) {
		return "", "", false
	}
	cc, slug, _ = strings.Cut(org, ".")
	return cc, slug, true
}

// ConsumerName returns the name of organisation org's durable consumer on
// DELIVERY, org_<cc>_<slug> ("pt.apav" gives "org_pt_apav"), or "" for an
// invalid organisation id. Slugs hold no underscore, so names of
// different organisations never collide.
func ConsumerName(org string) string {
	cc, slug, ok := orgTokens(org)
	if !ok {
		return ""
	}
	return OrgConsumerPrefix + cc + "_" + slug
}

// ReaderNames returns the names of the [ReaderSlots] reader consumers
// organisation org may create on its own delivery subjects:
// org_<cc>_<slug>_r1 to _r8. It returns nil for an invalid id.
func ReaderNames(org string) []string {
	base := ConsumerName(org)
	if base == "" {
		return nil
	}
	out := make([]string, ReaderSlots)
	for i := range out {
		out[i] = base + "_r" + strconv.Itoa(i+1)
	}
	return out
}

// InboxPrefix returns organisation org's inbox prefix, _INBOX_<cc>_<slug>
// ("pt.apav" gives "_INBOX_pt_apav"), or "" for an invalid id. Every
// connection of the organisation must use it: the server lets it
// subscribe to nothing else.
func InboxPrefix(org string) string {
	cc, slug, ok := orgTokens(org)
	if !ok {
		return ""
	}
	return OrgInboxPrefix + cc + "_" + slug
}

// HeaderValue returns the first value of header key in h, matching the
// name case-insensitively as NATS clients do ("" when absent).
func HeaderValue(h map[string][]string, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// Command encodes command ev for INBOUND subject (events.ToNATS) and sets
// its deduplication key, [HeaderMsgID], to events.MsgID of its source and
// id, so a command published twice is stored once. Errors as
// events.ToNATS.
func Command(subject string, ev event.Event) (events.Message, error) {
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		return events.Message{}, err
	}
	m.Header[HeaderMsgID] = []string{events.MsgID(ev.Source(), ev.ID())}
	return m, nil
}

// NewCommand builds organisation org's command p about referral
// referralID (events.New, source the organisation's) and encodes it on
// org's INBOUND subject with [Command]. It returns the event and the
// message; an error wrapping events.ErrInvalidSubject for an invalid
// organisation, or the events.New and events.ToNATS errors.
func NewCommand(org, referralID string, p events.Payload, opts ...events.Option) (event.Event, events.Message, error) {
	subject, err := events.InboundSubject(org)
	if err != nil {
		return event.Event{}, events.Message{}, err
	}
	ev, err := events.New(events.SourceOf(org), referralID, p, opts...)
	if err != nil {
		return event.Event{}, events.Message{}, err
	}
	m, err := Command(subject, ev)
	return ev, m, err
}

// ErrNoID is returned by [SetMsgID] for a message without a ce-id header.
var ErrNoID = errors.New("the command has no ce-id header")

// SetMsgID sets the deduplication key of command m, which organisation
// org publishes, to events.MsgID of org's source and m's ce-id: what the
// sender set is not trusted, so one organisation cannot shadow another's
// ids.
func SetMsgID(org string, m *events.Message) error {
	id := HeaderValue(m.Header, "ce-id")
	if id == "" {
		return ErrNoID
	}
	if m.Header == nil {
		m.Header = map[string][]string{}
	}
	m.Header[HeaderMsgID] = []string{events.MsgID(events.SourceOf(org), id)}
	return nil
}
