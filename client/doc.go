// Package client is the Go SDK of the INVICTUS referral network for
// organisations: send a referral, receive offers, accept or decline them,
// hand the sealed case file over, report contact and outcome, and follow
// a referral to its end, over NATS JetStream with the organisation's own
// credentials. The CLI (`invictus refer`, `inbox`, `accept`...) is built
// on it; any other Go program can be too.
//
// # Connecting
//
// [Connect] opens a connection as one organisation, authenticated with
// its nkey seed file ([WithNKeySeed], written by `invictus creds`) or a
// JWT credentials file ([WithCredsFile]). The connection uses the
// organisation's own inbox prefix ([InboxPrefix], _INBOX_<cc>_<org>): the
// server lets an organisation subscribe to nothing else.
//
//	c, err := client.Connect(ctx, "nats://127.0.0.1:4223", "pt.apav",
//		client.WithNKeySeed("pt.apav.nk"))
//	if err != nil { ... }
//	defer c.Close()
//
// # Sending commands
//
// Each command is a CloudEvent published on the organisation's INBOUND
// subject (in.<cc>.<org>) with its source and CloudEvents id as
// Nats-Msg-Id (events.MsgID), so a retried publish is stored once and no
// other organisation's id shadows it; the methods return that id (the
// command id) once JetStream has stored the command: [Client.Refer],
// [Client.Accept], [Client.Decline], [Client.Contacted], [Client.OnHold],
// [Client.Complete], [Client.Withdraw], [Client.Erase], [Client.Feedback]
// and [Client.Handover], which seals the case file locally with the
// accepting organisation's age recipient ([Client.Recipient] reads it from
// the directory) so that only that organisation can read it. [Client.Send]
// sends any payload.
//
// Stored is not yet accepted: the routing service checks each command
// against the referral's state and either records it or answers with
// command.rejected. [Client.Await] waits for that answer: the recorded
// command (or the routing service's event answering it, such as the plan
// of a referral) or a [*RejectedError].
//
// # Receiving
//
// [Client.Receive] runs a handler for each delivery to the organisation
// (offers, answers, plans, handovers, rejections...), in order, from the
// organisation's durable consumer on DELIVERY; a delivery is acknowledged
// only once the handler returns nil, and delivered again otherwise, so
// handlers must be idempotent (the CloudEvents id identifies an event;
// offer reminders repeat the offer's id). [Open] opens a received sealed
// handover with the organisation's age identity.
//
// [Client.Inbox] lists the latest deliveries and [Client.Follow] follows
// new ones without acknowledging anything, and [Client.Timeline] reads
// what the organisation received about one referral, with the status of
// each placement as this organisation sees it. They read through short
// lived reader consumers, of which an organisation may have [ReaderSlots]
// at once.
//
// # Errors
//
// Errors wrap one of [ErrUnavailable] (the network cannot be reached or
// did not answer in time: worth retrying), [ErrUnauthorized] (wrong
// credentials, or an action the organisation's user may not take),
// [ErrNotProvisioned] (the organisation has no delivery consumer yet),
// [ErrRejected] (a [*RejectedError] from the routing service),
// [ErrNotFound], [ErrBusy], or an [*events.ValidationError] for a command
// that breaks the contract (nothing is sent then).
package client
