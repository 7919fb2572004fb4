package natsjs_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/internal/testnet"
)

// TestOperatorMode starts a stock nats-server in operator mode from the
// configuration Operator writes (a memory resolver preloaded with the
// accounts), and checks that the streams' account holds the streams, the
// system user reaches the server's API, and an organisation's user, with
// its .creds file, reaches its own command subject and deliveries and
// nothing of another organisation's or of the streams.
func TestOperatorMode(t *testing.T) {
	dir := t.TempDir()
	keys, err := natsjs.NewKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	op, err := natsjs.NewOperator(filepath.Join(dir, "operator"), keys)
	if err != nil {
		t.Fatal(err)
	}
	// Long ids: the user JWTs are then over nats-server's default limit
	// of a control line (4 KB), which ServerConfig raises.
	const a, b = "pt.op-a-with-a-long-slug-of-forty-eight-characters", "pt.op-b"
	cfg, err := op.Config([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 4 {
		t.Fatalf("%d accounts, want INVICTUS, SYS and one per organisation", len(cfg.Accounts))
	}
	if _, err := op.Config([]string{"not an org"}); err == nil {
		t.Error("an invalid organisation id was given an account")
	}
	// Issuing again keeps the keys: the same accounts.
	again, err := op.Config([]string{a, b})
	if err != nil || again.StreamsAccount != cfg.StreamsAccount || again.SystemAccount != cfg.SystemAccount || again.OperatorJWT != cfg.OperatorJWT {
		t.Fatalf("a second issue changed the accounts: %v", err)
	}

	conf := filepath.Join(dir, "nats.conf")
	auth := filepath.Join(dir, "operator.conf")
	if err := os.WriteFile(auth, cfg.ServerConfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	body := "listen: 127.0.0.1:-1\nserver_name: op-1\njetstream { store_dir: " + `"` + filepath.Join(dir, "js") + `"` + " }\ninclude " + `"operator.conf"` + "\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("the operator configuration: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	s := testnet.RunServer(t, "the operator-mode server", opts)

	creds := func(user string) string {
		t.Helper()
		c, err := op.UserCreds(user)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(c), "BEGIN NATS USER JWT") || !strings.Contains(string(c), "BEGIN USER NKEY SEED") {
			t.Fatalf("the creds of %s are not a .creds file:\n%s", user, c)
		}
		path := filepath.Join(dir, user+".creds")
		if err := os.WriteFile(path, c, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var violations sync.Map
	connect := func(user string, opts ...nats.Option) *nats.Conn {
		t.Helper()
		nc, err := nats.Connect(s.ClientURL(), append(opts, nats.UserCredentials(creds(user)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				violations.Store(user+": "+err.Error(), true)
			}))...)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ctx := testenv.Context(t)

	// The invictus user makes the streams in INVICTUS, and the
	// organisations' consumers, with a delivery waiting for each.
	js, err := jetstream.New(connect(natsjs.UserAdmin), jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsjs.EnsureStreams(ctx, js, natsjs.StreamsConfig{}); err != nil {
		t.Fatalf("streams in the operator's INVICTUS account: %v", err)
	}
	ref := events.NewReferralID()
	for _, org := range []string{a, b} {
		if _, err := js.CreateOrUpdateConsumer(ctx, natsjs.StreamDelivery, jetstream.ConsumerConfig{
			Durable: natsjs.OrgConsumerName(org), FilterSubject: events.DeliveryFilter(org), AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "out."+org+"."+ref, []byte(`{"for":"`+org+`"}`)); err != nil {
			t.Fatal(err)
		}
	}

	// The operators' user reaches the server's API.
	if _, err := connect(natsjs.UserSys).Request("$SYS.REQ.SERVER.PING", nil, time.Minute); err != nil {
		t.Errorf("the sys user's server ping: %v", err)
	}

	// The organisation a: its own commands and deliveries.
	nc := connect(a, nats.CustomInboxPrefix(natsjs.OrgInboxPrefix(a)))
	inbound, _ := events.InboundSubject(a)
	if m, err := nc.Request(inbound, []byte(`{}`), time.Minute); err != nil || !strings.Contains(string(m.Data), `"stream":"INBOUND"`) {
		t.Errorf("a's command: %v %s, want INBOUND's PubAck", err, msgData(m))
	}
	next := "$JS.API.CONSUMER.MSG.NEXT." + natsjs.StreamDelivery + "."
	if m, err := nc.Request(next+natsjs.OrgConsumerName(a), []byte(`{"batch":1,"expires":60000000000}`), time.Minute); err != nil || m.Header.Get("Status") != "" || !strings.Contains(string(m.Data), a) {
		t.Errorf("a's next delivery: %v %s, want its own", err, msgData(m))
	}

	// Everything else: refused or unanswered, and a learns nothing.
	inboundB, _ := events.InboundSubject(b)
	for _, subj := range []string{
		inboundB,
		next + natsjs.OrgConsumerName(b),
		"$JS.API.STREAM.INFO." + natsjs.StreamReferrals,
		"$JS.API.STREAM.CREATE.MINE",
		"$JS.API.STREAM.PURGE." + natsjs.StreamInbound,
		"referral.pt." + ref,
		"out." + b + "." + ref,
	} {
		if m, err := nc.Request(subj, []byte(`{}`), 2*time.Second); err == nil {
			t.Errorf("a reached %s: %s", subj, msgData(m))
		}
	}
	if _, err := nc.SubscribeSync("out.>"); err == nil {
		_ = nc.Flush()
	}
	if _, err := nc.SubscribeSync(natsjs.OrgInboxPrefix(b) + ".>"); err == nil {
		_ = nc.Flush()
	}
	want := []string{"Publish to \"" + inboundB + "\"", "Subscription to \"out.>\"", "Subscription to \"" + natsjs.OrgInboxPrefix(b) + ".>\""}
	for _, w := range want {
		testenv.Await(t, "the permissions violation "+w+" for a", func() bool {
			found := false
			violations.Range(func(k, _ any) bool {
				found = found || strings.Contains(k.(string), w)
				return !found
			})
			return found
		})
	}
	// b's delivery is still there for b.
	ncb := connect(b, nats.CustomInboxPrefix(natsjs.OrgInboxPrefix(b)))
	if m, err := ncb.Request(next+natsjs.OrgConsumerName(b), []byte(`{"batch":1,"expires":60000000000}`), time.Minute); err != nil || !strings.Contains(string(m.Data), b) {
		t.Errorf("b's next delivery: %v %s, want its own", err, msgData(m))
	}
	// A user the operator did not sign is refused.
	other, err := natsjs.NewKeyStore(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := natsjs.NewOperator(filepath.Join(dir, "other-op"), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Config([]string{a}); err != nil {
		t.Fatal(err)
	}
	sc, err := stranger.UserCreds(a)
	if err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, "stranger.creds")
	if err := os.WriteFile(sp, sc, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := nats.Connect(s.ClientURL(), nats.UserCredentials(sp)); err == nil {
		c.Close()
		t.Error("a user of another operator was let in")
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}
