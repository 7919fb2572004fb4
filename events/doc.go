// Package events is the wire contract of the INVICTUS referral network:
// the event catalogue, the payload structs and their validation rules, the
// NATS subjects, and the CloudEvents codec for NATS and HTTP. Every other
// package, and every integrator in any language, speaks what this package
// defines; it imports only the standard library, sdk-go, validator and
// filippo.io/age's armor and header parser (to check a sealed envelope's
// structure without a key, see [CheckEnvelope]).
//
// # Events
//
// Every message is a CloudEvents 1.0 event whose type is one of [Types]
// (invictus.<area>.<action>.v<major>) and whose data is the JSON of the
// type's payload struct ([Requested], [Offered], [Completed]...;
// [NewPayload] makes an empty one). [New] builds an event from a payload:
//
//	e, err := events.New(events.SourceOf("pt.apav"), referralID, &events.Accepted{Placement: "p1"})
//
// The attributes the contract requires, and what [New] sets:
//
//   - specversion "1.0"; id (a UUIDv7 by default, see [WithID]);
//   - source: [SourceOf] an organisation ("/orgs/pt.apav") or one of the
//     network's own services ([SourceRouting], [SourceDirectory]);
//     [IsSource] says which are valid;
//   - type;
//   - subject: the referral id ([IsReferralID]) for the referral.* events;
//     the organisation id for directory.organisation.updated; the service
//     id for directory.service.updated and directory.capacity.updated. Only
//     command.rejected may go without one (the rejected command may have had
//     none); when present it is the rejected command's referral,
//     organisation or service id;
//   - time (RFC 3339, not the zero time; see [WithTime]);
//   - dataschema: [SchemaURI] of the type ("urn:invictus:schema:referral.requested.v1"),
//     the URN that is the "$id" of the payload's JSON Schema (the HTTP API
//     serves it at [SchemaPath], "/schemas/referral.requested.v1.json").
//     A URN rather than a URL: it is the same on every node and stays true
//     while events are kept, wherever a node is later reached. The forms
//     clients sent before, the path and an absolute http(s) URL with that
//     path, are still accepted;
//   - datacontenttype "application/json" (a charset=utf-8 parameter is
//     allowed);
//   - data, the payload.
//
// Extensions: correlationid ([WithCorrelationID], the id of the command an
// event answers), traceparent ([WithTraceParent], W3C trace context; see
// [IsTraceParent]) and tracestate ([WithTraceState], see [IsTraceState]).
// No other extension is accepted ([IsExtension], CodeUnknownExtension):
// an extension is where a victim's identity would otherwise ride along.
// String values are at most 512 bytes, without control characters or
// surrounding white space.
//
// # What the contract refuses
//
// Routing payloads identify nobody and hold codes only: a payload member
// of free text ("text", "note", "comment"...) is refused with
// CodeFreeText; Consent.RecordedBy must match [StaffRefPattern]
// ([IsStaffRef]), which no name or phone number does; a handover's
// envelope must pass [CheckEnvelope]. Ids (the id attribute and
// correlationid) match [EventIDPattern] ([IsEventID]) and are never
// rewritten: a lone UTF-16 surrogate escape is refused (ErrInvalidUTF8),
// not decoded as U+FFFD. The time attribute lies from [EarliestTime] to
// [MaxClockSkew] ahead of the receiver's clock; a referral.requested's
// consent was given at most [MaxConsentAge] before the event's time (and
// not after it, beyond MaxClockSkew). An id is unique per source only:
// [MsgID] is the deduplication key (JetStream's Nats-Msg-Id) of an event,
// its source and id together.
//
// # NATS
//
// [ToNATS] encodes an event as a [Message] in the binary content mode of the
// CloudEvents NATS protocol binding 1.0.3: each attribute in a ce-<name>
// header, percent-encoded as the binding says, the datacontenttype also in
// Content-Type, and the payload as the data. The Header of a [Message] has the
// underlying type of nats.Header, so adapters convert without copying.
//
// [Decode] accepts the binary mode and the structured mode (Content-Type
// application/cloudevents+json); header names are matched
// case-insensitively and values are percent-decoded. Messages larger than
// [MaxMessageSize] are refused before anything is parsed.
//
// # HTTP
//
// [DecodeHTTP] accepts the binary, structured and batch
// (application/cloudevents-batch+json, at most [MaxBatchEvents] events in
// [MaxBatchSize] bytes) modes of the CloudEvents HTTP binding, with the same
// checks as [Decode]. [WriteHTTPRequest] writes an event in binary mode
// through sdk-go's HTTP binding, for webhooks and clients. [DecodeEvent]
// checks an event that sdk-go has already parsed.
//
// The dataschema is an absolute URI as the CloudEvents specification
// requires, so events pass sdk-go's event.Event.Validate and the
// JavaScript SDK's strict checks; receivers built with sdk-go's client
// accept the events the network delivers.
//
// # Errors
//
// Every decoding failure is a [*ValidationError] that lists every problem
// found (up to [MaxProblems]) as a [Problem]: a JSON pointer into the event
// ("/id", "/datacontenttype", "/data/needs/1"), a stable code and a
// message; the list fits a [CommandRejected] payload as it is. Its Class is
// one of the sentinels, which callers tell apart with errors.Is; when
// problems of several classes are found, the class is the first of:
//
//   - [ErrTooLarge]: over [MaxMessageSize] (or the batch limits);
//   - [ErrInvalidUTF8]: in a header, the data or a structured event
//     (percent-decoded header values must be UTF-8 too: overlong sequences
//     are not);
//   - [ErrMalformedJSON]: not well-formed JSON, including data after the
//     value; the message gives the byte offset;
//   - [ErrMissingAttribute]: a required attribute, or the data, is absent;
//   - [ErrUnknownType]: the type is not in the catalogue;
//   - [ErrContentType]: the datacontenttype (or the structured format) is
//     not supported;
//   - [ErrUnknownField]: a payload member that the payload struct does not
//     have (matched exactly: encoding/json would match it ignoring case);
//     every one is listed;
//   - [ErrInvalid]: everything else: attribute values, repeated headers or
//     members, JSON values of the wrong type, and the rules of
//     [ValidatePayload].
//
// # Subjects
//
// The builders return the subjects of DESIGN.md section 3 and reject ids
// that are not valid tokens with an error wrapping [ErrInvalidSubject]:
// [InboundSubject] (in.<cc>.<org>), [ReferralSubject]
// (referral.<cc>.<referral id>), [DeliverySubject]
// (out.<cc>.<org>.<referral id>) and [DeliveryFilter], [TimerSubject]
// (timer.<referral id>.<placement>), [TimerFireSubject] and [DLQSubject].
// The parsers ([ParseInboundSubject], [ParseReferralSubject],
// [ParseDeliverySubject], [ParseTimerSubject]) accept exactly what the
// builders produce. Organisation ids are two tokens, <country>.<slug>
// ([IsOrgID]); referral ids are UUIDs ([NewReferralID] makes UUIDv7s).
//
// # Tests and examples
//
// [SamplePayload] and [SampleSubject] return a valid, non-identifying
// payload and subject of every type for tests and examples.
package events
