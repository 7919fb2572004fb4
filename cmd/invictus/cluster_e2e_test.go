package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/mailpit"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/reports"
)

// testCluster is a 3-node NATS cluster started in process from
// deploy/nats/cluster.conf, on free ports.
type testCluster struct {
	servers []*server.Server
	keys    *natsjs.KeyStore
	url     string // every node's client URL, comma-separated
}

// startCluster starts the nodes of deploy/nats/cluster.conf. The file's
// settings come from the environment, as on a real node (so the test
// sets it, and cannot be parallel); the ports and store are the test's.
func startCluster(t *testing.T) *testCluster {
	t.Helper()
	keys, adminPub, sysPub := clusterKeys(t)
	t.Setenv("INVICTUS_NATS_NKEY", adminPub)
	t.Setenv("NATS_SYS_NKEY", sysPub)
	c := &testCluster{keys: keys}
	c.servers, c.url = startClusterFrom(t, filepath.Join(deployDir, "nats", "cluster.conf"), func(i int, opts *server.Options) {
		if opts.ServerName != "nats-"+string(rune('1'+i)) || len(opts.Routes) != 3 || opts.Cluster.Name != "invictus" || opts.SystemAccount != "SYS" {
			t.Fatalf("cluster.conf read as %s routes %v cluster %q system %q", opts.ServerName, opts.Routes, opts.Cluster.Name, opts.SystemAccount)
		}
	})
	waitMetaLeader(t, c.connect(t, natsjs.UserAdmin))
	return c
}

// waitMetaLeader waits until JetStream answers nc: the cluster has a meta
// leader, and a stream can be made.
func waitMetaLeader(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the JetStream meta leader", func() bool {
		// A short bound on each try, which is then made again: a request
		// sent before there is a leader is never answered.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
}

// clusterOptions reads node i of a 3-node cluster from conf, with the
// test's ports and store: the environment holds the file's variables
// (NATS_ROUTES among them).
func clusterOptions(t *testing.T, conf string, i int, client, route, store string) *server.Options {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", "nats-"+string(rune('1'+i)))
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("%s: %v", conf, err)
	}
	host, port := splitAddr(t, client)
	opts.Host, opts.Port = host, port
	_, cport := splitAddr(t, route)
	opts.Cluster.Host, opts.Cluster.Port = host, cport
	opts.LeafNode.Host, opts.LeafNode.Port = host, 0
	opts.HTTPPort = 0
	opts.StoreDir = store
	opts.NoSigs, opts.NoLog = true, true
	return opts
}

// startClusterFrom starts three nodes of conf in process on free ports,
// calling check with each node's options; it returns the servers and
// every node's client URL, comma-separated.
func startClusterFrom(t *testing.T, conf string, check func(i int, opts *server.Options)) ([]*server.Server, string) {
	t.Helper()
	const n = 3
	var clients, routes, urls []string
	for range n {
		clients = append(clients, freeAddr(t))
		routes = append(routes, freeAddr(t))
	}
	var rl []string
	for _, r := range routes {
		rl = append(rl, "nats://"+r)
	}
	t.Setenv("NATS_ROUTES", "["+strings.Join(rl, ", ")+"]")
	var servers []*server.Server
	for i := range n {
		opts := clusterOptions(t, conf, i, clients[i], routes[i], t.TempDir())
		check(i, opts)
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers = append(servers, s)
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		urls = append(urls, "nats://"+clients[i])
	}
	for _, s := range servers {
		testenv.Await(t, s.Name()+" to be ready", func() bool { return s.ReadyForConnections(time.Second) })
	}
	return servers, strings.Join(urls, ",")
}

