package main

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// hub is one country hub started in process from deploy/nats/hub.conf or
// hub-leaf.conf.
type hub struct {
	conf, name, domain, client, store string
	leafPort                          int
	srv                               *server.Server
}

func (h *hub) start(t *testing.T) {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", h.name)
	t.Setenv("NATS_DOMAIN", h.domain)
	opts, err := server.ProcessConfigFile(filepath.Join(deployDir, "nats", h.conf))
	if err != nil {
		t.Fatalf("%s: %v", h.conf, err)
	}
	if opts.JetStreamDomain != h.domain {
		t.Fatalf("%s read with domain %q", h.conf, opts.JetStreamDomain)
	}
	host, port := splitAddr(t, h.client)
	opts.Host, opts.Port, opts.HTTPPort = host, port, 0
	if h.leafPort > 0 {
		opts.LeafNode.Host, opts.LeafNode.Port = host, h.leafPort
	}
	opts.StoreDir, opts.NoSigs, opts.NoLog = h.store, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	testenv.Await(t, h.name+" to be ready", func() bool { return s.ReadyForConnections(time.Second) })
	h.srv = s
	t.Cleanup(h.stop)
}

func (h *hub) stop() {
	if h.srv != nil {
		h.srv.Shutdown()
		h.srv.WaitForShutdown()
		h.srv = nil
	}
}

// hubMsgs returns the subjects of the messages of stream on a hub.
func hubMsgs(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	var out []string
	for _, m := range crashRead(t, js, stream) {
		out = append(out, m.subject)
	}
	return out
}

