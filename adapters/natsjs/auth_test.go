package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// authBundle is an embedded server with authentication on, the streams,
// a directory of the organisations in the bucket and their consumers.
type authBundle struct {
	t     *testing.T
	srv   *natsjs.Server
	keys  *natsjs.KeyStore
	admin jetstream.JetStream
	orgs  []string
}

func newAuthBundle(t *testing.T, orgs ...string) *authBundle {
	t.Helper()
	ctx := testenv.Context(t)
	keys, err := natsjs.NewKeyStore(filepath.Join(t.TempDir(), natsjs.KeysDir))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := natsjs.NewAuth(keys, orgs)
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
	b := &authBundle{t: t, srv: srv, keys: keys, orgs: orgs}
	nc := b.connect(natsjs.UserAdmin).nc
	if b.admin, err = jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, b.admin, natsjs.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	d := &directory.Directory{}
	for _, o := range orgs {
		d.Organisations = append(d.Organisations, directory.Organisation{ID: o, Name: "Test " + o, Country: o[:2], Languages: []string{"pt"}, Synthetic: true})
		if err := natsjs.EnsureOrgConsumer(ctx, b.admin, o); err != nil {
			t.Fatal(err)
		}
	}
	store, err := natsjs.NewDirectoryStore(ctx, b.admin, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// authConn is a TCP connection as one user, with the asynchronous errors
// the server sent it.
type authConn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	errs []error
}

// violations returns the permission violations reported so far.
func (c *authConn) violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, err := range c.errs {
		if errors.Is(err, nats.ErrPermissionViolation) {
			out = append(out, err.Error())
		}
	}
	return out
}

// waitViolation waits until a permission violation mentioning subject is
// reported.
func (c *authConn) waitViolation(t *testing.T, subject string) {
	t.Helper()
	testenv.Await(t, "a permission violation on "+subject, func() bool {
		return slices.ContainsFunc(c.violations(), func(v string) bool { return strings.Contains(v, `"`+subject+`"`) })
	})
}

// connect connects over TCP as user name (an organisation uses its inbox
// prefix), and closes the connection at cleanup.
func (b *authBundle) connect(name string, extra ...nats.Option) *authConn {
	b.t.Helper()
	c, err := b.tryConnect(name, extra...)
	if err != nil {
		b.t.Fatalf("connect as %s: %v", name, err)
	}
	return c
}

func (b *authBundle) tryConnect(name string, extra ...nats.Option) (*authConn, error) {
	c := &authConn{}
	opt, err := b.keys.ConnectOption(name)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{opt, nats.Name(name), nats.Timeout(time.Minute), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
	})}
	if p := natsjs.OrgInboxPrefix(name); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	c.nc, err = nats.Connect(b.srv.ClientURL(), append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	b.t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc, jetstream.WithDefaultTimeout(time.Minute)); err != nil {
		return nil, err
	}
	return c, nil
}

// deliver stores an event on org's delivery subject of referral id, as the
// routing service would.
func (b *authBundle) deliver(org, id string) *events.Envelope {
	b.t.Helper()
	ev, err := events.New(events.SourceRouting, id, &events.Accepted{Placement: "p1"})
	if err != nil {
		b.t.Fatal(err)
	}
	subject, err := events.DeliverySubject(org, id)
	if err != nil {
		b.t.Fatal(err)
	}
	m, err := events.ToNATS(subject, ev)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx := testenv.Context(b.t)
	if _, err := b.admin.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: nats.Header(m.Header), Data: m.Data}); err != nil {
		b.t.Fatal(err)
	}
	env, err := events.DecodeEvent(ev)
	if err != nil {
		b.t.Fatal(err)
	}
	return env
}

