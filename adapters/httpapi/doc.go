// Package httpapi is the HTTP API of an INVICTUS node: CloudEvents in,
// server-sent events and Standard Webhooks out, the directory as an
// HSDS-style API, the contract's schemas and the operations endpoints. It
// is described by the OpenAPI 3.1 document schemas/openapi.yaml, served at
// /v1/openapi.json.
//
// # Endpoints
//
//	POST   /v1/events                    commands as CloudEvents (binary, structured, batch); ?wait=
//	GET    /v1/referrals/{id}            a referral's timeline, as the caller may see it
//	GET    /v1/inbox                     the caller's deliveries: JSON pages, or server-sent events
//	GET    /v1/webhooks                  the caller's webhooks
//	POST   /v1/webhooks                  register a webhook (the secret is shown once)
//	GET    /v1/webhooks/{id}             one webhook
//	DELETE /v1/webhooks/{id}             delete it
//	GET    /v1/webhooks/{id}/deliveries  its delivery log, newest first
//	POST   /v1/match                     a plan preview with explanations
//	GET    /v1/keys/identity             the caller's age identity, wrapped by its passphrase
//	PUT    /v1/keys/identity             store or replace it (only a passphrase-wrapped age file)
//	GET    /v1/services                  services (HSDS), filtered through the directory index (no token)
//	GET    /v1/services/{id}             one service, by id or HSDS id                        (no token)
//	GET    /v1/organizations             organizations (HSDS)                                 (no token)
//	GET    /v1/organizations/{id}        one organization with its services                   (no token)
//	GET    /v1/directory/hsds.json       the whole directory as one HSDS 3.0 document         (no token)
//	GET    /v1/openapi.json              the OpenAPI document          (no token)
//	GET    /schemas/{file}               the contract's schemas        (no token)
//	GET    /healthz, /readyz, /metrics   operations                    (no token, no rate limit)
//
// # Access
//
// The directory is open data: its endpoints need no token, are rate
// limited by client address, and are cacheable: the ETag is the directory
// revision the answer was made from ("dir-<revision>"), so a client that
// sends it back in If-None-Match gets 304 until the directory changes
// (Cache-Control: public, max-age [DirectoryMaxAge]). They refuse any
// query parameter they do not take, naming it ([CodeUnknownParameter]).
//
// Every other /v1 endpoint but the OpenAPI document needs a bearer token
// ([Tokens]: "inv_" and 43 characters; only its SHA-256 is stored). A
// token has one organisation and one [Role]:
//
//	                      organisation   coordinator   directory_admin
//	events, referrals,    yes (own)      403           403
//	inbox, webhooks, keys
//	match                 yes            yes           403
//
// A referral is readable by its referrer and by the organisations it was
// offered to; each sees only the events it sent or received
// (referral.Recipients) and its own placements. Any other organisation
// gets 404 exactly as for a referral that does not exist, so that the API
// never tells whether a referral exists. Coordinators see no case data.
// POST /v1/events accepts only events whose source is the token's
// organisation (403 otherwise) and only the types organisations send
// ([CommandTypes]).
//
// # Errors and limits
//
// Every error is {"errors": [{"pointer", "code", "message"}]} ([ErrorBody]),
// with the codes of the events contract and of command.rejected, and the
// API's own ([CodeUnauthorized], [CodeRateLimited], ...). Statuses: 400
// unreadable or bad parameter, 401, 403, 404, 409, 413 too large
// (events.MaxMessageSize per event, events.MaxBatchSize per batch,
// [Config].MaxJSONBody otherwise), 415, 422 breaks the contract or was
// rejected, 429 with Retry-After (a token bucket per token, or per client
// address without one; golang.org/x/time/rate), 503 when a port fails.
//
// Admission control keeps memory bounded however fast requests come: past
// [Config].MaxInFlight requests in hand, a request is answered 503 with
// the code [CodeOverloaded] and Retry-After before it is read or its token
// checked. [Server.HTTPServer] and [Server.Listener] add read, write and
// idle timeouts, a connection limit and TLS. Tokens are checked against a
// copy of the store that [Tokens.Follow] keeps current with a watch
// ([Watcher]); a token may carry an expiry ([WithExpiry]), after which it
// is refused with [CodeTokenExpired]. Metric labels come from a closed set.
//
// The request log has one line per request: method, route pattern,
// status, organisation and duration. Never a path, a query, a header or a
// body: nothing about a victim can reach it.
//
// # Ports
//
// The API depends on small interfaces ([CommandSink], [Outcomes],
// [Timeline], [Inbox], [Store], [Directory], [Matcher], [StreamStats])
// whose signatures use only the standard library and the domain packages.
// adapters/natsjs implements them on JetStream (its HTTPPorts) without
// importing this package; cmd/invictus wires them into [Deps].
//
// # Webhooks
//
// The [Dispatcher] follows each webhook's organisation inbox from the
// webhook's cursor and POSTs every delivery as a CloudEvent in binary
// content mode, signed with [SignWebhook] (webhook-id, webhook-timestamp,
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>"),
// retrying failures with exponential backoff a bounded number of times and
// logging every attempt. Receivers check requests with [VerifyWebhook].
// Targets must resolve to public addresses ([IsPublic]), checked at
// registration and at every connection after DNS, unless
// [WebhookConfig].AllowPrivate.
//
// # Metrics
//
// [Metrics] holds the Prometheus collectors on a registry of its own:
// commands by type and outcome, referrals by status, offer latency,
// deadline expiries, DLQ size and consumer lag (read from [StreamStats] at
// each scrape), HTTP requests and webhook attempts. It is the routing
// service's [routing.Observer]: wired into routing.ServiceConfig, the
// service feeds commands by type and outcome, referrals by status, offer
// latency and deadline expiries; the API itself counts only the commands
// it refuses (invalid, forbidden), so each command is counted once.
package httpapi
