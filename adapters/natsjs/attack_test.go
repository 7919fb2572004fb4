package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// attackStreams are the streams an organisation must never write into,
// its own commands on in.<cc>.<org> apart.
var attackStreams = []string{
	natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamDelivery,
	natsjs.StreamTimers, natsjs.StreamDLQ, "KV_" + natsjs.BucketDirectory,
}

// inboxWatch counts what arrives on subjects another party listens on.
type inboxWatch struct {
	mu  sync.Mutex
	got []string
}

func (w *inboxWatch) add(who string) nats.MsgHandler {
	return func(m *nats.Msg) {
		w.mu.Lock()
		w.got = append(w.got, who+" received "+m.Subject)
		w.mu.Unlock()
	}
}

func (w *inboxWatch) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got...)
}

// With only its own seed, organisation pt.a tries to make anything land
// on a subject of any stream, or on another party's inbox: reply subjects
// of every service it can reach, push consumers delivering there,
// JetStream API requests with crafted replies and bodies, and key-value
// writes. Nothing may reach a stream but its own commands, and nobody
// else may receive anything.
func TestNoOrganisationReachesAStreamOrAnotherInbox(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b", "fr.c")
	ctx := testenv.Context(t)

	// Something on every stream, so that every target subject is real.
	ref, refC := events.NewReferralID(), events.NewReferralID()
	for _, org := range []string{"pt.a", "pt.b", "fr.c"} {
		b.deliver(org, ref)
	}
	b.deliver("fr.c", refC)
	for subject, data := range map[string]string{
		"referral.pt." + ref:   "event",
		"referral.fr." + refC:  "event",
		"timer." + ref + ".p1": "timer",
		"dlq.unauthorised":     "dead letter",
		"in.pt.b":              "command of pt.b",
	} {
		if _, err := b.admin.Publish(ctx, subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]uint64{}
	for _, s := range attackStreams {
		st, err := b.admin.Stream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		last[s] = st.CachedInfo().State.LastSeq
	}

	// Others listen on their inboxes and on a subject of the node's own.
	watch := &inboxWatch{}
	for _, org := range []string{"pt.b", "fr.c"} {
		c := b.connect(org)
		if _, err := c.nc.Subscribe(natsjs.OrgInboxPrefix(org)+".>", watch.add(org)); err != nil {
			t.Fatal(err)
		}
		if err := c.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	adminWatch := b.connect(natsjs.UserAdmin)
	for _, s := range []string{"_INBOX.victim.>", "$INVICTUS.PUSH.>", "timer.fire.>"} {
		if _, err := adminWatch.nc.Subscribe(s, watch.add("the node on "+s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := adminWatch.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The targets: every stream's subjects and every other party's inbox.
	targets := []string{
		"in.pt.b", "in.fr.c", "in.pt.a",
		"referral.pt." + ref, "referral.fr." + refC, "referral.pt." + events.NewReferralID(),
		"out.pt.b." + ref, "out.fr.c." + refC, "out.pt.a." + ref, "out.pt.b.x",
		"timer." + ref + ".p1", "timer.fire." + ref + ".p1",
		"dlq.unauthorised", "dlq.undecodable",
		"$KV.directory.org.pt.b", "$KV.directory.svc.pt.b.s",
		"_INBOX_pt_b.x", "_INBOX_pt_b.x.y", "_INBOX_fr_c.z", "_INBOX.victim.a",
		"$INVICTUS.PUSH.org_pt_b.x", "$INVICTUS.GATE.org_pt_b.CONSUMER.INFO.DELIVERY.org_pt_b",
	}

	a := b.connect("pt.a")
	tried := 0
	pub := func(subject, reply string, data []byte) {
		tried++
		_ = a.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: reply, Data: data})
	}
	reader := func(name, filter, deliver string) []byte {
		cfg := map[string]any{"name": name, "ack_policy": "none", "filter_subject": filter}
		if deliver != "" {
			cfg["deliver_subject"] = deliver
		}
		body, _ := json.Marshal(map[string]any{"stream_name": natsjs.StreamDelivery, "config": cfg})
		return body
	}
	watcher := func(name, filter, deliver string, extra map[string]any) []byte {
		cfg := map[string]any{"name": name, "ack_policy": "none", "filter_subject": filter, "deliver_subject": deliver}
		for k, v := range extra {
			cfg[k] = v
		}
		body, _ := json.Marshal(map[string]any{"stream_name": "KV_directory", "config": cfg})
		return body
	}
	own := natsjs.OrgConsumerName("pt.a")
	r1 := natsjs.OrgReaderNames("pt.a")[0]

	// 1. Reply subjects of everything pt.a may publish to.
	services := []struct {
		subject string
		data    []byte
	}{
		{"in.pt.a", []byte("attack")},
		{"$JS.API.STREAM.INFO.KV_directory", nil},
		{"$JS.API.STREAM.MSG.GET.KV_directory", []byte(`{"last_by_subj":"$KV.directory.org.pt.b"}`)},
		{"$JS.API.DIRECT.GET.KV_directory", []byte(`{"last_by_subj":"$KV.directory.org.pt.b"}`)},
		{"$JS.API.DIRECT.GET.KV_directory", []byte(`{"seq":1,"next_by_subj":"$KV.directory.>","batch":50}`)},
		{"$JS.API.DIRECT.GET.KV_directory.$KV.directory.org.pt.b", nil},
		{"$JS.API.CONSUMER.INFO.DELIVERY." + own, nil},
		{"$JS.API.CONSUMER.MSG.NEXT.DELIVERY." + own, []byte(`{"batch":5,"no_wait":true}`)},
		{"$JS.API.CONSUMER.MSG.NEXT.DELIVERY." + r1, []byte(`{"batch":5,"no_wait":true}`)},
		{"$JS.ACK.DELIVERY." + own + ".1.1.1.1.0", []byte("+NXT")},
		{"$JS.FC.KV_directory.x.1", nil},
		{"$JS.API.INFO", nil},
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + r1 + ".out.pt.a.>", reader(r1, "out.pt.a.>", "")},
		{"$JS.API.CONSUMER.DELETE.DELIVERY." + r1, nil},
	}
	for _, s := range services {
		for _, target := range targets {
			pub(s.subject, target, s.data)
		}
	}
	// 2. The targets themselves, with and without a reply.
	for _, target := range targets {
		pub(target, "", []byte("attack"))
		pub(target, targets[0], []byte("attack"))
	}
	// 3. Push consumers delivering onto the targets, on every stream.
	for i, target := range targets {
		for _, stream := range attackStreams {
			name := fmt.Sprintf("spy%d", i)
			cfg := map[string]any{"name": name, "ack_policy": "none", "deliver_subject": target}
			body, _ := json.Marshal(map[string]any{"stream_name": stream, "config": cfg})
			pub("$JS.API.CONSUMER.CREATE."+stream+"."+name, "_INBOX_pt_a.r", body)
		}
		pub("$JS.API.CONSUMER.CREATE.DELIVERY."+r1+".out.pt.a.>", "_INBOX_pt_a.r", reader(r1, "out.pt.a.>", target))
		pub("$JS.API.CONSUMER.CREATE.KV_directory.w"+fmt.Sprint(i)+".$KV.directory.>", "_INBOX_pt_a.r",
			watcher("w"+fmt.Sprint(i), "$KV.directory.>", target, nil))
		pub("$JS.API.CONSUMER.DURABLE.CREATE.DELIVERY.d"+fmt.Sprint(i), "_INBOX_pt_a.r",
			[]byte(`{"stream_name":"DELIVERY","config":{"durable_name":"d`+fmt.Sprint(i)+`","deliver_subject":"`+target+`"}}`))
	}
	// 4. Consumers that are not pt.a's to create, or not as asked.
	bad := []struct{ subject, body string }{
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + r1 + ".out.pt.b.>", string(reader(r1, "out.pt.b.>", ""))},
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + r1, string(reader(r1, ">", ""))},
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + r1, `{"stream_name":"DELIVERY","config":{"name":"` + r1 + `","ack_policy":"none","filter_subjects":["out.pt.a.>","out.pt.b.>"]}}`},
		{"$JS.API.CONSUMER.CREATE.DELIVERY.spy.out.pt.a.>", string(reader("spy", "out.pt.a.>", ""))},
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + own + ".out.pt.a.>", `{"stream_name":"DELIVERY","config":{"durable_name":"` + own + `","ack_policy":"none","filter_subject":"out.pt.a.>"}}`},
		{"$JS.API.CONSUMER.CREATE.DELIVERY.org_pt_b_r1.out.pt.b.>", string(reader("org_pt_b_r1", "out.pt.b.>", ""))},
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + r1 + ".out.pt.a.>", `{"stream_name":"DELIVERY","config":{"name":"` + r1 + `","ack_policy":"none","filter_subject":"out.pt.a.>","direct":true}}`},
		{"$JS.API.CONSUMER.CREATE.DELIVERY." + r1 + ".out.pt.a.>", `{"stream_name":"DELIVERY","config":{"name":"` + r1 + `","ack_policy":"none","filter_subject":"out.pt.a.>","inactive_threshold":86400000000000}}`},
		{"$JS.API.CONSUMER.CREATE.REFERRALS.spy", `{"stream_name":"REFERRALS","config":{"name":"spy","ack_policy":"none"}}`},
		{"$JS.API.CONSUMER.CREATE.KV_directory.w", string(watcher("w", ">", "_INBOX_pt_a.w", nil))},
		{"$JS.API.CONSUMER.CREATE.KV_directory.w", string(watcher("w", "$KV.directory.>", "_INBOX_pt_a.*", nil))},
		{"$JS.API.CONSUMER.CREATE.KV_directory.w", string(watcher("w", "$KV.directory.>", "_INBOX_pt_a.w", map[string]any{"durable_name": "w"}))},
		{"$JS.API.CONSUMER.CREATE.KV_directory.w", string(watcher("w", "$KV.directory.>", "_INBOX_pt_a.w", map[string]any{"ack_policy": "explicit"}))},
		{"$JS.API.CONSUMER.CREATE.KV_directory", string(watcher("", "$KV.directory.>", "_INBOX_pt_b.w", nil))},
		{"$JS.API.CONSUMER.CREATE.DELIVERY", string(reader("", "out.pt.b.>", ""))},
		{"$JS.API.CONSUMER.DELETE.DELIVERY." + natsjs.OrgConsumerName("pt.b"), ""},
		{"$JS.API.CONSUMER.DELETE.DELIVERY." + own, ""},
		{"$JS.API.CONSUMER.INFO.DELIVERY." + natsjs.OrgConsumerName("pt.b"), ""},
		{"$JS.API.CONSUMER.MSG.NEXT.DELIVERY." + natsjs.OrgConsumerName("pt.b"), `{"batch":5,"no_wait":true}`},
		{"$JS.ACK.DELIVERY." + natsjs.OrgConsumerName("pt.b") + ".1.1.1.1.0", "+ACK"},
	}
	// 5. The rest of JetStream's API, aimed at the targets.
	for _, api := range []string{
		"STREAM.CREATE.SPY", "STREAM.UPDATE.REFERRALS", "STREAM.DELETE.DLQ", "STREAM.PURGE.REFERRALS",
		"STREAM.MSG.DELETE.REFERRALS", "STREAM.MSG.GET.DELIVERY", "DIRECT.GET.REFERRALS", "STREAM.INFO.DELIVERY",
		"STREAM.NAMES", "STREAM.LIST", "CONSUMER.LIST.DELIVERY", "CONSUMER.NAMES.DELIVERY", "ACCOUNT.PURGE.$G",
		"STREAM.SNAPSHOT.REFERRALS", "STREAM.RESTORE.REFERRALS", "CONSUMER.PAUSE.DELIVERY." + own,
		"CONSUMER.UNPIN.DELIVERY." + own, "CONSUMER.LEADER.STEPDOWN.DELIVERY." + own, "SERVER.REMOVE",
	} {
		for _, target := range targets {
			body := `{"name":"SPY","subjects":["` + target + `"],"deliver_subject":"` + target + `","seq":1}`
			bad = append(bad, struct{ subject, body string }{"$JS.API." + api, body})
		}
	}
	for _, x := range bad {
		for _, reply := range []string{"_INBOX_pt_a.r", "referral.pt." + ref, "_INBOX_pt_b.r"} {
			pub(x.subject, reply, []byte(x.body))
		}
	}
	// 6. The directory bucket, through the key-value API.
	kv, err := a.js.KeyValue(ctx, natsjs.BucketDirectory)
	if err != nil {
		t.Fatalf("pt.a opens the directory: %v", err)
	}
	kvOps := []func(context.Context) error{
		func(c context.Context) error { _, err := kv.Put(c, directory.OrgKey("pt.b"), []byte("{}")); return err },
		func(c context.Context) error {
			_, err := kv.Create(c, directory.OrgKey("pt.z"), []byte("{}"))
			return err
		},
		func(c context.Context) error {
			_, err := kv.Update(c, directory.OrgKey("pt.b"), []byte("{}"), 1)
			return err
		},
		func(c context.Context) error { return kv.Delete(c, directory.OrgKey("pt.b")) },
		func(c context.Context) error { return kv.Purge(c, directory.OrgKey("pt.b")) },
	}
	refused := 0
	for _, op := range kvOps {
		tried++
		if op(shortCtx(t)) != nil {
			refused++
		}
	}

	// Everything pt.a sent has been handled once its last requests are
	// answered: a command (same stream, in order) and a directory read.
	if _, err := a.js.Publish(ctx, "in.pt.a", []byte("attack")); err != nil {
		t.Fatalf("pt.a's own command: %v", err)
	}
	if _, err := a.js.KeyValue(ctx, natsjs.BucketDirectory); err != nil {
		t.Fatal(err)
	}
	if _, err := a.nc.Request("$JS.API.CONSUMER.INFO.DELIVERY."+own, nil, time.Minute); err != nil {
		t.Fatal(err)
	}

	// Nothing reached a stream but pt.a's own commands.
	reached := 0
	for _, s := range attackStreams {
		st, err := b.admin.Stream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for seq := last[s] + 1; seq <= st.CachedInfo().State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // a work queue's message taken meanwhile
			}
			// pt.a's own command subject may hold anything pt.a sent
			// there, replies it aimed there included; those replies
			// may be its own deliveries, stored under their delivery
			// subject (the router sets them aside).
			if s == natsjs.StreamInbound && (m.Subject == "in.pt.a" || strings.HasPrefix(m.Subject, "out.pt.a.")) {
				continue
			}
			reached++
			t.Errorf("%s gained %s: %.80q", s, m.Subject, m.Data)
		}
	}
	// Nobody else received anything.
	for _, got := range watch.all() {
		reached++
		t.Errorf("%s", got)
	}
	// No consumer pt.a did not create itself as allowed.
	for _, s := range attackStreams {
		st, err := b.admin.Stream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for info := range st.ListConsumers(ctx).Info() {
			name := info.Name
			if name == natsjs.OrgConsumerName("pt.a") || name == natsjs.OrgConsumerName("pt.b") || name == natsjs.OrgConsumerName("fr.c") {
				continue
			}
			if s == natsjs.StreamDelivery && strings.HasPrefix(name, r1[:len(r1)-1]) && info.Config.DeliverSubject == "" {
				continue
			}
			reached++
			t.Errorf("consumer %s on %s (deliver %q, filter %q) exists", name, s, info.Config.DeliverSubject, info.Config.FilterSubject)
		}
	}
	refused += tried - len(kvOps) - reached
	t.Logf("pt.a tried %d ways to reach %d targets (every stream, other organisations' inboxes, the node's): %d refused, %d reached",
		tried, len(targets), refused, reached)
	if reached != 0 || refused != tried {
		t.Errorf("%d of %d attempts reached something", tried-refused, tried)
	}
}

