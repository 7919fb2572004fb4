// Package e2etest holds the end-to-end test of the PostgreSQL adapter: two
// organisations' case databases and a coordinator's, connected through the
// real routing service on an embedded NATS server. It is a package of its
// own so that the adapter's other tests do not depend on adapters/natsjs
// and the routing service; it has no code outside its tests.
package e2etest