// consumerInfo returns a DELIVERY consumer's info as the administrator
// sees it.
func (b *authBundle) consumerInfo(name string) (*jetstream.ConsumerInfo, error) {
	ctx := testenv.Context(b.t)
	c, err := b.admin.Consumer(ctx, natsjs.StreamDelivery, name)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestOrgNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ org, consumer, inbox string }{
		{"pt.apav", "org_pt_apav", "_INBOX_pt_apav"},
		{"fr.france-victimes-75", "org_fr_france-victimes-75", "_INBOX_fr_france-victimes-75"},
		{"pt.*", "", ""},
		{"pt.a.>", "", ""},
		{"apav", "", ""},
	} {
		if got := natsjs.OrgConsumerName(tt.org); got != tt.consumer {
			t.Errorf("OrgConsumerName(%q) = %q, want %q", tt.org, got, tt.consumer)
		}
		if got := natsjs.OrgInboxPrefix(tt.org); got != tt.inbox {
			t.Errorf("OrgInboxPrefix(%q) = %q, want %q", tt.org, got, tt.inbox)
		}
	}
	if r := natsjs.OrgReaderNames("pt.apav"); len(r) != natsjs.OrgReaderSlots || r[0] != "org_pt_apav_r1" {
		t.Errorf("OrgReaderNames(pt.apav) = %v", r)
	}
	if _, err := natsjs.OrgPermissions("pt.>"); !errors.Is(err, natsjs.ErrAuth) {
		t.Errorf("OrgPermissions of a wildcard id = %v", err)
	}
	perms, err := natsjs.OrgPermissions("pt.apav")
	if err != nil {
		t.Fatal(err)
	}
	if got := perms.Subscribe.Allow; !slices.Equal(got, []string{"_INBOX_pt_apav.>"}) {
		t.Errorf("an organisation may subscribe to %v", got)
	}
	for _, s := range perms.Publish.Allow {
		if s == ">" || strings.HasPrefix(s, "_INBOX") || (strings.HasPrefix(s, "in.") && s != "in.pt.apav") {
			t.Errorf("an organisation may publish to %q", s)
		}
	}
}

func TestKeyStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := natsjs.NewKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	pub, err := ks.Ensure("pt.apav")
	if err != nil {
		t.Fatal(err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		t.Fatalf("Ensure returned %q", pub)
	}
	if again, err := ks.Ensure("pt.apav"); err != nil || again != pub {
		t.Errorf("a second Ensure gave %q, %v; want the same key", again, err)
	}
	fi, err := os.Stat(ks.Path("pt.apav"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// The file is a seed file nats.go reads as it is.
	opt, err := nats.NkeyOptionFromSeed(ks.Path("pt.apav"))
	if err != nil || opt == nil {
		t.Errorf("nats.NkeyOptionFromSeed: %v", err)
	}
	seed, err := ks.Seed("pt.apav")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(seed), pub) || !strings.Contains(string(seed), "_INBOX_pt_apav") {
		t.Errorf("seed file does not say its public key and inbox prefix:\n%s", seed)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := kp.PublicKey(); p != pub {
		t.Errorf("seed file holds the key of %s, want %s", p, pub)
	}
	for _, bad := range []string{"../x", "pt", "pt.a/b", "", "Admin"} {
		if _, err := ks.Ensure(bad); !errors.Is(err, natsjs.ErrAuth) {
			t.Errorf("Ensure(%q) = %v, want ErrAuth", bad, err)
		}
	}
	if _, err := ks.Seed("pt.none"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Seed of a missing key = %v, want os.ErrNotExist", err)
	}
}

func TestAuthValidate(t *testing.T) {
	t.Parallel()
	ks, err := natsjs.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := natsjs.NewAuth(ks, []string{"pt.a", "pt.b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	lim := *a
	lim.Limits = natsjs.OrgLimits{MaxConnections: -1}
	if _, err := natsjs.StartServer(context.Background(), natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true, Auth: &lim}, nil); err == nil || !strings.Contains(err.Error(), "MaxConnections") {
		t.Errorf("StartServer with a negative connection limit: %v", err)
	}
	dup := *a
	dup.Orgs = map[string]string{"pt.a": a.Orgs["pt.a"], "pt.b": a.Orgs["pt.a"]}
	if err := dup.Validate(); !errors.Is(err, natsjs.ErrAuth) {
		t.Errorf("two organisations with one key: %v", err)
	}
	bad := *a
	bad.Routing = "not a key"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "Auth.Routing") {
		t.Errorf("an invalid routing key: %v", err)
	}
	wild := *a
	wild.Orgs = map[string]string{"pt.*": a.Orgs["pt.a"]}
	if err := wild.Validate(); !errors.Is(err, natsjs.ErrAuth) {
		t.Errorf("a wildcard organisation id: %v", err)
	}
	if _, err := natsjs.StartServer(context.Background(), natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true, Auth: &bad}, nil); err == nil {
		t.Error("StartServer accepted an invalid Auth")
	}
}

func TestWrongCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a")
	// No credentials.
	_, err := nats.Connect(b.srv.ClientURL(), nats.Timeout(time.Minute))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connect without credentials = %v, want an authorization violation", err)
	}
	// A valid key the server does not know.
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	file := filepath.Join(t.TempDir(), "stranger.nk")
	if err := os.WriteFile(file, natsjs.SeedFile("pt.a", pub, seed), 0o600); err != nil {
		t.Fatal(err)
	}
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nats.Connect(b.srv.ClientURL(), opt, nats.Timeout(time.Minute))
	if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "uthorization") {
		t.Errorf("connect with an unknown key = %v, want an authorization violation", err)
	}
}

