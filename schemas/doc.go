// Package schemas holds the published, language-neutral form of the INVICTUS
// event contract, embedded in the binary with go:embed:
//
//   - one JSON Schema (draft 2020-12) per payload, named after the event's
//     short type ("referral.requested.v1.json"). Each schema's $id is the
//     URN [URI] of its name ("urn:invictus:schema:referral.requested.v1"),
//     which is also the CloudEvents dataschema of its events; the HTTP API
//     serves [FS] under "/schemas/". Codes, identifiers and shared objects
//     (profile, location, consent...) are $defs of defs.json
//     ("urn:invictus:schema:defs"), reached with absolute $refs
//     ("urn:invictus:schema:defs#/$defs/need").
//   - taxonomy.json: every need, crime and flag code (and the other code
//     lists) with labels in en, bg, hr, fi, fr, it, nl and pt; needs cite the
//     articles of Directive 2012/29/EU they come from. Non-English labels are
//     drafts until native speakers review them ([Taxonomy.ReviewStatus]).
//   - asyncapi.yaml: the AsyncAPI 3.0 document of the NATS subjects,
//     operations and messages, with the CloudEvents binary-mode headers.
//     scripts/check-asyncapi.sh validates it with @asyncapi/parser.
//   - examples/<short type>/: golden CloudEvents in structured JSON form,
//     valid-*.json and invalid-*.json, with examples/expectations.json
//     recording the error each invalid one must produce.
//
// The Go payload structs in package events are the source of the contract;
// tests in events (contract_test.go) and here keep the structs, the schemas,
// the taxonomy, the examples and the AsyncAPI document in step. This package
// imports the standard library only; schema validation is done in tests with
// github.com/santhosh-tekuri/jsonschema/v6.
//
// Use [Payload] for one schema, [LoadTaxonomy] for labels, [AsyncAPI] for
// the AsyncAPI document and [FS] for everything.
package schemas
