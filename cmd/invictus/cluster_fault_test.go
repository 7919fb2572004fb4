package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/events"
)

// The cluster fault tests: the NATS nodes of deploy/nats/cluster.conf run
// as processes of their own (testdata/natsnode, the nats-server that the
// module embeds), so that one can be killed with SIGKILL and started again
// on its store, while two `invictus serve` instances route referrals that
// organisations send and accept over the HTTP API. In the end every
// referral is requested, planned, offered once and accepted once; no event
// is lost or stored twice, and each is delivered once to each party.

// faultReferralsDefault is how many referrals a fault test sends; the
// environment variable INVICTUS_FAULT_REFERRALS sets another number (the
// issue's 1,000 for a longer run).
const faultReferralsDefault = 300

func faultReferrals(t *testing.T) int {
	t.Helper()
	v := os.Getenv("INVICTUS_FAULT_REFERRALS")
	if v == "" {
		return faultReferralsDefault
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 30 {
		t.Fatalf("INVICTUS_FAULT_REFERRALS=%q: want a number of at least 30", v)
	}
	return n
}

var (
	natsNodeOnce sync.Once
	natsNodePath string
	natsNodeErr  error
)

// natsNodeBinary builds testdata/natsnode once per test run.
func natsNodeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs NATS nodes as processes; skipped with -short")
	}
	natsNodeOnce.Do(func() {
		natsNodePath = filepath.Join(binDir, "natsnode")
		out, err := exec.Command("go", "build", "-o", natsNodePath, "./testdata/natsnode").CombinedOutput()
		if err != nil {
			natsNodeErr = fmt.Errorf("go build natsnode: %w\n%s", err, out)
		}
	})
	if natsNodeErr != nil {
		t.Fatal(natsNodeErr)
	}
	return natsNodePath
}

// natsProc is one NATS node running as a process.
type natsProc struct {
	name   string
	args   []string
	env    []string
	client string // host:port
	http   string // host:port of monitoring

	cmd     *exec.Cmd
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error
}

// procCluster is a 3-node cluster of deploy/nats/cluster.conf, each node a
// process.
type procCluster struct {
	testCluster
	t     *testing.T
	bin   string
	nodes []*natsProc
}

// clusterKeys makes the cluster's two users, as deploy/README.md says.
func clusterKeys(t *testing.T) (keys *natsjs.KeyStore, adminPub, sysPub string) {
	t.Helper()
	keys, err := natsjs.NewKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if adminPub, err = keys.Ensure(natsjs.UserAdmin); err != nil {
		t.Fatal(err)
	}
	if sysPub, err = keys.Ensure(natsjs.UserSys); err != nil {
		t.Fatal(err)
	}
	return keys, adminPub, sysPub
}

func startProcCluster(t *testing.T) *procCluster {
	t.Helper()
	keys, adminPub, sysPub := clusterKeys(t)
	c := startProcClusterFrom(t, filepath.Join(deployDir, "nats", "cluster.conf"), "INVICTUS_NATS_NKEY="+adminPub, "NATS_SYS_NKEY="+sysPub)
	c.keys = keys
	return c
}

// startProcClusterFrom starts three nodes of conf as processes, with env
// added to each one's environment (besides its name and the routes).
func startProcClusterFrom(t *testing.T, conf string, env ...string) *procCluster {
	t.Helper()
	bin := natsNodeBinary(t)
	const n = 3
	var clients, routes, https []string
	for range n {
		clients = append(clients, freeAddr(t))
		routes = append(routes, "nats://"+freeAddr(t))
		https = append(https, freeAddr(t))
	}
	c := &procCluster{t: t, bin: bin}
	var urls []string
	for i := range n {
		p := &natsProc{name: "nats-" + itoa(i+1), client: clients[i], http: https[i]}
		_, cport := splitAddr(t, strings.TrimPrefix(routes[i], "nats://"))
		_, hport := splitAddr(t, https[i])
		p.args = []string{"-c", conf, "-client", clients[i],
			"-cluster", itoa(cport), "-http", itoa(hport), "-store", t.TempDir()}
		p.env = append(append(cleanEnv(), "NATS_SERVER_NAME="+p.name, "NATS_ROUTES=["+strings.Join(routes, ", ")+"]"), env...)
		c.nodes = append(c.nodes, p)
		urls = append(urls, "nats://"+clients[i])
		c.start(i)
	}
	c.url = strings.Join(urls, ",")
	t.Cleanup(func() {
		for _, p := range c.nodes {
			if p.cmd != nil && p.cmd.Process != nil {
				select {
				case <-p.exited:
				default:
					_ = p.cmd.Process.Kill()
					<-p.exited
				}
			}
		}
	})
	for i := range c.nodes {
		c.waitHealthy(i)
	}
	return c
}

