package e2etest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/seal"
)

// TestMain fails the tests if a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// databaseURL returns the test database's URL; without one the test is
// skipped with instructions, except in CI (CI=true), where it fails.
func databaseURL(t *testing.T) string { return testenv.DatabaseURL(t) }

// background runs fn until the test ends, then cancels it and waits.
func background(t *testing.T, name string, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := testenv.Recv(t, name+" to stop", done); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// eventually polls cond until it returns true; msg says what is wrong
// while it does not (see testenv.Await for how long it waits).
func eventually(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	testenv.Await(t, "the end of: "+msg, cond)
}

// network is an embedded NATS server with the streams, a directory of two
// organisations in the KV bucket, and one routing service.
type network struct {
	srv   *natsjs.Server
	creds *natsjs.KeyStore // NATS keys: each party connects as itself
	keys  map[string]seal.Key
}

const (
	orgA = "pt.case-sys-a" // refers
	orgB = "pt.case-sys-b" // offers emotional support
)

func startNetwork(t *testing.T) *network {
	t.Helper()
	ctx := testenv.Context(t)
	creds, err := natsjs.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := natsjs.NewAuth(creds, []string{orgA, orgB})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Auth: auth}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	n := &network{srv: srv, creds: creds, keys: map[string]seal.Key{}}
	nc := n.connect(t, "setup", natsjs.UserAdmin)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{orgA, orgB} {
		if err := natsjs.EnsureOrgConsumer(ctx, js, org); err != nil {
			t.Fatal(err)
		}
	}

	// The directory, loaded into the KV bucket and followed into a view.
	d := &directory.Directory{}
	for org, needs := range map[string][]string{orgA: {events.NeedInfoCase}, orgB: {events.NeedSupportEmotional}} {
		k, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		n.keys[org] = k
		d.Organisations = append(d.Organisations, directory.Organisation{ID: org, Name: "Test " + org, Country: "pt",
			Languages: []string{"pt"}, AgeRecipient: k.Recipient, Synthetic: true})
		d.Services = append(d.Services, directory.Service{ID: org + ".support", Organisation: org, Name: "Support",
			Status: directory.StatusActive, Needs: needs, Languages: []string{"pt"}, Channels: []string{events.ChannelPhone},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"}})
	}
	d.Sort()
	store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatalf("ImportDirectory: %v", err)
	}
	view := directory.NewView()
	follower := natsjs.NewDirectoryFollower(store.KeyValue(), view, nil)
	background(t, "directory follower", follower.Run)
	select {
	case <-follower.Ready():
	case <-ctx.Done():
		t.Fatal("directory view not ready")
	}

	// The routing service.
	node, err := natsjs.NewNode(n.connect(t, "router", natsjs.UserRouting), view, natsjs.NodeConfig{
		Bus:     natsjs.BusConfig{},
		Service: routing.ServiceConfig{},
		Router:  natsjs.RouterConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := node.Router
	if err := rt.EnsureConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	background(t, "router", rt.Run)
	return n
}

// connect opens a TCP connection with the adapter's options as user (an
// organisation, or the node's admin or routing user), with its key.
func (n *network) connect(t *testing.T, name, user string) *nats.Conn {
	t.Helper()
	key, err := n.creds.ConnectOption(user)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(postgres.ConnectOptions(), nats.Name(name), key)
	if prefix := natsjs.OrgInboxPrefix(user); prefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(prefix))
	}
	nc, err := nats.Connect(n.srv.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// database is one party's schema in the test database.
type database struct {
	t      *testing.T
	pool   *pgxpool.Pool
	schema string
}

func newDatabase(t *testing.T, url, party string) *database {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	db := &database{t: t, schema: "e2e_" + party + "_" + hex.EncodeToString(b)}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 6
	if db.pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer cancel()
		for _, s := range []string{db.schema, db.schema + "_cms"} {
			if _, err := db.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
		}
		db.pool.Close()
	})
	return db
}

func (db *database) q() string { return pgx.Identifier{db.schema}.Sanitize() }

// run runs an adapter on the database until the test ends.
func (db *database) run(n *network, cfg postgres.Config) *postgres.Adapter {
	db.t.Helper()
	cfg.Schema = db.schema
	// Each organisation's adapter runs with that organisation's own
	// credentials; the coordinator's projection reads REFERRALS, which
	// only the node's own user may.
	user := cfg.Org
	if user == "" {
		user = natsjs.UserAdmin
	}
	a, err := postgres.New(db.pool, n.connect(db.t, "adapter-"+db.schema, user), cfg)
	if err != nil {
		db.t.Fatal(err)
	}
	background(db.t, "adapter "+db.schema, a.Run)
	eventually(db.t, "adapter not healthy", func() bool { return a.Health(context.Background()) == nil })
	return a
}

// inboxPayload returns the payload of the inbox row of type typ about
// referral ref, or nil.
func (db *database) inboxPayload(typ, ref string) map[string]any {
	var b []byte
	err := db.pool.QueryRow(context.Background(), `SELECT payload FROM `+db.q()+`.inbox WHERE type = $1 AND referral_id = $2`, typ, ref).Scan(&b)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (db *database) exec(sql string, args ...any) {
	db.t.Helper()
	if _, err := db.pool.Exec(context.Background(), sql, args...); err != nil {
		db.t.Fatalf("%s: %v", sql, err)
	}
}

// TestOutboxToOfferInAnotherOrganisationsInbox follows one referral from
// a case-system transaction in organisation A's database to an offer in
// organisation B's inbox table, B's acceptance back to A, A's sealed
// handover opened in B's database, and the coordinator's projection.
func TestOutboxToOfferInAnotherOrganisationsInbox(t *testing.T) {
	url := databaseURL(t)
	n := startNetwork(t)
	a, b, c := newDatabase(t, url, "a"), newDatabase(t, url, "b"), newDatabase(t, url, "c")
	a.run(n, postgres.Config{Org: orgA})
	b.run(n, postgres.Config{Org: orgB, Identity: n.keys[orgB].Identity})
	c.run(n, postgres.Config{Projection: true})

	// Organisation A's case system: its own table and the outbox, written
	// in one transaction.
	a.exec(`CREATE SCHEMA ` + pgx.Identifier{a.schema + "_cms"}.Sanitize())
	cases := pgx.Identifier{a.schema + "_cms", "cases"}.Sanitize()
	a.exec(`CREATE TABLE ` + cases + ` (id serial PRIMARY KEY, note text NOT NULL, referral_id text)`)
	req := &events.Requested{
		Profile: events.Profile{Needs: []string{events.NeedSupportEmotional}, Urgency: events.UrgencyRoutine,
			Location: events.Location{Country: "pt", Region: "PT17"}, Languages: []string{"pt"}, AgeBand: "adult",
			Channels: []string{events.ChannelPhone}},
		Consent: events.Consent{Referral: true, ShareData: true, GivenAt: time.Now().Add(-time.Hour), Method: "verbal", RecordedBy: "staff-s007"},
	}
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ref string
	err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO `+a.q()+`.outbox (type, payload) VALUES ($1, $2) RETURNING referral_id`,
			events.TypeReferralRequested, payload).Scan(&ref); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+cases+` (note, referral_id) VALUES ('synthetic case', $1)`, ref)
		return err
	})
	if err != nil {
		t.Fatalf("case system transaction: %v", err)
	}

	// The offer reaches organisation B's inbox table.
	var offer map[string]any
	eventually(t, "no offer in organisation B's inbox", func() bool {
		offer = b.inboxPayload(events.TypeReferralOffered, ref)
		return offer != nil
	})
	if offer["organisation"] != orgB || offer["referrer"] != orgA {
		t.Fatalf("offer = %v", offer)
	}
	if n := count(t, b, `SELECT count(*) FROM `+b.q()+`.inbox WHERE referral_id = $1 AND type = $2`, ref, events.TypeReferralOffered); n != 1 {
		t.Errorf("%d offers in B's inbox, want exactly one", n)
	}
	placement, _ := offer["placement"].(string)

	// B accepts through its own outbox; A sees the acceptance.
	b.exec(`INSERT INTO `+b.q()+`.outbox (type, referral_id, payload) VALUES ($1, $2, $3)`,
		events.TypeReferralAccepted, ref, map[string]any{"placement": placement})
	eventually(t, "no acceptance in organisation A's inbox", func() bool {
		return a.inboxPayload(events.TypeReferralAccepted, ref) != nil
	})

	// A hands the sealed case over; B's database holds it opened.
	caseFile := []byte(`{"note":"synthetic case file of the end-to-end test"}`)
	envelope, err := seal.Seal(n.keys[orgB].Recipient, caseFile)
	if err != nil {
		t.Fatal(err)
	}
	a.exec(`INSERT INTO `+a.q()+`.outbox (type, referral_id, payload) VALUES ($1, $2, $3)`, events.TypeReferralHandover, ref,
		events.Handover{Placement: placement, Recipient: n.keys[orgB].Recipient, Envelope: envelope})
	var plaintext []byte
	eventually(t, "handover not opened in organisation B's database", func() bool {
		err := b.pool.QueryRow(ctx, `SELECT plaintext FROM `+b.q()+`.envelopes WHERE referral_id = $1`, ref).Scan(&plaintext)
		return err == nil
	})
	if string(plaintext) != string(caseFile) {
		t.Errorf("opened case file = %q", plaintext)
	}
	if n := count(t, a, `SELECT count(*) FROM `+a.q()+`.outbox WHERE published_at IS NULL`); n != 0 {
		t.Errorf("%d of A's commands not published", n)
	}

	// The coordinator sees the flow.
	eventually(t, "the coordinator's projection does not show the accepted offer", func() bool {
		return count(t, c, `SELECT coalesce(sum(accepted), 0) FROM `+c.q()+`.flows_between_organisations
			WHERE from_organisation = $1 AND to_organisation = $2`, orgA, orgB) == 1
	})
	if st := scalar(t, c, `SELECT status FROM `+c.q()+`.referrals WHERE referral_id = $1`, ref); st != "in_progress" {
		t.Errorf("referral status in the projection = %q, want in_progress", st)
	}
}

func count(t *testing.T, db *database, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func scalar(t *testing.T, db *database, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}
