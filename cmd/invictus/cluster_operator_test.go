package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
)

// TestClusterOperatorMode runs the cluster of deploy/nats/cluster-operator.conf
// as its head says, each node a process: `invictus creds operator` writes operator.conf, `creds
// --jwt` the users' .creds files. serve runs on it with R3 streams; an
// organisation's user reaches its own command subject and nothing of
// another's or of the streams; its own NATS client, a standard JetStream
// one, pulls its offer from its consumer (the gate runs beside serve) and
// cannot bind another's; an organisation added later gets in once
// the nodes reload operator.conf (SIGHUP), without a restart.
func TestClusterOperatorMode(t *testing.T) {
	secrets, dir := t.TempDir(), t.TempDir()
	a, b := "pt."+uniqueSlug("op-a"), "pt."+uniqueSlug("op-b")
	creds := func(user string) string {
		t.Helper()
		path := filepath.Join(dir, user+".creds")
		if code, out, errOut := runArgs(t, "creds", user, "--data", secrets, "--jwt", "-o", path); code != exitOK {
			t.Fatalf("creds %s --jwt: exit %d\n%s%s", user, code, out, errOut)
		}
		return path
	}
	operatorConf := func(orgs ...string) {
		t.Helper()
		args := []string{"creds", "operator", "--data", secrets, "-o", filepath.Join(dir, "operator.conf")}
		for _, o := range orgs {
			args = append(args, "--org", o)
		}
		if code, out, errOut := runArgs(t, args...); code != exitOK {
			t.Fatalf("creds operator: exit %d\n%s%s", code, out, errOut)
		}
	}
	operatorConf(a)
	conf, err := os.ReadFile(filepath.Join(deployDir, "nats", "cluster-operator.conf"))
	if err != nil {
		t.Fatal(err)
	}
	clusterConf := filepath.Join(dir, "cluster-operator.conf") // beside operator.conf, as on a node
	if err := os.WriteFile(clusterConf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATS_SERVER_NAME", "nats-1")
	t.Setenv("NATS_ROUTES", "[nats://127.0.0.1:6222]")
	if opts, err := server.ProcessConfigFile(clusterConf); err != nil || len(opts.TrustedOperators) != 1 || opts.AccountResolver == nil ||
		opts.SystemAccount == "" || opts.SystemAccount == "SYS" || opts.MaxControlLine != natsjs.OperatorMaxControlLine {
		t.Fatalf("cluster-operator.conf read as %+v: %v", opts, err)
	}
	c := startProcClusterFrom(t, clusterConf)
	url := c.url
	connect := func(user string, opts ...nats.Option) (*nats.Conn, error) {
		return nats.Connect(url, append(opts, nats.UserCredentials(creds(user)), nats.MaxReconnects(-1),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
	}
	admin, err := connect(natsjs.UserAdmin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	waitMetaLeader(t, admin)
	if _, err := connect("pt.nobody-" + uniqueSlug("x")); err == nil {
		t.Error("an organisation without an account was let in")
	}
	sys, err := connect(natsjs.UserSys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	if _, err := sys.Request("$SYS.REQ.SERVER.PING", nil, time.Minute); err != nil {
		t.Errorf("the sys user's server ping: %v", err)
	}

	// serve on the cluster, with the invictus user's .creds.
	n := startNode(t, t.TempDir(), "--nats-url", url, "--nats-creds", creds(natsjs.UserAdmin), "--nats-replicas", "3")
	waitFor(t, "serve's /readyz", func() bool {
		code, _ := getJSON(t, "http://"+n.HTTP+"/readyz")
		return code == http.StatusOK
	})
	js, err := jetstream.New(admin, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), natsjs.StreamReferrals)
	if err != nil || s.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("REFERRALS on the operator's cluster: %v", err)
	}

	// The organisation a: its own commands, nothing else.
	nc, err := connect(a, nats.CustomInboxPrefix(natsjs.OrgInboxPrefix(a)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	inbound, _ := events.InboundSubject(a)
	if m, err := nc.Request(inbound, []byte(`{}`), 10*time.Second); err != nil || !strings.Contains(string(m.Data), `"stream":"INBOUND"`) {
		t.Errorf("a's command: %v, want INBOUND's PubAck", err)
	}
	inboundB, _ := events.InboundSubject(b)
	refused := 0
	for _, subj := range []string{inboundB, "$JS.API.STREAM.INFO." + natsjs.StreamReferrals, "$JS.API.STREAM.LIST",
		"$JS.API.CONSUMER.MSG.NEXT." + natsjs.StreamDelivery + "." + natsjs.OrgConsumerName(b), "referral.pt." + events.NewReferralID()} {
		if _, err := nc.Request(subj, []byte(`{}`), 2*time.Second); err == nil {
			t.Errorf("a reached %s", subj)
		} else {
			refused++
		}
	}

	// a's own NATS client consumes its DELIVERY on the cluster: the
	// consumer serve makes when a appears in the directory gives it the
	// offer of a referral made to it over HTTP, and takes its ack.
	ref := "pt." + uniqueSlug("op-ref")
	tokens := provisionTestOrgs(t, admin, testOrgsDirectory(t, a, ref), false)
	id := events.NewReferralID()
	if res := postCommand(t, n.HTTP, tokens[ref], ref, id, testRequested(a)); res.Status != httpapi.StatusAccepted && res.Status != httpapi.StatusPending {
		t.Fatalf("referral.requested to a: %+v", res)
	}
	next := "$JS.API.CONSUMER.MSG.NEXT." + natsjs.StreamDelivery + "." + natsjs.OrgConsumerName(a)
	var offer *nats.Msg
	pulled := 0
	waitFor(t, "a's offer through its own consumer", func() bool {
		m, err := nc.Request(next, []byte(`{"batch":1,"expires":2000000000}`), 5*time.Second)
		if err != nil || m.Header.Get("Status") != "" || m.Reply == "" {
			return false
		}
		pulled++
		if _, err := nc.Request(m.Reply, []byte("+ACK"), 5*time.Second); err != nil {
			t.Errorf("a's ack of %s: %v", m.Subject, err)
		}
		if strings.HasPrefix(m.Subject, "out."+a+"."+id) {
			offer = m
			return true
		}
		return false
	})
	if !strings.Contains(string(offer.Data), "referral.offered") && !strings.Contains(offer.Header.Get("ce-type"), "referral.offered") {
		t.Errorf("a pulled %s: %s", offer.Subject, offer.Header)
	}
	// A standard JetStream client of a's binds the same consumer (its
	// info, then a fetch that finds nothing more).
	ajs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := ajs.Consumer(t.Context(), natsjs.StreamDelivery, natsjs.OrgConsumerName(a)); err != nil {
		t.Errorf("a's JetStream client binding its consumer: %v", err)
	} else if batch, err := ac.FetchNoWait(1); err != nil {
		t.Errorf("a's JetStream client fetching: %v", err)
	} else {
		for m := range batch.Messages() {
			t.Errorf("a fetched %s after acking its offer", m.Subject())
		}
	}
	if _, err := ajs.Consumer(t.Context(), natsjs.StreamDelivery, natsjs.OrgConsumerName(b)); err == nil {
		t.Error("a's JetStream client bound b's consumer")
	} else {
		refused++
	}
	ci, err := js.Consumer(t.Context(), natsjs.StreamDelivery, natsjs.OrgConsumerName(a))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := ci.Info(t.Context()); err != nil || info.NumAckPending != 0 {
		t.Errorf("a's consumer after its acks: %+v, %v", info, err)
	}

	// b is added: operator.conf again, each node reloads it.
	if _, err := connect(b); err == nil {
		t.Fatal("b got in before it had an account")
	}
	operatorConf(a, b)
	for i := range c.nodes {
		c.reload(i)
	}
	// Each node reloads on its own; b gets in once the node it reaches
	// has (the client tries the nodes in turn).
	var ncb *nats.Conn
	waitFor(t, "b to be let in after the reload", func() bool {
		var err error
		ncb, err = connect(b, nats.CustomInboxPrefix(natsjs.OrgInboxPrefix(b)))
		return err == nil
	})
	defer ncb.Close()
	for _, p := range c.nodes {
		waitFor(t, p.name+" to reload", func() bool { return strings.Contains(p.stderr.String(), "reloaded") })
	}
	if m, err := ncb.Request(inboundB, []byte(`{}`), 10*time.Second); err != nil || !strings.Contains(string(m.Data), `"stream":"INBOUND"`) {
		t.Errorf("b's command after the reload: %v", err)
	}
	if _, err := nc.Request(inbound, []byte(`{}`), 10*time.Second); err != nil {
		t.Errorf("a's command after the reload: %v", err)
	}

	// b is removed: operator.conf without it, each node reloads it. b's
	// connection is closed and the .creds file it holds is refused by
	// every node, with no server restarted; a goes on.
	bCreds := filepath.Join(dir, b+".creds") // issued while b had its account
	reloads := make([]int, len(c.nodes))
	for i, p := range c.nodes {
		reloads[i] = strings.Count(p.stderr.String(), "reloaded")
	}
	operatorConf(a)
	for i := range c.nodes {
		c.reload(i)
	}
	for i, p := range c.nodes {
		waitFor(t, p.name+" to reload without b", func() bool { return strings.Count(p.stderr.String(), "reloaded") > reloads[i] })
	}
	waitFor(t, "b's open connection to be cut", func() bool { return !ncb.IsConnected() })
	for _, p := range c.nodes {
		if bc, err := nats.Connect("nats://"+p.client, nats.UserCredentials(bCreds), nats.MaxReconnects(0)); err == nil {
			bc.Close()
			t.Errorf("%s let b in with its .creds after b was removed", p.name)
		} else {
			t.Logf("%s refuses b's .creds after the removal: %v", p.name, err)
		}
	}
	if _, err := nc.Request(inbound, []byte(`{}`), 10*time.Second); err != nil {
		t.Errorf("a's command after b's removal: %v", err)
	}
	for _, p := range c.nodes {
		select {
		case <-p.exited:
			t.Errorf("%s exited", p.name)
		default:
		}
	}
	t.Logf("operator mode on 3 nodes: serve ready with R3 streams; a's command stored, its offer pulled from its own consumer (%d pulled, acked), %d of 6 other targets refused; b in after a reload, out after another", pulled, refused)
	if code := n.stop(); code != 0 {
		t.Errorf("serve exit code %d\n%s", code, lastLines(n.stderr.String(), 20))
	}
}