// start starts node i (again, on the same store and ports).
func (c *procCluster) start(i int) {
	c.t.Helper()
	p := c.nodes[i]
	p.cmd = exec.Command(c.bin, p.args...)
	p.cmd.Env = p.env
	p.stderr = &syncBuffer{}
	p.cmd.Stderr = p.stderr
	p.exited = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	cmd, exited := p.cmd, p.exited
	go func() {
		p.waitErr = cmd.Wait()
		close(exited)
	}()
}

// kill kills node i with SIGKILL and waits until it is gone.
func (c *procCluster) kill(i int) {
	c.t.Helper()
	p := c.nodes[i]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-p.exited
	var exitErr *exec.ExitError
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !errors.As(p.waitErr, &exitErr) || !ok || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("%s ended with %v, not by SIGKILL\n%s", p.name, p.waitErr, lastLines(p.stderr.String(), 20))
	}
}

// reload makes node i read its configuration again (SIGHUP, as
// `nats-server --signal reload`).
func (c *procCluster) reload(i int) {
	c.t.Helper()
	if err := c.nodes[i].cmd.Process.Signal(syscall.SIGHUP); err != nil {
		c.t.Fatal(err)
	}
}

// stop stops node i with SIGTERM, as a rolling restart does.
func (c *procCluster) stop(i int) {
	c.t.Helper()
	p := c.nodes[i]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	<-p.exited
	if p.waitErr != nil {
		c.t.Fatalf("%s stopped with %v\n%s", p.name, p.waitErr, lastLines(p.stderr.String(), 20))
	}
}

