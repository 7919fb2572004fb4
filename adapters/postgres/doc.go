// Package postgres is the PostgreSQL adapter (pgx) of DESIGN.md section 7:
// it connects an organisation's case database to the network without
// rewriting the case system, and gives coordinators the referral flows in
// tables and views their SQL and BI tools can query.
//
// Everything lives in one schema of the partner's choice ([SchemaDefault]
// "invictus"), created and upgraded by [Migrate] from migrations embedded
// in the binary and recorded in <schema>.schema_migrations. Every
// statement names its objects with the quoted schema, so the adapter
// never depends on search_path and never touches another schema.
//
// # Outbox
//
// The case system inserts a command into <schema>.outbox in the same
// transaction as its own change:
//
//	INSERT INTO invictus.outbox (type, referral_id, payload)
//	VALUES ('invictus.referral.accepted.v1', '0195f0c1-…', '{"placement": "p1"}');
//
// Columns: seq (bigserial, the publication order), id (uuid, a UUIDv7 by
// default; the CloudEvents id; Nats-Msg-Id is /orgs/<org>/<id>), type (the CloudEvents
// type), referral_id (the CloudEvents subject; for referral.requested it
// defaults to id, which makes it the new referral's id), payload (jsonb,
// the event's data), created_at (the event's time), and, set by the
// adapter, published_at, rejected_at, attempts and last_error. A trigger
// NOTIFYs "<schema>.outbox" at each insert. A case system that records
// OpenTelemetry traces may set traceparent (W3C) too: while the adapter
// exports traces, its span of the command ("outbox <type>") is that span's
// child, and the INBOUND message names it in a traceparent header, so the
// router's spans join the case system's trace (an invalid one is ignored).
//
// The [Relay] publishes the rows in seq order to the organisation's
// INBOUND subject (in.<cc>.<org>) as CloudEvents in binary mode, with
// source /orgs/<org>, waits for JetStream's acknowledgement, and marks
// them published in the transaction that locked them. Several relays may
// run on one outbox: one holds the outbox's advisory lock and relays, the
// others stand by. A row the contract rejects (events.Decode refuses the
// event built from it) gets rejected_at and last_error and blocks nothing.
// Rows of one transaction, and of transactions committed one after the
// other, are published in order; rows of transactions that commit
// concurrently are published in seq order among those visible.
//
// # Inbox
//
// The [Inbox] consumes the organisation's deliveries (a durable consumer
// on DELIVERY filtered to out.<cc>.<org>.>) into <schema>.inbox, keyed by
// event id, and acknowledges each only after the transaction that stored
// it commits. While the adapter exports traces, each delivery stored has a
// span ("inbox <type>") in the referral's trace, the child of the one its
// DELIVERY message names, and the row's traceparent column names it, for
// the partner's code to continue. With the organisation's age identity it opens the sealed
// envelope of each referral.handover into <schema>.envelopes, a table on
// which PUBLIC has no privilege. A referral.erased removes the referral's
// other rows from inbox, envelopes and outbox. An optional hook function
// is called with each new event id in the same transaction, so the
// partner's code can map deliveries into its case tables atomically.
//
// # Reporting projection
//
// The [Projection] applies REFERRALS to the tables referrals,
// referral_needs, referral_crimes, placements, offers, transitions,
// unmatched_needs, unmatched_constraints, feedback_answers,
// feedback_missing and erasures, keyed by country, region, need, crime
// type, organisation and ISO week, and resumes from the sequence it
// committed with the rows (projection_checkpoint). The coordinator views
// are flows_between_countries, flows_between_organisations,
// acceptance_by_organisation (and _week), deadlines_missed,
// unmatched_needs_by_region, gaps_by_constraint and feedback_by_answer.
// referral.erased leaves only what the event carries.
//
// # Running it
//
// [New] builds an [Adapter] of an organisation (outbox and inbox), of a
// coordinator (projection) or both; [Adapter.Run] migrates and runs them
// until its context ends, [Adapter.Health] reports readiness, and
// [Metrics] are Prometheus collectors. The NATS connection must be made
// with [ConnectOptions]. `invictus adapter postgres` wires it from flags.
//
// The package imports the domain packages, pgx and NATS, never another
// adapter. It logs ids, counts and error classes, never payloads, case
// files or keys.
package postgres
