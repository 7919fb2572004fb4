package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// adapterTestDB returns the test database's URL and a fresh schema name
// that is dropped when the test ends. Without INVICTUS_TEST_DATABASE_URL
// the test is skipped, except in CI (CI=true), where it fails.
func adapterTestDB(t *testing.T) (string, string) {
	t.Helper()
	url := testenv.DatabaseURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "cmd_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return url, schema
}

func TestAdapterPostgresMigrate(t *testing.T) {
	url, schema := adapterTestDB(t)
	ctx := context.Background()
	var out, errOut strings.Builder
	if code := run(ctx, []string{"adapter", "postgres", "migrate", "--db", url, "--schema", schema}, &out, &errOut); code != exitOK {
		t.Fatalf("migrate exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "applied migration 1") {
		t.Errorf("first migrate printed %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"adapter", "postgres", "migrate", "--db", url, "--schema", schema}, &out, &errOut); code != exitOK {
		t.Fatalf("second migrate exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Errorf("second migrate printed %q", out.String())
	}
}

func TestAdapterPostgresUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"adapter", "postgres", "--org", "pt.apav"},                                    // no --db
		{"adapter", "postgres", "--db", "postgres://x@127.0.0.1:1/x"},                  // neither --org nor --projection
		{"adapter", "postgres", "--db", "postgres://x@127.0.0.1:1/x", "--org", "apav"}, // not an organisation id
		{"adapter", "postgres", "--db", "postgres://x@127.0.0.1:1/x", "--projection", "--schema", "Bad-Schema"},
		{"adapter", "postgres", "--db", "postgres://x@127.0.0.1:1/x", "--projection", "--key", "k"}, // --key needs --org
		{"adapter", "postgres", "migrate"},                                                          // no --db
	} {
		var out, errOut strings.Builder
		if code := run(context.Background(), args, &out, &errOut); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut.String())
		}
	}
}

// TestAdapterPostgresRelaysAndServesMetrics runs the command against an
// embedded NATS server: a row of the outbox reaches INBOUND, /healthz and
// /metrics answer, and SIGTERM (ctx) stops it cleanly.
func TestAdapterPostgresRelaysAndServesMetrics(t *testing.T) {
	url, schema := adapterTestDB(t)
	ctx := testenv.Context(t)
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()

	rctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	errOut := &syncBuffer{}
	go func() {
		done <- run(rctx, []string{"adapter", "postgres", "--db", url, "--schema", schema, "--org", "pt.cmd-test",
			"--nats-url", srv.ClientURL(), "--metrics-listen", metricsAddr}, io.Discard, errOut)
	}()
	healthy := func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	testenv.Await(t, "the adapter's /healthz", healthy, errOut.String)

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	payload, _ := json.Marshal(events.SamplePayload(events.TypeReferralRequested))
	var id string
	if err := conn.QueryRow(ctx, `INSERT INTO `+pgx.Identifier{schema}.Sanitize()+`.outbox (type, payload) VALUES ($1, $2) RETURNING id::text`,
		events.TypeReferralRequested, payload).Scan(&id); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, natsjs.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	testenv.Await(t, "the outbox row in INBOUND", func() bool {
		m, err := stream.GetLastMsgForSubject(ctx, "in.pt.cmd-test")
		if lastErr = err; err != nil {
			return false
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != events.MsgID(events.SourceOf("pt.cmd-test"), id) {
			t.Fatalf("INBOUND holds %s, want the row %s", got, id)
		}
		return true
	}, func() string { return fmt.Sprintf("last: %v", lastErr) })
	// The row is counted once the relay has committed it.
	want := `invictus_postgres_outbox_relayed_total{schema="` + schema + `"} 1`
	var body []byte
	testenv.Await(t, "/metrics to count the relayed row", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), want)
	}, func() string { return string(body) })

	stop()
	if code := testenv.Recv(t, "the adapter to stop", done, errOut.String); code != exitOK {
		t.Errorf("adapter exit %d: %s", code, errOut.String())
	}
}