// waitHealthy waits until node i's /healthz says it is up and its
// JetStream is current with the cluster (the probe deploy/k8s uses).
func (c *procCluster) waitHealthy(i int) {
	c.t.Helper()
	p := c.nodes[i]
	waitFor(c.t, p.name+"'s /healthz", func() bool {
		select {
		case <-p.exited:
			c.t.Fatalf("%s exited: %v\n%s", p.name, p.waitErr, lastLines(p.stderr.String(), 30))
		default:
		}
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// leaderOf returns the index of the node that leads stream.
func (c *procCluster) leaderOf(js jetstream.JetStream, stream string) int {
	c.t.Helper()
	var leader string
	waitFor(c.t, "the leader of "+stream, func() bool {
		// A short bound on each try, which is then made again: a request
		// during an election may never be answered.
		ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		if info := s.CachedInfo(); info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		return leader != ""
	})
	for i, p := range c.nodes {
		if p.name == leader {
			return i
		}
	}
	c.t.Fatalf("%s is led by %q, not a node of the cluster", stream, leader)
	return -1
}

// clusterLoad plays organisations over the HTTP API of the serve instances
// it is given: referrers send referrals as fast as they are taken, each
// receiver reads its inbox and accepts each offer made to it. Every call
// that fails (an instance or a NATS node going away) is sent again, to
// another instance, with the same CloudEvents id.
type clusterLoad struct {
	t          *testing.T
	hc         *http.Client
	tokens     map[string]string
	referrers  []string
	receivers  []string
	jobs       map[string][]crashJob // by referrer
	byRef      map[string]crashJob
	referrerOf map[string]string

	mu    sync.Mutex
	addrs []string // the HTTP addresses of the instances that take traffic
	next  int

	submitted atomic.Int64 // referrals stored
	accepted  atomic.Int64 // acceptances stored
	retried   atomic.Int64 // calls sent again
	marks     sync.Map     // int64 -> chan struct{}

	accepts acceptIDs

	// cursors is each receiver's inbox cursor (org -> uint64), and
	// offersSeen the DELIVERY sequence of each offer a receiver read
	// (referral -> uint64), for the diagnosis of a stall.
	cursors    sync.Map
	offersSeen sync.Map

	diagnose []func() // logs what may explain a wait that timed out

	gateMu  sync.Mutex
	gate    *sync.Cond
	limit   int64 // how many referrals may be sent; -1 for all
	tickets int64 // referrals taken by the referrers

	cancel    context.CancelFunc
	referring sync.WaitGroup
	receiving sync.WaitGroup
}

func newClusterLoad(t *testing.T, tokens map[string]string, referrers, receivers []string, n int) *clusterLoad {
	l := &clusterLoad{t: t, hc: &http.Client{Timeout: 15 * time.Second}, tokens: tokens, referrers: referrers, receivers: receivers,
		jobs: map[string][]crashJob{}, byRef: map[string]crashJob{}, referrerOf: map[string]string{}, limit: -1}
	l.gate = sync.NewCond(&l.gateMu)
	for i := range n {
		org := referrers[i%len(referrers)]
		req := testRequested(receivers[i%len(receivers)])
		req.Consent.RecordedBy = fmt.Sprintf("fault-e%04d", i)
		j := crashJob{ref: events.NewReferralID(), cmd: events.NewReferralID(), req: *req}
		l.jobs[org] = append(l.jobs[org], j)
		l.byRef[j.ref], l.referrerOf[j.ref] = j, org
	}
	t.Cleanup(l.stop)
	return l
}

// setAddrs sets the instances that take traffic.
func (l *clusterLoad) setAddrs(addrs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = addrs
}

func (l *clusterLoad) pick() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.addrs) == 0 {
		return ""
	}
	l.next++
	return l.addrs[l.next%len(l.addrs)]
}

func (l *clusterLoad) run() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for _, org := range l.receivers {
		l.receiving.Go(func() { l.receive(ctx, org) })
	}
	for _, org := range l.referrers {
		l.referring.Go(func() {
			for _, j := range l.jobs[org] {
				if !l.ticket(ctx) {
					return
				}
				if err := l.post(ctx, org, j.ref, j.cmd, &j.req); err != nil {
					if ctx.Err() == nil {
						l.t.Errorf("referrer %s, referral %s: %v", org, j.ref, err)
					}
					return
				}
				n := l.submitted.Add(1)
				if ch, ok := l.marks.Load(n); ok {
					close(ch.(chan struct{}))
				}
			}
		})
	}
}

// allow lets the referrers send n referrals in all (-1: every one).
func (l *clusterLoad) allow(n int64) {
	l.gateMu.Lock()
	defer l.gateMu.Unlock()
	l.limit = n
	l.gate.Broadcast()
}

// ticket waits until the referrers may send one more referral; false
// when ctx ended first.
func (l *clusterLoad) ticket(ctx context.Context) bool {
	l.gateMu.Lock()
	defer l.gateMu.Unlock()
	l.tickets++
	for l.limit >= 0 && l.tickets > l.limit && ctx.Err() == nil {
		l.gate.Wait()
	}
	return ctx.Err() == nil
}

func (l *clusterLoad) stop() {
	if l.cancel != nil {
		l.cancel()
		l.allow(-1) // wakes the referrers waiting for a ticket
		l.referring.Wait()
		l.receiving.Wait()
		l.cancel = nil
	}
}

