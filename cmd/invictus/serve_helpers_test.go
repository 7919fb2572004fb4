package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/seal"
)

// inproc is `invictus serve` run in this process by run, with its logs.
type inproc struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan int
	out    *syncBuffer
	errOut *syncBuffer
	HTTP   string `json:"http"`
	NATS   string `json:"nats"`
	PPROF  string `json:"pprof"`
}

// serveInProcess runs serve with args (plus free ports and an addr file)
// in process and returns once it is ready. It is stopped at cleanup if
// the test has not stopped it.
func serveInProcess(t *testing.T, env lookupEnv, args ...string) *inproc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inproc{t: t, cancel: cancel, done: make(chan int, 1), out: &syncBuffer{}, errOut: &syncBuffer{}}
	addrFile := filepath.Join(t.TempDir(), "addr.json")
	all := []string{"--listen", "127.0.0.1:0", "--addr-file", addrFile}
	if !slices.Contains(args, "--nats-url") {
		all = append(all, "--nats-listen", "127.0.0.1:0")
	}
	// The memory limit is the process's: the nodes of parallel tests share
	// this one, whose heap is theirs together.
	if !slices.Contains(args, "--memory-limit") {
		all = append(all, "--memory-limit", "unlimited")
	}
	all = append(all, args...)
	go func() {
		cmd := newServeCmdWith(p.out, p.errOut, env)
		cmd.SetArgs(all)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		code := exitOK
		if err := cmd.ExecuteContext(ctx); err != nil {
			fmt.Fprintf(p.errOut, "invictus: %v\n", err)
			code = exitError
		}
		p.done <- code
	}()
	t.Cleanup(func() { p.stop() })
	waitFor(t, "serve to be ready", func() bool {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("serve ended with %d before it was ready:\n%s", code, p.errOut)
		default:
		}
		b, err := os.ReadFile(addrFile)
		return err == nil && json.Unmarshal(b, p) == nil
	})
	return p
}

// stop ends serve as a signal would and returns its exit code.
func (p *inproc) stop() int {
	p.cancel()
	code := testenv.Recv(p.t, "serve to stop", p.done, p.errOut.String)
	p.done <- code
	return code
}

// waitFor polls cond until it holds (see testenv.Await: the test binary's
// timeout, not a clock, bounds the wait).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Await(t, what, cond)
}

