// Package natsjs is the NATS JetStream adapter: the embedded server, the
// streams and buckets of the wire contract, and (in later work) the
// consumers, the directory store on KV, scheduled deadlines and
// per-organisation credentials.
//
// [StartServer] runs an in-process nats-server with JetStream on a local
// store directory; its [Server.Connect] gives the services inside the binary
// an in-process connection that needs no TCP. [EnsureStreams] creates or
// updates, idempotently, the streams [StreamInbound], [StreamReferrals],
// [StreamDelivery], [StreamTimers] and [StreamDLQ] and the KV bucket
// [BucketDirectory] that DESIGN.md section 3 describes; it works the same
// against the embedded server and an external cluster.
//
// The package imports the domain packages and NATS, never another adapter.
package natsjs