// mark returns a channel closed once n referrals are stored; call it
// before run.
func (l *clusterLoad) mark(n int64) chan struct{} {
	ch := make(chan struct{})
	l.marks.Store(n, ch)
	return ch
}

// idle waits a little between retries and polls.
func idle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errPermanent is an answer that sending again cannot change.
var errPermanent = errors.New("refused")

// call makes one request to an instance that takes traffic and decodes
// its JSON answer into v. It retries (another instance, after a pause)
// on a failure of the connection, 429 and 5xx.
func (l *clusterLoad) call(ctx context.Context, method, path, token, contentType string, body []byte, v any) error {
	for ctx.Err() == nil {
		addr := l.pick()
		if addr == "" {
			idle(ctx, 50*time.Millisecond)
			continue
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := l.hc.Do(req)
		if err != nil {
			l.retried.Add(1)
			idle(ctx, 50*time.Millisecond)
			continue
		}
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			l.retried.Add(1)
			idle(ctx, 100*time.Millisecond)
			continue
		case resp.StatusCode >= 300:
			return fmt.Errorf("%w: %s %s: %d %s", errPermanent, method, path, resp.StatusCode, clipBody(b))
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				return fmt.Errorf("%s %s: %d %q: %w", method, path, resp.StatusCode, clipBody(b), err)
			}
		}
		return nil
	}
	return ctx.Err()
}