// connectJS connects to url with opts, closed at the end of the test, and
// returns its JetStream context.
func connectJS(t *testing.T, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// freeAddr returns a 127.0.0.1 address on which nothing listens, on a
// port below the ephemeral range (32768 and up on Linux), and never the
// same one twice in this test binary. A port the kernel hands out for
// port 0 and the test lets go of can be handed again, before the test
// binds it, to any outgoing connection's source or any other listener on
// port 0: TestServeStoreCheckWaitsForJetStream's third cluster node once
// could not listen, and waited for it until the binary's timeout.
func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	for range 1000 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := lc.Listen(t.Context(), "tcp", addr)
		if err != nil {
			continue // another program's
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range in 1000 tries")
	return ""
}

// The ports freeAddr hands out: [freePortLow, freePortHigh).
const freePortLow, freePortHigh = 20000, 32768

// handedOut holds the ports freeAddr has handed out.
var handedOut sync.Map

// apiCall makes an HTTP request with a bearer token and decodes the JSON
// answer into v (when not nil); it returns the status.
func apiCall(t *testing.T, method, url, token, contentType string, body []byte, v any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && len(b) > 0 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// postCommand sends a command of org as a structured CloudEvent and waits
// up to 5 s for the routing service's decision; it returns the result.
func postCommand(t *testing.T, httpAddr, token, org, referralID string, p events.Payload) httpapi.CommandResult {
	t.Helper()
	ev, err := events.New(events.SourceOf(org), referralID, p)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var res httpapi.CommandResult
	code := apiCall(t, http.MethodPost, "http://"+httpAddr+"/v1/events?wait=5s", token, "application/cloudevents+json", body, &res)
	if code != http.StatusAccepted && code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST %s as %s: %d %+v", p.EventType(), org, code, res)
	}
	return res
}

// getReferral reads a referral as the token's organisation.
func getReferral(t *testing.T, httpAddr, token, referralID string) (int, httpapi.ReferralView) {
	t.Helper()
	var view httpapi.ReferralView
	code := apiCall(t, http.MethodGet, "http://"+httpAddr+"/v1/referrals/"+referralID, token, "", nil, &view)
	return code, view
}

// testRequested is a referral asking for emotional support in Lisbon,
// preferring organisation preferred.
func testRequested(preferred string) *events.Requested {
	return &events.Requested{
		Profile: events.Profile{
			Needs:     []string{events.NeedSupportEmotional},
			Urgency:   "soon",
			Location:  events.Location{Country: "pt", Region: "PT1B"},
			Languages: []string{"pt"},
			AgeBand:   "adult",
			Channels:  []string{events.ChannelInPerson, events.ChannelPhone},
		},
		Consent: events.Consent{
			Referral: true, ShareData: true, GivenAt: time.Now().UTC().Add(-time.Minute), Method: "verbal", RecordedBy: "test-e2e1",
		},
		PreferredOrganisation: preferred,
	}
}

// testOrgsDirectory returns a directory of organisations (in the country
// of their ids, pt in most tests), each with one remote service for
// emotional support in Portugal.
func testOrgsDirectory(t *testing.T, orgs ...string) *directory.Directory {
	t.Helper()
	d := &directory.Directory{}
	for _, id := range orgs {
		k, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		d.Organisations = append(d.Organisations, directory.Organisation{
			ID: id, Name: "Test " + id, Country: id[:2], Languages: []string{"pt"}, AgeRecipient: k.Recipient, Synthetic: true,
		})
		d.Services = append(d.Services, directory.Service{
			ID: id + ".support", Organisation: id, Name: "Support", Status: directory.StatusActive,
			Needs: []string{events.NeedSupportEmotional}, Languages: []string{"pt"},
			Channels: []string{events.ChannelPhone, events.ChannelInPerson},
			Area:     directory.ServiceArea{Countries: []string{"pt"}, Remote: true},
			Hours:    directory.Schedule{TimeZone: "Europe/Lisbon", Always: true},
			Capacity: directory.Capacity{Status: "accepting"},
		})
	}
	d.Sort()
	if err := d.Validate(); err != nil {
		t.Fatalf("test directory: %v", err)
	}
	return d
}

// referralFlow drives one referral through a running node's HTTP API: the
// referrer refers to receiver (preferred), the receiver accepts, and the
// referrer sees its placement accepted. It returns the referral id.
func referralFlow(t *testing.T, httpAddr, referrer, referrerToken, receiver, receiverToken string) string {
	t.Helper()
	ref := events.NewReferralID()
	if res := postCommand(t, httpAddr, referrerToken, referrer, ref, testRequested(receiver)); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.requested: %+v, want accepted", res)
	}
	var view httpapi.ReferralView
	waitFor(t, "the offer to "+receiver, func() bool {
		code, v := getReferral(t, httpAddr, referrerToken, ref)
		view = v
		return code == http.StatusOK && len(v.Placements) == 1 && v.Placements[0].Status == "offered"
	})
	if p := view.Placements[0]; p.Organisation != receiver {
		t.Fatalf("offered to %s, want %s (the preferred organisation)", p.Organisation, receiver)
	}
	if res := postCommand(t, httpAddr, receiverToken, receiver, ref, &events.Accepted{Placement: view.Placements[0].Placement}); res.Status != httpapi.StatusAccepted {
		t.Fatalf("referral.accepted: %+v, want accepted", res)
	}
	waitFor(t, "the acceptance", func() bool {
		code, v := getReferral(t, httpAddr, referrerToken, ref)
		view = v
		return code == http.StatusOK && len(v.Placements) == 1 && v.Placements[0].Status == "accepted"
	})
	if view.Status != "in_progress" || view.Placements[0].Organisation != receiver {
		t.Errorf("after acceptance: %+v", view)
	}
	// Another organisation does not see it.
	if code, _ := getReferral(t, httpAddr, receiverToken, events.NewReferralID()); code != http.StatusNotFound {
		t.Errorf("an unknown referral: %d, want 404", code)
	}
	return ref
}

// provisionTestOrgs writes the directory d into the bucket of the server
// at nc and makes an organisation token for each of its organisations.
// With cleanup (for a server that outlives the test) they are removed at
// the end.
func provisionTestOrgs(t *testing.T, nc *nats.Conn, d *directory.Directory, cleanup bool) map[string]string {
	t.Helper()
	ctx := testenv.Context(t)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	store, err := natsjs.NewDirectoryStore(ctx, js, natsjs.DirectoryStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImportDirectory(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	// The records and consumers of the test's own organisations go at the
	// end, so that a shared server keeps nothing of the test but its log.
	cleanups := func(fn func()) {
		if cleanup {
			t.Cleanup(fn)
		}
	}
	cleanups(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
		defer ccancel()
		for _, o := range d.Organisations {
			if _, rev, err := store.GetOrganisation(cctx, o.ID); err == nil {
				if err := store.DeleteOrganisation(cctx, o.ID, rev); err != nil {
					t.Logf("delete test organisation %s: %v", o.ID, err)
				}
			}
			if err := js.DeleteConsumer(cctx, natsjs.StreamDelivery, natsjs.OrgConsumerName(o.ID)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				t.Logf("delete the consumer of %s: %v", o.ID, err)
			}
		}
	})
	kv, err := js.KeyValue(ctx, natsjs.BucketTokens)
	if err != nil {
		t.Fatal(err)
	}
	tokens := httpapi.NewTokens(natsjs.NewKVStore(js, kv))
	out := map[string]string{}
	for _, o := range d.Organisations {
		secret, tok, err := tokens.Create(ctx, o.ID, httpapi.RoleOrganisation, "e2e test")
		if err != nil {
			t.Fatal(err)
		}
		out[o.ID] = secret
		id := tok.ID
		cleanups(func() {
			cctx, ccancel := context.WithTimeout(context.Background(), time.Minute) // against a hang only
			defer ccancel()
			if err := tokens.Revoke(cctx, id); err != nil {
				t.Logf("revoke test token: %v", err)
			}
		})
	}
	return out
}

// uniqueSlug returns a slug no other test run uses.
func uniqueSlug(prefix string) string {
	return strings.ToLower(fmt.Sprintf("%s-%x", prefix, time.Now().UnixNano()))
}
