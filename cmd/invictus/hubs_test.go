package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
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
	"github.com/invictus-network/invictus/internal/testnet"
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
	// RunServer's clean-up shuts it down too; h.stop may do it first.
	h.srv = testnet.RunServer(t, h.name, opts)
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

// hubCount returns how many messages stream holds on a hub (INBOUND, a
// work queue, cannot be read by a test's consumer beside the router's).
func hubCount(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// hubTokens makes an HTTP token for each of orgs in the hub at nc, whose
// directory is shared from another hub.
func hubTokens(t *testing.T, nc *nats.Conn, orgs ...string) map[string]string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), natsjs.BucketTokens)
	if err != nil {
		t.Fatal(err)
	}
	tokens := httpapi.NewTokens(natsjs.NewKVStore(js, kv))
	out := map[string]string{}
	for _, o := range orgs {
		secret, _, err := tokens.Create(t.Context(), o, httpapi.RoleOrganisation, "hub test")
		if err != nil {
			t.Fatal(err)
		}
		out[o] = secret
	}
	return out
}

// TestCountryHubs runs two country hubs as deploy/README.md describes them:
// hub-pt (hub.conf, JetStream domain pt) and hub-fi (hub-leaf.conf, domain
// fi, a leaf node of hub-pt), each with its own `invictus serve`. The
// directory is written to hub-pt only and shared with hub-fi, which routes
// a Finnish referral by it. A Portuguese organisation refers one victim to
// a Portuguese service and two to a Finnish one (the second while the
// leaf connection is down); the Finnish organisation reads the offers on
// its own hub and answers there: it accepts, reports contact and completes
// the first, and declines the second, and hub-pt's referrals reach those
// states. Each hub's streams hold what they should and nothing more: each
// referral's log stays in its hub; hub-fi's DELIVERY holds the
// cross-border offers, once each, and nothing of the Portuguese referral;
// hub-fi's CROSSBORDER holds the four answers, hub-pt's nothing.
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
	fiServe := startNode(t, t.TempDir(), "--nats-url", "nats://"+fi.client, "--nats-creds", creds, "--hub-country", "fi", "--hub-sources", "pt", "--hub-directory", "pt")
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

	// One directory, kept in hub-pt and shared with hub-fi (whose serve
	// has --hub-directory pt): a Portuguese referrer and receiver, a
	// Finnish receiver whose remote service covers Portugal, and a Finnish
	// referrer. It is written to hub-pt only, once both hubs run.
	ref, ptRecv, fiRecv, fiRef := "pt."+uniqueSlug("h-ref"), "pt."+uniqueSlug("h-recv"), "fi."+uniqueSlug("h-recv"), "fi."+uniqueSlug("h-ref")
	d := testOrgsDirectory(t, ref, ptRecv, fiRecv, fiRef)
	d.Services = slices.DeleteFunc(d.Services, func(s directory.Service) bool { return s.Organisation == fiRef }) // it only refers
	for i, s := range d.Services {
		if s.Organisation == fiRecv {
			d.Services[i].Area = directory.ServiceArea{Countries: []string{"fi", "pt"}, Remote: true}
		}
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	ptTokens := provisionTestOrgs(t, ptNC, d, false)
	fiTokens := hubTokens(t, fiNC, fiRecv, fiRef)
	// hub-fi routes by what was added in hub-pt: a Finnish referral made
	// on hub-fi is offered to the Finnish receiver there.
	fiDomestic := events.NewReferralID()
	fiReq := testRequested(fiRecv)
	fiReq.Profile.Location = events.Location{Country: "fi", Region: "FI1B"}
	if res := postCommand(t, fiServe.HTTP, fiTokens[fiRef], fiRef, fiDomestic, fiReq); res.Status != httpapi.StatusAccepted && res.Status != httpapi.StatusPending {
		t.Fatalf("referral.requested on hub-fi: %+v", res)
	}
	waitFor(t, "hub-fi to route by the directory shared from hub-pt", func() bool {
		for _, m := range crashRead(t, fiJS, natsjs.StreamReferrals) {
			if m.typ() == "offered" && m.env.Event.Subject() == fiDomestic {
				return m.env.Payload.(*events.Offered).Organisation == fiRecv
			}
		}
		return false
	})
	fiDir, err := fiJS.KeyValue(t.Context(), natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}

	refer := func(to string) string {
		t.Helper()
		id := events.NewReferralID()
		if res := postCommand(t, ptServe.HTTP, ptTokens[ref], ref, id, testRequested(to)); res.Status != httpapi.StatusAccepted && res.Status != httpapi.StatusPending {
			t.Fatalf("referral.requested: %+v", res)
		}
		return id
	}
	// fiOffers returns the offers to fiRecv in fi's DELIVERY by referral.
	fiOffers := func() map[string]int {
		out := map[string]int{}
		for _, m := range crashRead(t, fiJS, natsjs.StreamDelivery) {
			if org, r, _ := events.ParseDeliverySubject(m.subject); m.typ() == "offered" && org == fiRecv {
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

	// The Finnish organisation answers on its own hub: it accepts the first
	// offer, reports contact and completes it, and declines the second.
	// Each answer crosses back to hub-pt through CROSSBORDER, and the
	// referral there reaches the state the answer makes.
	placement := func(id string) string {
		t.Helper()
		for _, m := range crashRead(t, fiJS, natsjs.StreamDelivery) {
			if m.env == nil {
				continue
			}
			if p, ok := m.env.Payload.(*events.Offered); ok && m.env.Event.Subject() == id {
				return p.Placement
			}
		}
		t.Fatalf("no offer of %s in hub-fi", id)
		return ""
	}
	answer := func(id string, p events.Payload) {
		t.Helper()
		if res := postCommand(t, fiServe.HTTP, fiTokens[fiRecv], fiRecv, id, p); res.Status != httpapi.StatusAccepted && res.Status != httpapi.StatusPending {
			t.Fatalf("%T of %s on hub-fi: %+v", p, id, res)
		}
	}
	ptLog := func(id string) []string {
		var out []string
		for _, m := range crashRead(t, ptJS, natsjs.StreamReferrals) {
			if m.env != nil && m.env.Event.Subject() == id {
				out = append(out, m.typ())
			}
		}
		return out
	}
	inPtLog := func(id, typ string) func() bool {
		return func() bool { return slices.Contains(ptLog(id), typ) }
	}
	p1, p2 := placement(cross1), placement(cross2)
	answer(cross1, &events.Accepted{Placement: p1})
	testenv.Await(t, "the acceptance in hub-pt's log", inPtLog(cross1, "accepted"), func() string {
		return fmt.Sprintf("hub-fi CROSSBORDER %v, DLQ %v, INBOUND %v; hub-pt INBOUND %v, DLQ %v; hub-pt log %v\n--- hub-fi serve:\n%s\n--- hub-pt serve:\n%s",
			hubMsgs(t, fiJS, natsjs.StreamCrossBorder), hubMsgs(t, fiJS, natsjs.StreamDLQ), hubCount(t, fiJS, natsjs.StreamInbound),
			hubCount(t, ptJS, natsjs.StreamInbound), hubMsgs(t, ptJS, natsjs.StreamDLQ), ptLog(cross1),
			lastLines(fiServe.stderr.String(), 15), lastLines(ptServe.stderr.String(), 15))
	})
	answer(cross1, &events.Contacted{Placement: p1})
	waitFor(t, "the contact in hub-pt's log", inPtLog(cross1, "contacted"))
	answer(cross1, &events.Completed{Placement: p1, Outcome: "supported"})
	answer(cross2, &events.Declined{Placement: p2, Reason: "capacity"})
	waitFor(t, "the completion in hub-pt's log", inPtLog(cross1, "completed"))
	waitFor(t, "the decline in hub-pt's log", inPtLog(cross2, "declined"))
	if code, v := getReferral(t, ptServe.HTTP, ptTokens[ref], cross1); code != http.StatusOK || v.Status != "completed" ||
		len(v.Placements) != 1 || v.Placements[0].Status != "completed" || v.Placements[0].Organisation != fiRecv {
		t.Errorf("hub-pt's referral %s after the Finnish answers: %d %+v", cross1, code, v)
	}
	if code, v := getReferral(t, ptServe.HTTP, ptTokens[ref], cross2); code != http.StatusOK || slices.ContainsFunc(v.Placements, func(p httpapi.PlacementView) bool {
		return p.Organisation == fiRecv && p.Status == "offered"
	}) {
		t.Errorf("hub-pt's referral %s after the decline: %d %+v", cross2, code, v)
	}
	// The answers' deliveries to the Finnish organisation reach its hub.
	waitFor(t, "the acceptance's delivery in hub-fi", func() bool {
		for _, m := range crashRead(t, fiJS, natsjs.StreamDelivery) {
			if m.typ() == "accepted" && m.env.Event.Subject() == cross1 {
				return true
			}
		}
		return false
	})

	// What each hub holds.
	offers := fiOffers()
	if len(offers) != 3 || offers[cross1] != 1 || offers[cross2] != 1 || offers[fiDomestic] != 1 {
		t.Errorf("hub-fi's offers %v; want %s, %s and the Finnish %s once each", offers, cross1, cross2, fiDomestic)
	}
	for _, s := range hubMsgs(t, fiJS, natsjs.StreamDelivery) {
		if !strings.HasPrefix(s, "out.fi.") || strings.Contains(s, domestic) {
			t.Errorf("hub-fi's DELIVERY holds %s", s)
		}
	}
	// hub-fi's CROSSBORDER holds its organisation's four answers, for
	// hub-pt, and nothing else; hub-pt's holds nothing (its organisations
	// answered no Finnish offer); both INBOUNDs were worked off.
	xb := hubMsgs(t, fiJS, natsjs.StreamCrossBorder)
	if len(xb) != 4 {
		t.Errorf("hub-fi's CROSSBORDER holds %d commands %v; want the 4 answers", len(xb), xb)
	}
	for _, s := range xb {
		if s != "xb.pt."+fiRecv {
			t.Errorf("hub-fi's CROSSBORDER holds %s", s)
		}
	}
	if got := hubMsgs(t, ptJS, natsjs.StreamCrossBorder); len(got) != 0 {
		t.Errorf("hub-pt's CROSSBORDER holds %v", got)
	}
	for _, h := range []struct {
		name string
		js   jetstream.JetStream
	}{{"hub-pt", ptJS}, {"hub-fi", fiJS}} {
		waitFor(t, h.name+"'s INBOUND worked off", func() bool { return hubCount(t, h.js, natsjs.StreamInbound) == 0 })
	}
	// hub-fi's REFERRALS holds the Finnish referral's log and nothing of
	// the Portuguese ones; hub-pt's DELIVERY nothing of the Finnish one.
	fiLog := hubMsgs(t, fiJS, natsjs.StreamReferrals)
	for _, s := range fiLog {
		if s != "referral.fi."+fiDomestic {
			t.Errorf("hub-fi's REFERRALS holds %s", s)
		}
	}
	if len(fiLog) < 3 {
		t.Errorf("hub-fi's log of its own referral has %d events, want requested, planned, offered", len(fiLog))
	}
	for _, s := range hubMsgs(t, ptJS, natsjs.StreamDelivery) {
		if strings.Contains(s, fiDomestic) {
			t.Errorf("hub-pt's DELIVERY holds %s", s)
		}
	}
	// The shared directory: hub-fi's bucket holds hub-pt's records, by
	// sourcing that bucket, and was written nowhere else.
	ptDir, err := ptJS.KeyValue(t.Context(), natsjs.BucketDirectory)
	if err != nil {
		t.Fatal(err)
	}
	dirKeys := func(kv jetstream.KeyValue) []string {
		t.Helper()
		ks, err := kv.Keys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ks)
		return ks
	}
	if pk, fk := dirKeys(ptDir), dirKeys(fiDir); !slices.Equal(pk, fk) || len(pk) != 7 {
		t.Errorf("directory keys: hub-pt %v, hub-fi %v; want the same 4 organisations and 3 services", pk, fk)
	}
	if st, err := fiJS.Stream(t.Context(), "KV_"+natsjs.BucketDirectory); err != nil {
		t.Error(err)
	} else if src := st.CachedInfo().Config.Sources; len(src) != 1 || src[0].External == nil || !strings.Contains(src[0].External.APIPrefix, ".pt.") {
		t.Errorf("hub-fi's directory sources %+v", src)
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
	in, err := ptJS.Stream(ctx, natsjs.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if src := in.CachedInfo().Config.Sources; len(src) != 1 || src[0].Name != natsjs.StreamCrossBorder || len(src[0].SubjectTransforms) != 1 ||
		src[0].SubjectTransforms[0].Source != "xb.pt.*.*" {
		t.Errorf("hub-pt's INBOUND sources %+v", src)
	}
	t.Logf("hub-pt REFERRALS: %d events of 3 referrals (%s: %v; %s: %v), CROSSBORDER 0; hub-fi: DELIVERY %d messages (2 cross-border offers, once each, one sent while the leaf was down, and what the answers showed the Finnish organisation), CROSSBORDER %d answers, REFERRALS %d events of its own referral; directory keys %d in each",
		len(hubMsgs(t, ptJS, natsjs.StreamReferrals)), cross1, ptLog(cross1), cross2, ptLog(cross2), len(hubMsgs(t, fiJS, natsjs.StreamDelivery)), len(xb), len(fiLog), len(dirKeys(fiDir)))
	for _, n := range []*node{ptServe, fiServe} {
		if code := n.stop(); code != 0 {
			t.Errorf("serve exit code %d\n%s", code, lastLines(n.stderr.String(), 20))
		}
	}
}

// A country hub's serve whose --hub-sources or --hub-directory names a
// JetStream domain nothing answers for (a typo, or a hub not connected)
// stops at start-up with an error naming the flag and the domain, before
// it creates a stream that would source from nowhere: one hub, hub-pt,
// and no leaf. (TestCountryHubs starts hubs whose domains exist, past
// the same check.)
func TestHubUnknownDomain(t *testing.T) {
	keys, adminPub, sysPub := clusterKeys(t)
	leaf, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	leafPub, _ := leaf.PublicKey()
	t.Setenv("INVICTUS_NATS_NKEY", adminPub)
	t.Setenv("NATS_SYS_NKEY", sysPub)
	t.Setenv("NATS_LEAF_NKEY", leafPub)
	_, leafPort := splitAddr(t, freeAddr(t))
	pt := &hub{conf: "hub.conf", name: "hub-pt", domain: "pt", client: freeAddr(t), store: t.TempDir(), leafPort: leafPort}
	pt.start(t)
	url, creds := "nats://"+pt.client, keys.Path(natsjs.UserAdmin)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--hub-sources", []string{"--hub-country", "pt", "--hub-sources", "xx"},
			"invictus: --hub-sources xx: no JetStream of that domain answers through " + url},
		{"--hub-sources, one of two", []string{"--hub-country", "pt", "--hub-sources", "pt,xx"},
			"invictus: --hub-sources xx: no JetStream of that domain answers"},
		{"--hub-directory", []string{"--hub-directory", "yy"},
			"invictus: --hub-directory yy: no JetStream of that domain answers through " + url},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-url", url, "--nats-creds", creds, "--hub-domain-wait", "3s"}, tt.args...)
			code, out, errOut := runArgs(t, args...)
			if code != exitError {
				t.Errorf("exit code %d, want %d", code, exitError)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, errOut)
			}
			if strings.Contains(out+errOut, "invictus ready") {
				t.Errorf("the node became ready:\n%s\n%s", out, errOut)
			}
		})
	}
	// Nothing was created on the hub: no stream sources from the domain.
	opt, err := keys.ConnectOption(natsjs.UserAdmin)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for name := range js.StreamNames(t.Context()).Name() {
		streams = append(streams, name)
	}
	if len(streams) > 0 {
		t.Errorf("streams on hub-pt after the refused starts: %v", streams)
	}
}