// post sends a command of org with the CloudEvents id id until it is
// stored.
func (l *clusterLoad) post(ctx context.Context, org, ref, id string, p events.Payload) error {
	ev, err := events.New(events.SourceOf(org), ref, p, events.WithID(id))
	if err != nil {
		return err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var res httpapi.CommandResult
	if err := l.call(ctx, http.MethodPost, "/v1/events", l.tokens[org], "application/cloudevents+json", body, &res); err != nil {
		return err
	}
	if res.Status == httpapi.StatusRejected {
		return fmt.Errorf("%w: %s rejected: %+v", errPermanent, p.EventType(), res.Errors)
	}
	return nil
}

// receive reads org's inbox and accepts every offer made to it, with the
// same acceptance id each time the offer is read.
func (l *clusterLoad) receive(ctx context.Context, org string) {
	var after uint64
	for ctx.Err() == nil {
		var page httpapi.InboxPage
		err := l.call(ctx, http.MethodGet, "/v1/inbox?limit="+itoa(httpapi.InboxLimitMax)+"&after="+strconv.FormatUint(after, 10), l.tokens[org], "", nil, &page)
		if err != nil {
			if ctx.Err() == nil {
				l.t.Errorf("inbox of %s: %v", org, err)
			}
			return
		}
		for _, d := range page.Deliveries {
			if d.Type == events.TypeCommandRejected {
				// Every command of the load is valid: a rejection (of an
				// acceptance, decided on a history without the offer) would
				// leave its referral offered with nothing in flight.
				l.t.Errorf("inbox of %s: delivery %d: a command on %s was rejected: %.400s", org, d.Seq, d.Referral, d.Event)
				continue
			}
			if d.Type != events.TypeReferralOffered || d.Reminder {
				continue
			}
			var ev struct {
				ID   string         `json:"id"`
				Data events.Offered `json:"data"`
			}
			if err := json.Unmarshal(d.Event, &ev); err != nil {
				l.t.Errorf("inbox of %s: offer %d: %v", org, d.Seq, err)
				return
			}
			if ev.Data.Organisation != org {
				continue // the referrer's copy
			}
			l.offersSeen.Store(d.Referral, d.Seq)
			if err := l.post(ctx, org, d.Referral, l.accepts.of(ev.ID), &events.Accepted{Placement: ev.Data.Placement}); err != nil {
				if ctx.Err() == nil {
					l.t.Errorf("%s accepting %s: %v", org, d.Referral, err)
				}
				return
			}
			l.accepted.Add(1)
		}
		after = page.Next
		l.cursors.Store(org, after)
		if len(page.Deliveries) == 0 {
			idle(ctx, 100*time.Millisecond)
		}
	}
}

// await waits for ch (a mark), failing the test when the referrers stop
// first.
func (l *clusterLoad) await(ch chan struct{}, what string) {
	l.t.Helper()
	done := make(chan struct{})
	go func() { l.referring.Wait(); close(done) }()
	select {
	case <-ch:
	case <-done:
		select {
		case <-ch:
		default:
			l.t.Fatalf("the referrers stopped at %d referrals, before %s", l.submitted.Load(), what)
		}
	}
}

// finish waits until every referral is accepted and nothing is in flight,
// then checks every referral's log and every delivery.
func (l *clusterLoad) finish(js jetstream.JetStream) {
	t := l.t
	t.Helper()
	l.referring.Wait()
	if t.Failed() {
		t.FailNow()
	}
	n := len(l.byRef)
	var logs map[string][]crashMsg
	// A stall, not a slow machine, fails the test: the clock restarts
	// whenever another offer is accepted or another referral completes.
	const stall = 3 * time.Minute
	lastAccepted, lastIncomplete := int64(-1), -1
	progressed := time.Now()
	for l.accepted.Load() < int64(n) || crashIncomplete(logs, l.byRef) != 0 {
		if t.Failed() {
			t.FailNow()
		}
		if a, inc := l.accepted.Load(), crashIncomplete(logs, l.byRef); a != lastAccepted || inc != lastIncomplete {
			lastAccepted, lastIncomplete, progressed = a, inc, time.Now()
		}
		if time.Since(progressed) > stall {
			logs := crashLogs(t, js)
			crashDiagnose(t, js, logs, l.byRef)
			l.diagnoseDeliveries(js, logs)
			for _, d := range l.diagnose {
				d()
			}
			t.Fatalf("no progress for %s: %d of %d offers accepted", stall, l.accepted.Load(), n)
		}
		idle(t.Context(), 200*time.Millisecond) // polling progress
		if l.accepted.Load() >= int64(n) {
			logs = crashLogs(t, js)
		}
	}
	waitFor(t, "the routing service to be idle", func() bool {
		return crashIdle(t, js, natsjs.StreamInbound, natsjs.ConsumerRouting) &&
			crashIdle(t, js, natsjs.StreamReferrals, natsjs.ConsumerDispatcher) &&
			crashStreamMsgs(t, js, natsjs.StreamInbound) == 0
	})
	l.stop()
	logs = crashLogs(t, js)
	deliveries := crashRead(t, js, natsjs.StreamDelivery)
	crashCheck(t, logs, deliveries, l.byRef, l.referrerOf)
	for _, m := range crashRead(t, js, natsjs.StreamDLQ) {
		t.Errorf("DLQ %s: %v %.200s", m.subject, m.header, m.data)
	}
	perRef := map[int]int{}
	for _, log := range logs {
		perRef[len(log)]++
	}
	t.Logf("%d referrals: %d events in REFERRALS (referrals by event count: %v), %d deliveries; %d acceptances stored, %d calls sent again",
		n, crashCount(logs), perRef, len(deliveries), l.accepted.Load(), l.retried.Load())
}

// diagnoseDeliveries logs, for each referral not complete, what DELIVERY
// holds of it (read from the stream's leader through a consumer), whether
// its receiver read its offer, and each receiver's inbox cursor.
func (l *clusterLoad) diagnoseDeliveries(js jetstream.JetStream, logs map[string][]crashMsg) {
	t := l.t
	t.Helper()
	l.cursors.Range(func(org, after any) bool {
		t.Logf("inbox cursor of %s: %d", org, after)
		return true
	})
	deliveries := crashRead(t, js, natsjs.StreamDelivery)
	for ref, j := range l.byRef {
		if crashIncomplete(map[string][]crashMsg{ref: logs[ref]}, map[string]crashJob{ref: j}) == 0 {
			continue
		}
		seen, _ := l.offersSeen.Load(ref)
		t.Logf("incomplete referral %s (referrer %s, receiver %s): offer read by the receiver at %v", ref, l.referrerOf[ref], j.req.PreferredOrganisation, seen)
		for _, m := range logs[ref] {
			t.Logf("  REFERRALS %d %s %s", m.seq, m.subject, m.typ())
		}
		for _, m := range deliveries {
			if strings.HasSuffix(m.subject, "."+ref) {
				t.Logf("  DELIVERY %d %s %s reminder=%q", m.seq, m.subject, m.typ(), m.header[natsjs.HeaderReminder])
			}
		}
		l.diagnoseInbox(j.req.PreferredOrganisation, ref)
	}
}

// diagnoseInbox reads org's whole inbox again through each instance that
// takes traffic (GET /v1/inbox from after=0, page by page) and logs what
// each page sequence holds of referral ref: a delivery the leader's
// DELIVERY holds but no read returns is the inbox read's fault; one every
// read returns, but the receiver's cursor passed unseen, is a page the
// receiver got that lacked it.
func (l *clusterLoad) diagnoseInbox(org, ref string) {
	t := l.t
	t.Helper()
	l.mu.Lock()
	addrs := slices.Clone(l.addrs)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, addr := range addrs {
		var after uint64
		var found []string
		pages := 0
		for ctx.Err() == nil {
			var page httpapi.InboxPage
			code := 0
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/inbox?limit="+itoa(httpapi.InboxLimitMax)+"&after="+strconv.FormatUint(after, 10), nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+l.tokens[org])
				var resp *http.Response
				if resp, err = l.hc.Do(req); err == nil {
					code = resp.StatusCode
					err = json.NewDecoder(resp.Body).Decode(&page)
					resp.Body.Close()
				}
			}
			if err != nil || code != http.StatusOK {
				t.Logf("  inbox of %s through %s after %d: %d %v", org, addr, after, code, err)
				break
			}
			pages++
			for _, d := range page.Deliveries {
				if d.Referral == ref {
					found = append(found, fmt.Sprintf("%d %s reminder=%v (page after %d)", d.Seq, d.Type, d.Reminder, after))
				}
			}
			if len(page.Deliveries) == 0 || page.Next == after {
				break
			}
			after = page.Next
		}
		t.Logf("  inbox of %s read again through %s (%d pages, to %d): %d of its deliveries of the referral: %v", org, addr, pages, after, len(found), found)
	}
}