// Organisation A against organisation B: every attempt to act as B or to
// read what B receives is refused, and changes nothing.
func TestOrganisationsAreIsolated(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b")
	a := b.connect("pt.a")
	bb := b.connect("pt.b")
	ref := events.NewReferralID()
	bConsumer := natsjs.OrgConsumerName("pt.b")

	// A subscribes as widely as it can: every one is refused.
	got := make(chan *nats.Msg, 64)
	for _, s := range []string{">", "_INBOX.>", "_INBOX_pt_b.>", "out.>", "out.pt.b.>", "$JS.ACK.>", "in.>"} {
		if _, err := a.nc.ChanSubscribe(s, got); err != nil {
			t.Fatalf("subscribe %s: %v", s, err)
		}
		a.waitViolation(t, s)
	}

	// A cannot publish on B's subject.
	ev, err := events.New(events.SourceOf("pt.b"), ref, &events.Accepted{Placement: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS("in.pt.b", ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.js.PublishMsg(shortCtx(t), &nats.Msg{Subject: "in.pt.b", Header: nats.Header(m.Header), Data: m.Data}); err == nil {
		t.Error("A published on in.pt.b")
	}
	a.waitViolation(t, "in.pt.b")
	info, err := b.admin.Stream(context.Background(), natsjs.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("INBOUND holds %d messages", n)
	}

	// B receives a delivery and pulls it with its own consumer; A sees
	// none of it.
	b.deliver("pt.b", ref)
	bc, err := bb.js.Consumer(context.Background(), natsjs.StreamDelivery, bConsumer)
	if err != nil {
		t.Fatalf("B opens its consumer: %v", err)
	}
	batch, err := bc.Fetch(1, jetstream.FetchMaxWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var bm jetstream.Msg
	for msg := range batch.Messages() {
		bm = msg
	}
	if bm == nil {
		t.Fatalf("B received nothing: %v", batch.Error())
	}
	if err := bm.DoubleAck(context.Background()); err != nil {
		t.Fatalf("B acknowledges: %v", err)
	}

	// A cannot open, pull from, or redirect B's consumer, nor create one
	// on B's deliveries, nor read B's subjects through a reader of its own.
	b.deliver("pt.b", ref) // pending for B
	if _, err := a.js.Consumer(shortCtx(t), natsjs.StreamDelivery, bConsumer); err == nil {
		t.Error("A opened B's consumer")
	}
	if _, err := a.nc.Request("$JS.API.CONSUMER.MSG.NEXT.DELIVERY."+bConsumer, []byte(`{"batch":1}`), 500*time.Millisecond); err == nil {
		t.Error("A pulled from B's consumer")
	}
	attempts := []jetstream.ConsumerConfig{
		{Name: "spy", FilterSubject: "out.pt.b.>"},
		{Name: natsjs.OrgReaderNames("pt.a")[0], FilterSubject: "out.pt.b.>"},
		{Name: natsjs.OrgReaderNames("pt.a")[0], FilterSubjects: []string{"out.pt.a.>", "out.pt.b.>"}},
		{Name: natsjs.OrgReaderNames("pt.a")[0]},
		{Durable: bConsumer, FilterSubject: "out.pt.a.>", AckPolicy: jetstream.AckExplicitPolicy},
		{Name: natsjs.OrgReaderNames("pt.b")[0], FilterSubject: "out.pt.b.>"},
	}
	for _, cfg := range attempts {
		if _, err := a.js.CreateOrUpdateConsumer(shortCtx(t), natsjs.StreamDelivery, cfg); err == nil {
			t.Errorf("A created consumer %+v", cfg)
		}
	}
	if _, err := a.js.OrderedConsumer(shortCtx(t), natsjs.StreamDelivery, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"out.pt.b.>"}}); err == nil {
		t.Error("A created an ordered consumer on B's deliveries")
	}
	if err := a.js.DeleteConsumer(shortCtx(t), natsjs.StreamDelivery, bConsumer); err == nil {
		t.Error("A deleted B's consumer")
	}
	if _, err := a.js.Stream(shortCtx(t), natsjs.StreamReferrals); err == nil {
		t.Errorf("A read the info of stream %s", natsjs.StreamReferrals)
	}
	// What standard clients ask first: the configuration, no figures of
	// other organisations' traffic.
	for _, s := range []string{natsjs.StreamDelivery, natsjs.StreamInbound} {
		st, err := a.js.Stream(shortCtx(t), s)
		if err != nil {
			t.Errorf("A reads the configuration of stream %s: %v", s, err)
			continue
		}
		if info := st.CachedInfo(); info.State.Msgs != 0 || info.State.Bytes != 0 || info.State.Consumers != 0 || info.State.NumSubjects != 0 {
			t.Errorf("A read the state of stream %s: %+v", s, info.State)
		}
	}

	ci, err := b.consumerInfo(bConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Config.FilterSubject != "out.pt.b.>" || ci.NumPending != 1 || ci.NumAckPending != 0 {
		t.Errorf("B's consumer after A's attempts: filter %s, %d pending, %d unacknowledged", ci.Config.FilterSubject, ci.NumPending, ci.NumAckPending)
	}
	st, err := b.admin.Stream(context.Background(), natsjs.StreamDelivery)
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.ConsumerNames(context.Background()).Name() {
		if name != bConsumer && name != natsjs.OrgConsumerName("pt.a") {
			t.Errorf("consumer %s exists after A's attempts", name)
		}
	}
	select {
	case msg := <-got:
		t.Errorf("A's wildcard subscriptions received %s", msg.Subject)
	default:
	}
}

// What an organisation needs works under its permissions: publish a
// command, pull and acknowledge its own deliveries, read its own
// subjects through a reader, read the directory.
func TestOrganisationCanWork(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b")
	a := b.connect("pt.a")
	ctx := testenv.Context(t)
	ref := events.NewReferralID()

	ev, err := events.New(events.SourceOf("pt.a"), ref, &events.Accepted{Placement: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.ToNATS("in.pt.a", ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.js.PublishMsg(ctx, &nats.Msg{Subject: "in.pt.a", Header: nats.Header(m.Header), Data: m.Data}); err != nil {
		t.Fatalf("A publishes its command: %v", err)
	}

	b.deliver("pt.a", ref)
	b.deliver("pt.b", ref)
	c, err := a.js.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.a"))
	if err != nil {
		t.Fatalf("A opens its consumer: %v", err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(time.Minute))
	if err != nil {
		t.Fatalf("A pulls: %v", err)
	}
	if msg.Subject() != "out.pt.a."+ref {
		t.Errorf("A received %s", msg.Subject())
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatalf("A acknowledges: %v", err)
	}

	reader, err := a.js.CreateConsumer(ctx, natsjs.StreamDelivery, jetstream.ConsumerConfig{
		Name: natsjs.OrgReaderNames("pt.a")[3], FilterSubject: "out.pt.a." + ref, AckPolicy: jetstream.AckNonePolicy,
	})
	if err != nil {
		t.Fatalf("A opens a reader of its referral: %v", err)
	}
	if rm, err := reader.Next(jetstream.FetchMaxWait(time.Minute)); err != nil || rm.Subject() != "out.pt.a."+ref {
		t.Errorf("A's reader: %v", err)
	}
	if err := a.js.DeleteConsumer(ctx, natsjs.StreamDelivery, natsjs.OrgReaderNames("pt.a")[3]); err != nil {
		t.Errorf("A deletes its reader: %v", err)
	}

	kv, err := a.js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatalf("A opens the directory: %v", err)
	}
	e, err := kv.Get(ctx, directory.OrgKey("pt.b"))
	if err != nil {
		t.Fatalf("A reads pt.b in the directory: %v", err)
	}
	var o directory.Organisation
	if err := json.Unmarshal(e.Value(), &o); err != nil || o.ID != "pt.b" {
		t.Errorf("directory entry %s: %v", e.Value(), err)
	}
	store, err := natsjs.NewDirectoryStore(ctx, a.js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := store.Load(ctx)
	if err != nil || len(d.Organisations) != 2 {
		t.Fatalf("A loads the directory: %v", err)
	}
	if _, err := kv.Put(shortCtx(t), directory.OrgKey("pt.a"), []byte("{}")); err == nil {
		t.Error("A wrote the directory")
	}
	if v := a.violations(); len(v) != 1 || !strings.Contains(v[0], "$KV.directory") {
		t.Errorf("permission violations while working: %v", v)
	}
}

func TestRoutingUserSendsNoCommands(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a")
	r := b.connect(natsjs.UserRouting)
	if _, err := r.js.Publish(shortCtx(t), "in.pt.a", []byte("{}")); err == nil {
		t.Error("the routing user published a command")
	}
	r.waitViolation(t, "in.pt.a")
}

func TestReloadAuth(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b")
	if _, err := b.tryConnect("pt.c"); err == nil {
		t.Fatal("pt.c has no key yet and connected")
	}
	if _, err := b.keys.Ensure("pt.c"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.tryConnect("pt.c"); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("pt.c connected before the reload: %v", err)
	}
	bConn := b.connect("pt.b")

	// pt.c joins, pt.b leaves.
	auth, err := natsjs.NewAuth(b.keys, []string{"pt.a", "pt.c"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.srv.ReloadAuth(auth); err != nil {
		t.Fatalf("ReloadAuth: %v", err)
	}
	c := b.connect("pt.c")
	if _, err := c.js.Publish(context.Background(), "in.pt.c", []byte("x")); err != nil {
		t.Errorf("pt.c publishes after the reload: %v", err)
	}
	testenv.Await(t, "pt.b's connection to be closed", func() bool { return !bConn.nc.IsConnected() })
	if _, err := b.tryConnect("pt.b"); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("pt.b connects after its removal: %v", err)
	}

	bad := *auth
	bad.Admin = "nope"
	if err := b.srv.ReloadAuth(&bad); !errors.Is(err, natsjs.ErrAuth) {
		t.Errorf("ReloadAuth of an invalid Auth: %v", err)
	}
	open, err := natsjs.StartServer(context.Background(), natsjs.ServerConfig{StoreDir: t.TempDir(), DontListen: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := open.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	if err := open.ReloadAuth(auth); !errors.Is(err, natsjs.ErrAuth) {
		t.Errorf("ReloadAuth on a server without authentication: %v", err)
	}
}

// TestOrganisationConsumerOnFirstUse: an organisation has no consumer
// until it reads over NATS; its first look-up makes it, to be removed
// when idle, and looking up another's makes nothing.
func TestOrganisationConsumerOnFirstUse(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b")
	ctx := testenv.Context(t)
	for _, org := range b.orgs {
		if err := b.admin.DeleteConsumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(org)); err != nil {
			t.Fatal(err)
		}
	}
	a := b.connect("pt.a")
	c, err := a.js.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.a"))
	if err != nil {
		t.Fatalf("first use of pt.a's consumer: %v", err)
	}
	if got := c.CachedInfo().Config; got.InactiveThreshold != natsjs.OrgConsumerInactive || got.FilterSubject != "out.pt.a.>" || got.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("pt.a's consumer: %+v", got)
	}
	if _, err := b.admin.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.a")); err != nil {
		t.Errorf("pt.a's consumer after its first use, as the administrator sees it: %v", err)
	}
	// Again: the same consumer, nothing changed.
	if _, err := a.js.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.a")); err != nil {
		t.Errorf("second use: %v", err)
	}
	// Denied by its permissions: the request finds no answer.
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	if _, err := a.js.Consumer(dctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.b")); err == nil {
		t.Error("pt.a looked up pt.b's consumer")
	}
	if _, err := b.admin.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.b")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("pt.b's consumer after pt.a asked for it: %v, want none", err)
	}
}