// connect connects to the cluster as user (admin or sys).
func (c *testCluster) connect(t *testing.T, user string) *nats.Conn {
	t.Helper()
	opt, err := c.keys.ConnectOption(user)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.url, opt, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// webhookReceiver counts the webhook requests it receives by webhook-id,
// and the offers by referral.
type webhookReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	byID   map[string]int
	offers map[string]int
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	r := &webhookReceiver{byID: map[string]int{}, offers: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.byID[req.Header.Get(httpapi.HeaderWebhookID)]++
		if strings.HasSuffix(req.Header.Get("ce-type"), "referral.offered.v1") {
			r.offers[req.Header.Get("ce-subject")]++
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// offered is how many referrals have had their offer delivered.
func (r *webhookReceiver) offered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.offers)
}

// leaseHolder reads the holder of lease name from the cluster.
func leaseHolder(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), natsjs.BucketLeases)
	if err != nil {
		return ""
	}
	e, err := kv.Get(t.Context(), name)
	if err != nil {
		return ""
	}
	var v struct {
		Holder  string    `json:"holder"`
		Expires time.Time `json:"expires"`
	}
	if json.Unmarshal(e.Value(), &v) != nil || time.Now().After(v.Expires) {
		return ""
	}
	return v.Holder
}

// TestClusterTakeover runs two serve instances on the 3-node cluster of
// deploy/nats/cluster.conf with R3 streams. The first started holds the
// webhook and reports leases: it delivers the webhooks and alone writes
// the reports checkpoint. It is killed with SIGKILL; the other takes both
// over: every webhook is delivered once, the checkpoint is carried on by
// the survivor alone, never goes back, and gives the figures of a model
// built from the whole stream.
func TestClusterTakeover(t *testing.T) {
	c := startCluster(t)
	mp := mailpit.Start(t)
	creds := c.keys.Path(natsjs.UserAdmin)
	args := []string{"--nats-url", c.url, "--nats-creds", creds, "--nats-replicas", "3", "--allow-private-webhooks",
		"--smtp-url", mp.URL(), "--mail-from", "INVICTUS <referrals@cluster.test>", "--public-url", "http://cluster.test",
		"--reports-checkpoint-every", "1"}

	nc := c.connect(t, natsjs.UserAdmin)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	holds := func(n *node, lease string) func() bool {
		return func() bool { return strings.Contains(leaseHolder(t, js, lease), "/"+itoa(n.cmd.Process.Pid)+"/") }
	}
	// The first instance takes the leases before the second starts.
	holder := startNode(t, t.TempDir(), args...)
	waitFor(t, "the first instance to hold the webhook lease", holds(holder, natsjs.LeaseWebhooks))
	waitFor(t, "the first instance to hold the reports lease", holds(holder, natsjs.LeaseReports))
	writes := watchCheckpoints(t, js)
	other := startNode(t, t.TempDir(), args...)

	// Every stream and bucket is R3 on the cluster.
	for _, name := range []string{natsjs.StreamInbound, natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamTimers, natsjs.StreamDLQ, "KV_" + natsjs.BucketLeases, "KV_" + natsjs.BucketWebhooks, "KV_" + natsjs.BucketEmail, "KV_" + natsjs.BucketReports} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas, cluster %+v; want R3", name, info.Config.Replicas, info.Cluster)
		}
	}
	// The system-account user of cluster.conf reaches the server's API.
	sys := c.connect(t, natsjs.UserSys)
	if _, err := sys.Request("$SYS.REQ.SERVER.PING", nil, time.Minute); err != nil {
		t.Errorf("the sys user's server ping: %v", err)
	}

	ref, recv := "pt."+uniqueSlug("cl-ref"), "pt."+uniqueSlug("cl-recv")
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, ref, recv), false)

	rcv := newWebhookReceiver(t)
	body, _ := json.Marshal(map[string]string{"url": rcv.srv.URL + "/hook"})
	var hook httpapi.Webhook
	if code := apiCall(t, http.MethodPost, "http://"+holder.HTTP+"/v1/webhooks", tokens[recv], "application/json", body, &hook); code != http.StatusCreated {
		t.Fatalf("register webhook: %d", code)
	}

	refer := func(n *node, count int) []string {
		var ids []string
		for range count {
			id := events.NewReferralID()
			// Pending is stored, not yet decided: right after the kill, the
			// commands the dead instance had pulled wait for their ack
			// deadline before another instance gets them.
			if res := postCommand(t, n.HTTP, tokens[ref], ref, id, testRequested(recv)); res.Status != httpapi.StatusAccepted && res.Status != httpapi.StatusPending {
				t.Fatalf("referral.requested: %+v", res)
			}
			ids = append(ids, id)
		}
		return ids
	}
	const before, after = 10, 10
	refer(other, before/2)
	refer(holder, before-before/2)
	waitFor(t, "the webhooks of the first referrals", func() bool { return rcv.offered() == before })
	// The kill comes once the holder has stored its cursor past them:
	// a message in flight at the kill would be sent again (the same
	// webhook-id, by which receivers drop it), which is not what this
	// test is about.
	wkv, err := js.KeyValue(t.Context(), natsjs.BucketWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the holder's webhook cursor", func() bool {
		var log struct{ Deliveries []httpapi.WebhookAttempt }
		apiCall(t, http.MethodGet, "http://"+holder.HTTP+"/v1/webhooks/"+hook.ID+"/deliveries", tokens[recv], "", nil, &log)
		var last uint64
		for _, a := range log.Deliveries {
			last = max(last, a.Seq)
		}
		e, err := wkv.Get(t.Context(), "cursor."+hook.ID)
		if err != nil {
			return false
		}
		cur, err := strconv.ParseUint(string(e.Value()), 10, 64)
		return err == nil && last > 0 && cur >= last
	})

	// The holder dies without releasing anything.
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-holder.exited
	refer(other, after)
	waitFor(t, "the survivor to take the webhook lease over", holds(other, natsjs.LeaseWebhooks))
	waitFor(t, "the survivor to take the reports lease over", holds(other, natsjs.LeaseReports))
	// The checkpoint is written as events come: one more referral.
	refer(other, 1)
	waitFor(t, "the webhooks of the referrals after the kill", func() bool { return rcv.offered() == before+after+1 })
	checkSharedCheckpoint(t, js, nc, writes, holder, other)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, n := range rcv.byID {
		if n != 1 {
			t.Errorf("webhook %s delivered %d times", id, n)
		}
	}
	for ref, n := range rcv.offers {
		if n != 1 {
			t.Errorf("the offer of %s delivered %d times", ref, n)
		}
	}
	t.Logf("%d webhooks, each once; %d referrals' offers (%d before the kill, %d after)", len(rcv.byID), len(rcv.offers), before, after+1)
	checkDashboard(t, other)
	if code := other.stop(); code != 0 {
		t.Errorf("survivor exit code %d\n%s", code, other.stderr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// checkSharedCheckpoint waits for the survivor's checkpoint at the last
// event of REFERRALS, and checks that the killed instance, then the
// survivor, wrote the checkpoint, never both in turn and never going
// back, and that a model restored from it has the figures of one built
// from the whole stream.
func checkSharedCheckpoint(t *testing.T, js jetstream.JetStream, nc *nats.Conn, writes *checkpointWrites, killed, survivor *node) {
	t.Helper()
	ctx := t.Context()
	pid := func(n *node) string { return "/" + itoa(n.cmd.Process.Pid) + "/" }
	var last uint64
	waitFor(t, "the survivor's checkpoint at the last event", func() bool {
		s, err := js.Stream(ctx, natsjs.StreamReferrals)
		if err != nil {
			return false
		}
		last = s.CachedInfo().State.LastSeq
		w := writes.last()
		return w.Seq == last && strings.Contains(w.Holder, pid(survivor))
	})
	holders := writes.holders(t)
	if len(holders) != 2 || !strings.Contains(holders[0], pid(killed)) || !strings.Contains(holders[1], pid(survivor)) {
		t.Fatalf("the checkpoint was written by %v; want the killed instance's (pid %d), then the survivor's (pid %d)",
			holders, killed.cmd.Process.Pid, survivor.cmd.Process.Pid)
	}
	kv, err := js.KeyValue(ctx, natsjs.BucketReports)
	if err != nil {
		t.Fatal(err)
	}
	ck, raw, ok, err := natsjs.ReadReportsCheckpoint(ctx, kv)
	if err != nil || !ok || ck.Seq != last {
		t.Fatalf("the checkpoint: %+v, %v, %v; want one at %d", ck, ok, err, last)
	}
	restored := reports.NewStore(reports.Config{Reminder: referral.DefaultDeadlines().Reminder})
	if err := restored.Restore(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	fresh := startTestReports(ctx, t, nc, false, 1)
	t.Cleanup(func() { _ = fresh.Stop(context.Background()) })
	waitModel(t, fresh, last)
	got, want := overview(t, restored), overview(t, fresh.store)
	if !maps.Equal(got, want) || want["requested"] == 0 {
		t.Fatalf("figures from the checkpoint %v, from the stream %v", got, want)
	}
	t.Logf("checkpoint: %d writes, by the killed instance then the survivor; at %d, figures %v", len(writes.all()), last, got)
}

// checkDashboard fails for a metric that deploy/grafana/invictus.json
// queries and the node's /metrics lacks.
func checkDashboard(t *testing.T, n *node) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "invictus.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	resp, err := http.Get("http://" + n.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, line := range strings.Split(string(metrics), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		served[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	name := regexp.MustCompile(`\b(?:invictus|process|go)_[a-z_]+\b`)
	queried := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				queried++
				if !served[m] {
					t.Errorf("panel %q queries %s, which /metrics does not serve", p.Title, m)
				}
			}
		}
	}
	if queried == 0 {
		t.Error("the dashboard queries no metric")
	}
}