// faultSetup starts the process cluster, two serve instances on it with
// R3 streams, and the organisations of the load.
func faultSetup(t *testing.T, n int) (*procCluster, []*node, []string, *clusterLoad, jetstream.JetStream) {
	t.Helper()
	c := startProcCluster(t)
	args := []string{"--nats-url", c.url, "--nats-creds", c.keys.Path(natsjs.UserAdmin), "--nats-replicas", "3"}
	nodes := []*node{startNode(t, t.TempDir(), args...), startNode(t, t.TempDir(), args...)}
	nc := c.connect(t, natsjs.UserAdmin)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var referrers, receivers, orgs []string
	for i := range 4 {
		referrers = append(referrers, "pt."+uniqueSlug("f-ref"+itoa(i)))
		receivers = append(receivers, "pt."+uniqueSlug("f-recv"+itoa(i)))
	}
	orgs = append(append(orgs, referrers...), receivers...)
	tokens := provisionTestOrgs(t, nc, testOrgsDirectory(t, orgs...), false)
	l := newClusterLoad(t, tokens, referrers, receivers, n)
	l.setAddrs(nodes[0].HTTP, nodes[1].HTTP)
	l.diagnose = append(l.diagnose, func() {
		for i, nd := range nodes {
			t.Logf("--- serve %d:\n%s", i, lastLines(nd.stderr.String(), 30))
		}
		for _, p := range c.nodes {
			t.Logf("--- %s:\n%s", p.name, lastLines(p.stderr.String(), 15))
		}
	})
	return c, nodes, args, l, js
}

