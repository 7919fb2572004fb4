// Command otlpsink is an OTLP/HTTP trace receiver that decodes and counts
// what it receives (otlptest.Receiver on a fixed address), for measuring
// what exporting traces costs a node without running a collector:
//
//	go run ./internal/tracing/otlptest/otlpsink -listen 127.0.0.1:4318 &
//	invictus bench e2e --otlp-endpoint http://127.0.0.1:4318
//
// On SIGINT or SIGTERM it prints the spans and export requests it
// decoded, as one JSON line, and exits.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/invictus-network/invictus/internal/tracing/otlptest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4318", "address to listen on")
	flag.Parse()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlpsink:", err)
		os.Exit(1)
	}
	rcv := otlptest.New()
	srv := &http.Server{Handler: rcv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintln(os.Stderr, "otlpsink: listening on http://"+ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Shutdown(context.Background())
	_ = json.NewEncoder(os.Stdout).Encode(map[string]int{"spans": rcv.Count(), "requests": rcv.Requests(), "refused": len(rcv.Bad())})
}
