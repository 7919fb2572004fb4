// Package archtest holds the architecture test of the module: it reads the
// imports of every Go file and fails when the dependency direction of
// DESIGN.md section 2 breaks. The domain packages (events, schemas,
// directory, referral, routing) import no adapter and only the domain
// packages the design allows them; an adapter never imports another
// adapter (its tests may, to use it as a fixture); nothing imports cmd. The package has no code of its own; run it
// with `go test ./internal/archtest`.
package archtest