// TestClusterNodeKilled kills the NATS node leading REFERRALS with SIGKILL
// while referrals flow through two serve instances, and starts it again on
// its store once more referrals went through the two nodes left.
func TestClusterNodeKilled(t *testing.T) {
	n := faultReferrals(t)
	c, nodes, _, l, js := faultSetup(t, n)
	killAt, restartAt := l.mark(int64(n/4)), l.mark(int64(n/2))
	began := time.Now()
	l.run()

	l.await(killAt, "the kill")
	victim := c.leaderOf(js, natsjs.StreamReferrals)
	c.kill(victim)
	t.Logf("SIGKILL %s (leader of REFERRALS) at %d referrals stored, %d accepted", c.nodes[victim].name, l.submitted.Load(), l.accepted.Load())
	l.await(restartAt, "the restart")
	t.Logf("%d referrals stored, %d accepted with %s down", l.submitted.Load(), l.accepted.Load(), c.nodes[victim].name)
	at := time.Now()
	c.start(victim)
	c.waitHealthy(victim)
	t.Logf("%s back and current in %s", c.nodes[victim].name, time.Since(at).Round(time.Millisecond))
	l.finish(js)
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
	for _, nd := range nodes {
		if code := nd.stop(); code != 0 {
			t.Errorf("serve exit code %d\n%s", code, lastLines(nd.stderr.String(), 20))
		}
	}
}

// TestClusterRollingRestart restarts each NATS node (SIGTERM, then again
// on its store, waiting for its /healthz) and then each serve instance
// (out of the traffic, SIGTERM, a new one on the same data directory,
// back into the traffic once its /readyz says so), in turn. The referrals
// go in chunks, one per step: half of a step's chunk is stored before
// the restart begins, the other half while the node or instance is away.
func TestClusterRollingRestart(t *testing.T) {
	n := faultReferrals(t)
	c, nodes, args, l, js := faultSetup(t, n)
	steps := len(c.nodes) + len(nodes)
	chunk := int64(n / (steps + 1))
	var marks []chan struct{}
	for i := range 2 * (steps + 1) {
		marks = append(marks, l.mark(int64(i+1)*chunk/2))
	}
	began := time.Now()
	l.allow(chunk)
	l.run()
	l.await(marks[1], "the first chunk")
	// step runs one restart: away takes the node or instance out, back
	// brings it back and waits for its readiness.
	step := func(k int, what string, away, back func()) {
		t.Helper()
		l.allow(int64(k+2) * chunk)
		l.await(marks[2*k+2], what)
		at := l.submitted.Load()
		away()
		l.await(marks[2*k+3], what)
		during := l.submitted.Load() - at
		back()
		t.Logf("%s restarted at %d referrals stored; %d stored while it was away", what, at, during)
	}
	for i := range c.nodes {
		step(i, c.nodes[i].name, func() { c.stop(i) }, func() {
			c.start(i)
			c.waitHealthy(i)
		})
	}
	for i := range nodes {
		step(len(c.nodes)+i, "serve "+itoa(i), func() {
			l.setAddrs(nodes[1-i].HTTP)
			if code := nodes[i].stop(); code != 0 {
				t.Fatalf("serve exit code %d\n%s", code, lastLines(nodes[i].stderr.String(), 20))
			}
		}, func() {
			nodes[i] = startNode(t, argValue(nodes[i].cmd.Args, "--data"), args...)
			waitFor(t, "the new instance's /readyz", func() bool {
				code, _ := getJSON(t, "http://"+nodes[i].HTTP+"/readyz")
				return code == http.StatusOK
			})
			l.setAddrs(nodes[0].HTTP, nodes[1].HTTP)
		})
	}
	l.allow(-1)
	l.finish(js)
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
	for _, nd := range nodes {
		if code := nd.stop(); code != 0 {
			t.Errorf("serve exit code %d\n%s", code, lastLines(nd.stderr.String(), 20))
		}
	}
}

// argValue returns the value after flag in args.
func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
