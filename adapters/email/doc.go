// Package email is the e-mail adapter for organisations without a system
// of their own (DESIGN.md section 7): organisations whose directory entry
// has referral_channel "email" get what concerns them as e-mail in their
// language, and answer offers through signed links. Nothing that
// identifies a victim is ever put in an e-mail.
//
// [Adapter.Run] sends, while this instance holds the sender lease (a key
// in the [Store]; of several nodes one sends at a time): for each e-mail
// organisation it consumes its deliveries from a durable consumer
// ([Deliveries]), composes the message (plain text and HTML from the
// embedded templates, strings from locales/<lang>.json, labels from the
// taxonomy) and acknowledges the delivery only once the SMTP server
// accepted it ([Mailer]). The Message-ID is fixed per event, kind and
// recipient, and a sent mark stops a redelivery from sending twice. A
// temporary failure (4xx, no server) is retried with backoff up to
// [Config].Attempts; a refusal (5xx) is recorded as a [Failure] and never
// retried; an offer (or reminder) given up is told to its referrer by a
// delivery.failed event on the referrer's delivery subject ([Notices]),
// once per failure ([FailedID]), which a referrer receiving by e-mail gets
// as an e-mail ([KindUndeliverable]). [ListFailures] lists the failures
// for the administrators.
//
// An organisation with referral_channel email_digest gets one message a
// day ([KindDigest], at [Config].DigestAt in the organisation's time zone,
// see [DigestZones]) gathering what it would
// have got one by one; the items wait in the state store (digest.<org>)
// and are acknowledged once held there. An offer whose deadline comes
// before the next digest is sent at once. [Adapter.FlushDigests] sends the
// pending digests on demand.
//
// Messages: to an offered organisation the offer (needs, urgency,
// deadline, referrer) with its accept and decline links, the reminder,
// the expiry, a withdrawal, a handover waiting in the web console; to a
// referrer the acceptance, the decline with its coded reason, the
// contact, the completion and the unmatched needs.
//
// [Adapter.Handler] serves the links' pages under [MountPath]. A link
// ([Links]) is signed with HMAC-SHA256 under a node secret kept in the
// store and names one organisation, referral, placement, offer attempt
// and action, expiring at the offer's deadline. Opening it shows the offer
// and changes nothing (mail scanners open links); only the confirmation,
// a POST, records the link's use (once per offer) and publishes the
// organisation's command through [CommandSink], as every channel does.
// Pages carry a strict Content-Security-Policy (default-src 'none').
//
// The ports are small interfaces of standard and domain types;
// adapters/natsjs implements them and cmd/invictus wires them. The package
// imports the domain packages, never another adapter.
package email
