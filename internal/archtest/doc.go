// Package archtest holds the architecture test of the module: it reads the
// imports of every Go file and fails when the dependency direction of
// DESIGN.md section 2 breaks. The domain packages (events, schemas,
// directory, referral, routing, reports, seal) import no adapter, only the
// domain packages the design allows them, and in their non-test files no
// infrastructure: no NATS (nats.go, nats-server), pgx, Prometheus or
// net/http (events alone may use net/http, for its CloudEvents HTTP
// codec). The client imports only events, seal and internal packages. An
// adapter never imports another adapter (its tests may, to use it as a
// fixture); nothing imports cmd. TestCheckFindsViolations runs the checker
// on a made-up module with one breach of each rule, so a checker that
// refuses nothing fails. Run it with `go test ./internal/archtest`.
package archtest