// An organisation's account is created at its first connection and
// bounds its connections at once; another organisation's count is its own.
func TestOrganisationAccountLimits(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	keys, err := natsjs.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	auth, err := natsjs.NewAuth(keys, []string{"pt.a", "pt.b"})
	if err != nil {
		t.Fatal(err)
	}
	auth.Limits = natsjs.OrgLimits{MaxConnections: 2}
	srv, err := natsjs.StartServer(ctx, natsjs.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Auth: auth}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	b := &authBundle{t: t, srv: srv, keys: keys}
	if n := srv.OrgAccounts(); n != 0 {
		t.Errorf("%d organisation accounts before anyone connected", n)
	}
	a1 := b.connect("pt.a")
	b.connect("pt.a")
	if _, err := b.tryConnect("pt.a"); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a third connection of pt.a: %v, want an authorization violation", err)
	}
	b.connect("pt.b")
	b.connect("pt.b")
	if n := srv.OrgAccounts(); n != 2 {
		t.Errorf("%d organisation accounts after pt.a and pt.b connected, want 2", n)
	}
	a1.nc.Close()
	testenv.Await(t, "pt.a to connect again once one of its connections closed", func() bool {
		_, err := b.tryConnect("pt.a")
		return err == nil
	})
}

// An organisation may hold natsjs.OrgMaxWatchers directory watchers at
// once: its next ones are refused, and nothing else is affected: its
// watchers keep receiving the directory's changes, its durable consumer
// and its readers work, another organisation opens as many watchers of
// its own, and once it closes one, it may open one again.
func TestOrganisationWatchersAreBounded(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t, "pt.a", "pt.b")
	ctx := testenv.Context(t)
	// watch opens a watcher and waits for the initial values.
	watch := func(c *authConn) (jetstream.KeyWatcher, error) {
		kv, err := c.js.KeyValue(ctx, natsjs.BucketDirectory)
		if err != nil {
			return nil, err
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			return nil, err
		}
		for e := range w.Updates() {
			if e == nil {
				t.Cleanup(func() { _ = w.Stop() })
				return w, nil // the initial values are in: the watcher works
			}
		}
		return nil, errors.New("the watcher closed")
	}
	a := b.connect("pt.a")
	var watchers []jetstream.KeyWatcher
	for i := range natsjs.OrgMaxWatchers {
		w, err := watch(a)
		if err != nil {
			t.Fatalf("watcher %d of pt.a: %v", i+1, err)
		}
		watchers = append(watchers, w)
	}
	tried, refused := 0, 0
	for range 4 {
		tried++
		if _, err := watch(a); err != nil && strings.Contains(err.Error(), "directory watchers open") {
			refused++
		} else {
			t.Errorf("watcher %d of pt.a: %v, want a refusal", natsjs.OrgMaxWatchers+1, err)
		}
	}

	// pt.a's watchers see a change made after the refusals.
	store, err := natsjs.NewDirectoryStore(ctx, b.admin, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Organisations[0].Name = "Renamed after the refusals"
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	for i, w := range watchers {
		select {
		case e := <-w.Updates():
			if e == nil || !strings.Contains(string(e.Value()), "Renamed after the refusals") {
				t.Errorf("watcher %d of pt.a received %v", i+1, e)
			}
		case <-ctx.Done():
			t.Fatalf("watcher %d of pt.a received no change", i+1)
		}
	}
	// pt.a's durable consumer and a reader work.
	ref := events.NewReferralID()
	b.deliver("pt.a", ref)
	c, err := a.js.Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName("pt.a"))
	if err != nil {
		t.Fatalf("pt.a opens its consumer: %v", err)
	}
	if m, err := c.Next(jetstream.FetchMaxWait(time.Minute)); err != nil || m.Subject() != "out.pt.a."+ref {
		t.Errorf("pt.a pulls its delivery: %v", err)
	}
	if _, err := a.js.CreateConsumer(ctx, natsjs.StreamDelivery, jetstream.ConsumerConfig{
		Name: natsjs.OrgReaderNames("pt.a")[0], FilterSubject: "out.pt.a." + ref, AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Errorf("pt.a opens a reader: %v", err)
	}
	// pt.b's count is its own.
	pb := b.connect("pt.b")
	for i := range natsjs.OrgMaxWatchers {
		if _, err := watch(pb); err != nil {
			t.Fatalf("watcher %d of pt.b: %v", i+1, err)
		}
	}
	// Once pt.a closes a watcher, it may open one again.
	if err := watchers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, "pt.a to open a watcher again once it closed one", func() bool {
		_, err := watch(a)
		return err == nil
	})
	t.Logf("directory watchers beyond %d of one organisation: tried %d, refused %d; the other organisation opened %d", natsjs.OrgMaxWatchers, tried, refused, natsjs.OrgMaxWatchers)
}