// TestCountryHubs runs two country hubs as deploy/README.md describes them:
// hub-pt (hub.conf, JetStream domain pt) and hub-fi (hub-leaf.conf, domain
// fi, a leaf node of hub-pt), each with its own `invictus serve`. A
// Portuguese organisation refers one victim to a Portuguese service and two
// to a Finnish one (the second while the leaf connection is down). Each
// hub's streams hold what they should and nothing more: the referrals'
// logs stay in pt; fi's DELIVERY holds the cross-border offers, once each,
// and nothing of the Portuguese referral; the Finnish organisation reads
// them from its own hub.
func TestCountryHubs(t *testing.T) {
	keys, adminPub, sysPub := clusterKeys(t)
	leaf, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	leafPub, _ := leaf.PublicKey()
	leafSeed, _ := leaf.Seed()
	t.Setenv("INVICTUS_NATS_NKEY", adminPub)
	t.Setenv("NATS_SYS_NKEY", sysPub)
	t.Setenv("NATS_LEAF_NKEY", leafPub)
	t.Setenv("NATS_LEAF_SEED", string(leafSeed))
	_, leafPort := splitAddr(t, freeAddr(t))
	pt := &hub{conf: "hub.conf", name: "hub-pt", domain: "pt", client: freeAddr(t), store: t.TempDir(), leafPort: leafPort}
	pt.start(t)
	t.Setenv("NATS_HUB_URL", "nats-leaf://127.0.0.1:"+strconv.Itoa(leafPort))
	fi := &hub{conf: "hub-leaf.conf", name: "hub-fi", domain: "fi", client: freeAddr(t), store: t.TempDir()}
	fi.start(t)
	waitFor(t, "the leaf connection", func() bool { return pt.srv != nil && pt.srv.NumLeafNodes() == 1 })

	creds := keys.Path(natsjs.UserAdmin)
	ptServe := startNode(t, t.TempDir(), "--nats-url", "nats://"+pt.client, "--nats-creds", creds, "--hub-country", "pt", "--hub-sources", "fi")
	fiServe := startNode(t, t.TempDir(), "--nats-url", "nats://"+fi.client, "--nats-creds", creds, "--hub-country", "fi", "--hub-sources", "pt")
	connect := func(h *hub) (*nats.Conn, jetstream.JetStream) {
		opt, err := keys.ConnectOption(natsjs.UserAdmin)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect("nats://"+h.client, opt, nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	ptNC, ptJS := connect(pt)
	fiNC, fiJS := connect(fi)

	// The same directory in both hubs: a Portuguese referrer and receiver,
	// and a Finnish receiver whose remote service covers Portugal.
	ref, ptRecv, fiRecv := "pt."+uniqueSlug("h-ref"), "pt."+uniqueSlug("h-recv"), "fi."+uniqueSlug("h-recv")
	d := testOrgsDirectory(t, ref, ptRecv, fiRecv)
	for i, s := range d.Services {
		if s.Organisation == fiRecv {
			d.Services[i].Area = directory.ServiceArea{Countries: []string{"fi", "pt"}, Remote: true}
		}
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	ptTokens := provisionTestOrgs(t, ptNC, d, false)
	fiTokens := provisionTestOrgs(t, fiNC, d, false)

	refer := func(to string) string {
		t.Helper()
		id := events.NewReferralID()
		if res := postCommand(t, ptServe.HTTP, ptTokens[ref], ref, id, testRequested(to)); res.Status != httpapi.StatusAccepted && res.Status != httpapi.StatusPending {
			t.Fatalf("referral.requested: %+v", res)
		}
		return id
	}
	// fiOffers returns the offers in fi's DELIVERY by referral.
	fiOffers := func() map[string]int {
		out := map[string]int{}
		for _, m := range crashRead(t, fiJS, natsjs.StreamDelivery) {
			if m.typ() == "offered" {
				_, r, _ := events.ParseDeliverySubject(m.subject)
				out[r]++
			}
		}
		return out
	}
	domestic := refer(ptRecv)
	cross1 := refer(fiRecv)
	waitFor(t, "the first cross-border offer in hub-fi", func() bool { return fiOffers()[cross1] == 1 })

	// The leaf connection goes: hub-fi stops; a cross-border referral is
	// made in pt meanwhile; hub-fi comes back on its store.
	fi.stop()
	waitFor(t, "hub-pt to see the leaf go", func() bool { return pt.srv.NumLeafNodes() == 0 })
	cross2 := refer(fiRecv)
	waitFor(t, "the second offer in hub-pt's DELIVERY", func() bool {
		for _, s := range hubMsgs(t, ptJS, natsjs.StreamDelivery) {
			if strings.HasPrefix(s, "out."+fiRecv+"."+cross2) {
				return true
			}
		}
		return false
	})
	fi.start(t)
	waitFor(t, "the leaf connection again", func() bool { return pt.srv.NumLeafNodes() == 1 })
	waitFor(t, "the second cross-border offer in hub-fi", func() bool { return fiOffers()[cross2] == 1 })

	// The Finnish organisation reads both offers from its own hub.
	waitFor(t, "fi's inbox on its hub", func() bool {
		var page httpapi.InboxPage
		if code := apiCall(t, http.MethodGet, "http://"+fiServe.HTTP+"/v1/inbox?limit=100", fiTokens[fiRecv], "", nil, &page); code != http.StatusOK {
			return false
		}
		seen := map[string]bool{}
		for _, dl := range page.Deliveries {
			if dl.Type == events.TypeReferralOffered {
				seen[dl.Referral] = true
			}
		}
		return seen[cross1] && seen[cross2]
	})

	// What each hub holds.
	offers := fiOffers()
	if len(offers) != 2 || offers[cross1] != 1 || offers[cross2] != 1 {
		t.Errorf("hub-fi's offers %v; want %s and %s once each", offers, cross1, cross2)
	}
	for _, s := range hubMsgs(t, fiJS, natsjs.StreamDelivery) {
		if !strings.HasPrefix(s, "out.fi.") || strings.Contains(s, domestic) {
			t.Errorf("hub-fi's DELIVERY holds %s", s)
		}
	}
	if got := hubMsgs(t, fiJS, natsjs.StreamReferrals); len(got) != 0 {
		t.Errorf("hub-fi's REFERRALS holds %d events of Portuguese referrals: %v", len(got), got)
	}
	ptRefs := map[string]int{}
	for _, s := range hubMsgs(t, ptJS, natsjs.StreamReferrals) {
		c, r, err := events.ParseReferralSubject(s)
		if err != nil || c != "pt" {
			t.Errorf("hub-pt's REFERRALS holds %s", s)
		}
		ptRefs[r]++
	}
	for _, r := range []string{domestic, cross1, cross2} {
		if ptRefs[r] < 3 {
			t.Errorf("hub-pt's log of %s has %d events, want requested, planned, offered", r, ptRefs[r])
		}
	}
	ctx := testenv.Context(t)
	s, err := fiJS.Stream(ctx, natsjs.StreamDelivery)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if len(info.Config.Sources) != 1 || info.Config.Sources[0].FilterSubject != "out.fi.>" {
		t.Errorf("hub-fi's DELIVERY sources %+v", info.Config.Sources)
	}
	t.Logf("hub-pt REFERRALS: %d events of 3 referrals; hub-fi: DELIVERY %d messages (2 cross-border offers, once each, one sent while the leaf was down), REFERRALS 0",
		len(hubMsgs(t, ptJS, natsjs.StreamReferrals)), len(hubMsgs(t, fiJS, natsjs.StreamDelivery)))
	for _, n := range []*node{ptServe, fiServe} {
		if code := n.stop(); code != 0 {
			t.Errorf("serve exit code %d\n%s", code, lastLines(n.stderr.String(), 20))
		}
	}
}