// startSingle starts deploy/nats/single.conf in process on a free port;
// the environment has its variables.
func startSingle(t *testing.T) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(filepath.Join(deployDir, "nats", "single.conf"))
	if err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, freeAddr(t))
	opts.Host, opts.Port, opts.HTTPPort = host, port, 0
	opts.StoreDir, opts.NoSigs, opts.NoLog = t.TempDir(), true, true
	return testnet.RunServer(t, "single.conf's server", opts)
}

// TestDeployNATSConfigs starts deploy/nats/single.conf as the README says
// and connects as both of its users; without a variable it names, the
// configuration is refused with the variable's name.
func TestDeployNATSConfigs(t *testing.T) {
	keys, err := natsjs.NewKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	// Everything else set: the error names the one that is missing.
	t.Setenv("NATS_SERVER_NAME", "nats-1")
	t.Setenv("NATS_ROUTES", "[nats://127.0.0.1:6222]")
	t.Setenv("NATS_SYS_NKEY", "UBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
	for _, conf := range []string{"single.conf", "cluster.conf"} {
		t.Setenv("INVICTUS_NATS_NKEY", "")
		os.Unsetenv("INVICTUS_NATS_NKEY")
		_, err := server.ProcessConfigFile(filepath.Join(deployDir, "nats", conf))
		if err == nil || !strings.Contains(err.Error(), "INVICTUS_NATS_NKEY") {
			t.Errorf("%s without INVICTUS_NATS_NKEY: %v, want an error naming it", conf, err)
		}
	}
	adminPub, err := keys.Ensure(natsjs.UserAdmin)
	if err != nil {
		t.Fatal(err)
	}
	sysPub, err := keys.Ensure(natsjs.UserSys)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("INVICTUS_NATS_NKEY", adminPub)
	t.Setenv("NATS_SYS_NKEY", sysPub)
	s := startSingle(t)
	c := &testCluster{keys: keys, url: s.ClientURL()}
	js, err := jetstream.New(c.connect(t, natsjs.UserAdmin), jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Errorf("JetStream for the invictus user: %v", err)
	}
	if _, err := c.connect(t, natsjs.UserSys).Request("$SYS.REQ.SERVER.PING", nil, time.Minute); err != nil {
		t.Errorf("the sys user's server ping: %v", err)
	}
	// An unknown key is refused.
	other, err := natsjs.NewKeyStore(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Ensure(natsjs.UserAdmin); err != nil {
		t.Fatal(err)
	}
	opt, err := other.ConnectOption(natsjs.UserAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(s.ClientURL(), opt); err == nil {
		nc.Close()
		t.Error("single.conf let in a key it does not name")
	}
	// serve with that key, or against a server that is not there, stops
	// at start and names the setting to fix.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-url", s.ClientURL(), "--nats-creds", other.Path(natsjs.UserAdmin)}, "--nats-creds"},
		{[]string{"--nats-url", "nats://" + freeAddr(t), "--nats-creds", keys.Path(natsjs.UserAdmin)}, "--nats-url"},
	} {
		code, _, stderr := runArgs(t, append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, c.args...)...)
		if code == exitOK || !strings.Contains(stderr, c.want) {
			t.Errorf("serve %v: exit %d, want an error naming %s:\n%s", c.args, code, c.want, stderr)
		}
	}
}
