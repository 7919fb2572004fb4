package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/internal/testenv"
)

// scaleOrgs is how many organisations TestServeTenThousandOrganisations
// gives a node: ten times the 1,000 consumers nats-server allows a stream
// by default; with the race detector, which makes the import several
// times slower, 1,500 (still beyond that default).
func scaleOrgs() int {
	if raceEnabled {
		return 1_500
	}
	return 10_000
}

// TestServeTenThousandOrganisations runs a node whose directory has
// 10,000 organisations: it starts, is ready, routes a referral to one of
// them, and does again after a restart. Organisations cost directory
// rows, not server resources: none has a consumer on DELIVERY until it
// reads over NATS, when the node makes it.
func TestServeTenThousandOrganisations(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 10,000 organisations")
	}
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data)
	nc := connectAdmin(t, p.NATS, data)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, scaleOrgs())
	for i := range ids {
		ids[i] = fmt.Sprintf("pt.scale-%05d", i)
	}
	d := testOrgsDirectory(t, ids...)
	referrer, receiver := ids[0], ids[len(ids)-1]
	ctx := testenv.Context(t)
	store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsjs.BucketTokens)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, org := range []string{referrer, receiver} {
		secret, _, err := httpapi.NewTokens(natsjs.NewKVStore(js, kv)).Create(ctx, org, httpapi.RoleOrganisation, "scale test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[org] = secret
	}
	// The node has every organisation once the receiver has its NATS key
	// (the last one provisioned, in order).
	seed := filepath.Join(data, natsjs.KeysDir, receiver+natsjs.SeedFileExt)
	waitFor(t, "the receiver's key", func() bool {
		c, err := client.Connect(ctx, "nats://"+p.NATS, receiver, client.WithNKeySeed(seed))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if got := deliveryConsumers(t, js); len(got) != 0 {
		t.Fatalf("durable consumers on %s before any organisation read over NATS: %v, want none", natsjs.StreamDelivery, got)
	}
	referralFlow(t, p.HTTP, referrer, tokens[referrer], receiver, tokens[receiver])

	// The receiver reads over NATS: its consumer is made on first use,
	// removed when idle, and has the offer.
	c, err := client.Connect(ctx, "nats://"+p.NATS, receiver, client.WithNKeySeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cons, err := c.JetStream().Consumer(ctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(receiver))
	if err != nil {
		t.Fatalf("the receiver's consumer on first use: %v", err)
	}
	if info := cons.CachedInfo(); info.Config.InactiveThreshold != natsjs.OrgConsumerInactive || info.NumPending == 0 {
		t.Errorf("the receiver's consumer: inactive threshold %s, %d pending; want %s and its deliveries",
			info.Config.InactiveThreshold, info.NumPending, natsjs.OrgConsumerInactive)
	}
	if got := deliveryConsumers(t, js); len(got) != 1 || got[0] != natsjs.OrgConsumerName(receiver) {
		t.Errorf("durable consumers on %s after one organisation read: %v, want the receiver's only", natsjs.StreamDelivery, got)
	}
	c.Close()
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d\n%s", code, p.errOut)
	}

	// A restart starts, is ready and routes with all of them.
	again := serveInProcess(t, fakeEnv(nil), "--data", data)
	if code, rep := getJSON(t, "http://"+again.HTTP+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after the restart = %d %+v", code, rep)
	}
	referralFlow(t, again.HTTP, referrer, tokens[referrer], receiver, tokens[receiver])
	if logs := again.errOut.String(); strings.Contains(logs, "maximum consumers") {
		t.Errorf("the restart hit the consumer limit:\n%.2000s", logs)
	}
	if code := again.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, again.errOut)
	}
}

// deliveryConsumers returns the durable consumers on DELIVERY (short-lived
// readers of HTTP requests aside).
func deliveryConsumers(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := testenv.Context(t)
	s, err := js.Stream(ctx, natsjs.StreamDelivery)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable != "" {
			out = append(out, ci.Name)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
