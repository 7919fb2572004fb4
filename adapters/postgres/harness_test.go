package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// envDatabaseURL names the environment variable with the URL of the
// PostgreSQL database the tests use; each test works in a schema of its
// own, created and dropped by the test.
const envDatabaseURL = testenv.EnvDatabaseURL

// testOrg is the organisation whose outbox and inbox most tests use.
const testOrg = "pt.test-org"

// databaseURL returns the test database's URL. Without one the test is
// skipped with instructions, except in CI (CI=true), where it fails.
func databaseURL(t testing.TB) string { return testenv.DatabaseURL(t) }

// pgEnv is a test's schema in the test database, with a pool whose
// connections carry an application_name of their own, so that a test
// terminating "its" backends never touches anyone else's.
type pgEnv struct {
	t       testing.TB
	url     string
	schema  string
	appName string
	pool    *pgxpool.Pool
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newPG creates a fresh schema name (not the schema itself: Migrate does
// that) and a pool; the schema is dropped and the pool closed when the
// test ends.
func newPG(t testing.TB) *pgEnv {
	t.Helper()
	p := &pgEnv{t: t, url: databaseURL(t), schema: "t_" + randomSuffix()}
	p.appName = "invictus-test-" + p.schema
	p.pool = p.newPool(p.appName, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer cancel()
		admin, err := pgx.Connect(ctx, p.url)
		if err != nil {
			t.Errorf("drop schema %s: %v", p.schema, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{p.schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", p.schema, err)
		}
	})
	return p
}

// newPool returns a pool with application_name app and the extra runtime
// parameters params, closed when the test ends.
func (p *pgEnv) newPool(app string, params map[string]string) *pgxpool.Pool {
	p.t.Helper()
	cfg, err := pgxpool.ParseConfig(p.url)
	if err != nil {
		p.t.Fatalf("parse %s: %v", envDatabaseURL, err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(testenv.ContextFrom(p.t, context.Background()), cfg)
	if err != nil {
		p.t.Fatalf("pool: %v", err)
	}
	if err := pool.Ping(testenv.ContextFrom(p.t, context.Background())); err != nil {
		pool.Close()
		p.t.Fatalf("the test database at %s does not answer: %v", envDatabaseURL, err)
	}
	p.t.Cleanup(pool.Close)
	return pool
}

// migrate applies the migrations to the test's schema.
func (p *pgEnv) migrate() {
	p.t.Helper()
	if _, err := postgres.Migrate(testCtx(p.t), p.pool, p.schema); err != nil {
		p.t.Fatalf("Migrate: %v", err)
	}
}

// q returns the quoted schema name.
func (p *pgEnv) q() string { return pgx.Identifier{p.schema}.Sanitize() }

// count returns the result of a count(*) query.
func (p *pgEnv) count(sql string, args ...any) int {
	p.t.Helper()
	var n int
	if err := p.pool.QueryRow(testCtx(p.t), sql, args...).Scan(&n); err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// terminate ends every backend of app except the caller's own and returns
// how many it ended.
func (p *pgEnv) terminate(ctx context.Context, app string) (int, error) {
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&n)
	return n, err
}

// testCtx returns a context that ends at the end of the test, shortly
// before the test binary's timeout (see testenv.ContextFrom); not the
// test's own context, which ends before the clean-ups that use it.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	return testenv.ContextFrom(t, context.Background())
}

// natsEnv is an embedded NATS server with JetStream listening on a random
// port of the loopback interface, with the streams the adapter uses.
//
// The tests start nats-server themselves rather than through
// adapters/natsjs: an adapter's tests do not depend on another adapter
// (the end-to-end test in e2etest does). The streams are those of
// DESIGN.md section 3 with the properties the adapter relies on: INBOUND
// a work queue, deduplication by Nats-Msg-Id for two minutes.
type natsEnv struct {
	t    testing.TB
	dir  string
	addr string
	mu   sync.Mutex
	srv  *server.Server
}

func newNATS(t testing.TB) *natsEnv {
	t.Helper()
	n := &natsEnv{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	n.start()
	t.Cleanup(n.stop)
	js, err := jetstream.New(n.connect("setup"), jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []jetstream.StreamConfig{
		{Name: postgres.StreamInbound, Subjects: []string{"in.>"}, Retention: jetstream.WorkQueuePolicy},
		{Name: postgres.StreamReferrals, Subjects: []string{"referral.>"}, DenyDelete: true},
		{Name: postgres.StreamDelivery, Subjects: []string{"out.>"}},
	} {
		sc.Storage, sc.Duplicates = jetstream.FileStorage, 2*time.Minute
		if _, err := js.CreateOrUpdateStream(testCtx(t), sc); err != nil {
			t.Fatalf("create stream %s: %v", sc.Name, err)
		}
	}
	return n
}

// start starts the server on n.addr with the store in n.dir.
func (n *natsEnv) start() {
	n.t.Helper()
	host, portText, _ := net.SplitHostPort(n.addr)
	port, _ := strconv.Atoi(portText)
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{ServerName: "pg-test", JetStream: true, StoreDir: n.dir,
		Host: host, Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		n.t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	n.t.Cleanup(srv.Shutdown) // at once if it never gets ready; again is harmless
	testenv.Await(n.t, "the nats server to be ready", func() bool { return srv.ReadyForConnections(time.Second) })
	n.mu.Lock()
	n.srv, n.addr = srv, srv.Addr().String()
	n.mu.Unlock()
}

// stop shuts the server down and waits for it (idempotent).
func (n *natsEnv) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// url returns the server's client URL.
func (n *natsEnv) url() string { return "nats://" + n.addr }

// connect opens a TCP connection with the relay's options (it reconnects
// after a restart), closed when the test ends.
func (n *natsEnv) connect(name string) *nats.Conn {
	n.t.Helper()
	opts := append(postgres.ConnectOptions(), nats.Name(name), nats.ReconnectWait(20*time.Millisecond))
	nc, err := nats.Connect(n.url(), opts...)
	if err != nil {
		n.t.Fatalf("connect: %v", err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// js returns a JetStream context on a new connection.
func (n *natsEnv) js() jetstream.JetStream {
	n.t.Helper()
	js, err := jetstream.New(n.connect("test-js"), jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		n.t.Fatal(err)
	}
	return js
}

// streamIDs returns the outbox row id in the Nats-Msg-Id of every message
// of stream, in stream order, for the messages on subject. It reads them by sequence, without
// a consumer (INBOUND is a work queue).
func streamIDs(t testing.TB, js jetstream.JetStream, stream, subject string) []string {
	t.Helper()
	ctx := testCtx(t)
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == subject {
			ids = append(ids, rowID(t, m.Header.Get(jetstream.MsgIDHeader)))
		}
	}
	return ids
}

// rowID returns the outbox row id of a Nats-Msg-Id, which must be
// events.MsgID of testOrg's source and the row id.
func rowID(t testing.TB, msgID string) string {
	id, ok := strings.CutPrefix(msgID, events.MsgID(events.SourceOf(testOrg), ""))
	if !ok {
		t.Errorf("Nats-Msg-Id %q is not %s's source and a row id", msgID, testOrg)
	}
	return id
}

// rawCollector records the Nats-Msg-Id of every message published on a
// subject, as core NATS sees them: publishes that JetStream drops as
// duplicates are recorded too.
type rawCollector struct {
	mu  sync.Mutex
	ids []string
}

func collectRaw(t testing.TB, nc *nats.Conn, subject string) *rawCollector {
	t.Helper()
	c := &rawCollector{}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		c.ids = append(c.ids, rowID(t, m.Header.Get(jetstream.MsgIDHeader)))
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

func (c *rawCollector) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// waitFloor is the least a wait for an asynchronous effect allows: on a
// loaded 2-core machine running the whole suite, effects that take
// milliseconds alone can take minutes, so no clock bounds the wait.
//
// eventually polls cond until it returns true; msg says what is wrong
// while it does not (see testenv.Await for how long it waits).
func eventually(t testing.TB, msg string, cond func() bool) {
	t.Helper()
	testenv.Await(t, "the end of: "+msg, cond)
}

// running is a component started in a goroutine by start.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs run in a goroutine until stop (or the end of the test).
func start(t testing.TB, run func(context.Context) error) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	// A test that cares about Run's error calls stop itself first.
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// stop cancels the component and waits for it; it returns Run's error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		r.err = testenv.Recv(t, "the component to stop", r.done)
	})
	return r.err
}

// outboxRow is what a case system inserts.
type outboxRow struct {
	typ        string
	referralID string
	payload    any
}

// requestedRow is a valid referral.requested command.
func requestedRow() outboxRow {
	return outboxRow{typ: events.TypeReferralRequested, payload: events.SamplePayload(events.TypeReferralRequested)}
}

// insert inserts rows in one transaction of the "case system" and returns
// their ids in seq order.
func (p *pgEnv) insert(rows ...outboxRow) []string {
	p.t.Helper()
	ctx := testCtx(p.t)
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	ids := make([]string, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(r.payload)
		if err != nil {
			p.t.Fatal(err)
		}
		var ref *string
		if r.referralID != "" {
			ref = &r.referralID
		}
		err = tx.QueryRow(ctx, `INSERT INTO `+p.q()+`.outbox (type, referral_id, payload) VALUES ($1, $2, $3) RETURNING id::text`,
			r.typ, ref, b).Scan(&ids[i])
		if err != nil {
			p.t.Fatalf("insert outbox row: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		p.t.Fatal(err)
	}
	return ids
}

// insertRequested inserts n referral.requested rows, in transactions of
// up to 100 rows, and returns their ids in seq order.
func (p *pgEnv) insertRequested(n int) []string {
	p.t.Helper()
	var ids []string
	for len(ids) < n {
		k := min(100, n-len(ids))
		rows := make([]outboxRow, k)
		for i := range rows {
			rows[i] = requestedRow()
		}
		ids = append(ids, p.insert(rows...)...)
	}
	return ids
}

// pending returns how many outbox rows are neither published nor rejected.
func (p *pgEnv) pending() int {
	p.t.Helper()
	return p.count(`SELECT count(*) FROM ` + p.q() + `.outbox WHERE published_at IS NULL AND rejected_at IS NULL`)
}

// relayConfig is a relay config for tests: short waits.
func (p *pgEnv) relayConfig() postgres.RelayConfig {
	return postgres.RelayConfig{
		Org: testOrg, Schema: p.schema,
		PollInterval: 200 * time.Millisecond, LockRetry: 50 * time.Millisecond,
		AckTimeout: 2 * time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	}
}

// assertExactlyOnceInOrder fails unless got is want: every id once, in
// the same order.
func assertExactlyOnceInOrder(t testing.TB, what string, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s: id %s appears %d times", what, id, n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d ids, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: position %d is %s, want %s (order broken)", what, i, got[i], want[i])
		}
	}
}

// orderOfFirst returns ids with every id after its first occurrence
// removed.
func orderOfFirst(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// must returns a function that fails the test if err is not nil and
// returns v otherwise: must(f())(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// metricValue returns the value of a counter or gauge, or the sample
// count of a histogram.
func metricValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("metric %s has no value", fmt.Sprint(c.Desc()))
	return 0
}
