// Package console is the web console of INVICTUS: the pages caseworkers
// and organisation administrators use in a browser, served by `invictus
// serve` under [Prefix] on the API's listener.
//
// It is built like the public pages of package web (server-rendered
// templates embedded in the binary, a catalog per language, a strict
// Content-Security-Policy with a nonce per response, a quick exit) and on
// the same ports as the HTTP API: a referral is previewed with the
// routing matcher ([Matcher]) and sent as the same referral.requested
// command, stored on the INBOUND stream ([CommandSink]) for the routing
// service to decide; answers to offers (accept, decline, hold, contact,
// outcome, feedback) are the same commands too. Nothing bypasses the
// router. A page shows a referral only to an organisation that is a
// party to it, with the rule of GET /v1/referrals/{id}.
//
// People sign in with a name and password (argon2id, [HashPassword]) and,
// for every role that sees case data, a TOTP second factor enrolled at
// the first sign-in ([Accounts]). Sessions live in a KV bucket, in
// HttpOnly SameSite=Strict cookies (Secure over TLS) with an absolute and
// an idle expiry; "sign out everywhere" ends them all. Every form carries
// a CSRF token bound to the session. Sign-in is rate-limited by address
// and an account locks after [LockAfterDefault] failures. Organisation
// administrators invite people by single-use links; `invictus user`
// does the same from the command line.
//
// Every command a person sends carries her pseudonymous staff id (the
// consent's recorded_by of a referral) and leaves an audit line with the
// staff id, never a name, in the organisation's audit log ([AuditLine]).
//
// The sealed case file (issue 10, item 4): on the referral page the
// referrer's browser seals the case details to the accepting
// organisation's age recipient (data-recipient) with the public pages'
// seal.js and posts only the envelope as action=handover (fields recipient
// and envelope); the receiver's browser (static/casefile.js) unlocks the
// organisation's passphrase-wrapped identity, fetched from GET
// /console/keys/identity with her session, and opens the envelopes
// (data-envelope) in the page. See docs/keys.md.
package console
