package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/events"
)

// The gate (see accounts.go) receives the consumer requests of the
// organisations' accounts, on $INVICTUS.GATE.<account>.<API subject after
// $JS.API.>, checks each against what that organisation may do, and passes
// the ones it may to JetStream on its own connection, answering with
// JetStream's reply. What it lets through:
//
//   - on DELIVERY: info of the organisation's durable consumer, which
//     the gate answers by creating it (or updating it to the node's
//     configuration, [OrgConsumerOnDemand]) so that an organisation has a
//     consumer only from its first use over NATS; create,
//     info and delete of its reader slots ([OrgReaderNames]) as pull
//     consumers without acknowledgements whose filters lie inside
//     out.<cc>.<org>.>, that go away after at most
//     [OrgReaderInactiveMax] unread;
//   - on KV_directory: create of ephemeral push consumers without
//     acknowledgements filtered inside the bucket (what a watcher is),
//     delivering to the organisation's own inbox prefix (the gate points
//     them at $INVICTUS.PUSH.<account>.…, which only that account
//     imports); info and delete of the watchers the organisation created.
//
//   - $JS.API.INFO: answered by the gate itself with the organisation's
//     own usage (none: its account has no streams) and no limits, so
//     that clients that check JetStream is there find it;
//   - $JS.API.STREAM.INFO of INBOUND and DELIVERY: the stream's
//     configuration (documented in the README) with an empty state, so
//     that the counts of other organisations' messages stay hidden.
//
// Everything else is refused with a JetStream API error, code 403.

// Limits of the gate.
const (
	// gateTimeout bounds each request the gate passes to JetStream.
	gateTimeout = 5 * time.Second
	// gateInFlight bounds the requests the gate handles at once; beyond
	// it, a request is answered 503 at once.
	gateInFlight = 64
	// gateInFlightOrg bounds one organisation's share of them, so that
	// one cannot keep the others waiting.
	gateInFlightOrg = 16
	// OrgMaxWatchers bounds the directory watchers one organisation has
	// at once.
	OrgMaxWatchers = 16
	// metaOwner is the consumer metadata key that records which
	// organisation created a directory watcher.
	metaOwner = "invictus_org"
)

// gateQueue is the queue group of the gates of a cluster's instances.
const gateQueue = "invictus-gate"

// Gate is the gate run beside an external cluster in operator mode
// (deploy/nats/cluster-operator.conf), where the organisations' accounts
// import its subjects as on the embedded server: without it their
// standard JetStream clients find nobody answering their consumer's info.
type Gate struct{ g *gate }

// StartGate starts a gate on nc, a connection in the streams' account
// with the administrator's permissions. Every instance on a cluster may
// run one: each request is answered by one of them.
func StartGate(nc *nats.Conn) (*Gate, error) {
	g, err := startGate(nc)
	if err != nil {
		return nil, err
	}
	return &Gate{g: g}, nil
}

// Close stops the gate and waits for the requests in flight.
func (g *Gate) Close() { g.g.close() }

// errDenied is the class of the gate's refusals.
var errDenied = errors.New("not permitted")

// gate checks and forwards the organisations' consumer requests.
type gate struct {
	nc   *nats.Conn
	sub  *nats.Subscription
	sem  chan struct{}
	wg   sync.WaitGroup
	stop chan struct{}

	mu     sync.Mutex
	closed bool
	busy   map[string]int // requests in flight by account
}

// startGate subscribes nc (the gate's connection, in the streams'
// account) to the gate's subjects.
func startGate(nc *nats.Conn) (*gate, error) {
	g := &gate{nc: nc, sem: make(chan struct{}, gateInFlight), stop: make(chan struct{}), busy: map[string]int{}}
	// One queue group: on a cluster each serve instance runs a gate, and
	// each request is answered by one of them.
	sub, err := nc.QueueSubscribe(gatePrefix+".>", gateQueue, g.receive)
	if err != nil {
		return nil, fmt.Errorf("natsjs: gate: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("natsjs: gate: %w", err)
	}
	g.sub = sub
	return g, nil
}

// close stops the gate and waits for the requests in flight.
func (g *gate) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	_ = g.sub.Unsubscribe()
	g.wg.Wait()
}

// receive hands m to a worker, or answers 503 when all are busy or the
// organisation has its share in flight.
func (g *gate) receive(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	rest, _ := strings.CutPrefix(m.Subject, gatePrefix+".")
	acct, _, _ := strings.Cut(rest, ".")
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if g.busy[acct] >= gateInFlightOrg {
		g.answerError(m, "", 503, "too many requests in flight; try again")
		return
	}
	select {
	case g.sem <- struct{}{}:
	default:
		g.answerError(m, "", 503, "the gate is busy; try again")
		return
	}
	g.busy[acct]++
	g.wg.Go(func() {
		defer func() {
			<-g.sem
			g.mu.Lock()
			if g.busy[acct]--; g.busy[acct] <= 0 {
				delete(g.busy, acct)
			}
			g.mu.Unlock()
		}()
		g.handle(m)
	})
}

// handle checks one request and forwards it.
func (g *gate) handle(m *nats.Msg) {
	rest, _ := strings.CutPrefix(m.Subject, gatePrefix+".")
	acct, api, _ := strings.Cut(rest, ".")
	org := orgOfAccount(acct)
	if org == "" {
		return // not an organisation's account: nobody to answer
	}
	if api == "INFO" {
		b, _ := json.Marshal(map[string]any{"type": respAccount, "memory": 0, "storage": 0, "streams": 0, "consumers": 0,
			"limits": map[string]any{"max_memory": -1, "max_storage": -1, "max_streams": -1, "max_consumers": -1},
			"api":    map[string]any{"total": 0, "errors": 0}})
		_ = g.nc.Publish(m.Reply, b)
		return
	}
	subject, body, respType, err := g.check(org, api, m.Data)
	if err != nil {
		g.answerError(m, respType, 403, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gateTimeout)
	defer cancel()
	go func() {
		select {
		case <-g.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp, err := g.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: body})
	if err != nil {
		g.answerError(m, respType, 503, "JetStream did not answer: "+err.Error())
		return
	}
	data := resp.Data
	if respType == respStreamInfo {
		data = streamConfigOnly(data)
	}
	_ = g.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: resp.Header, Data: data})
}

// streamConfigOnly keeps the type, configuration, creation time and error
// of a stream info response, and gives it an empty state.
func streamConfigOnly(data []byte) []byte {
	var in map[string]json.RawMessage
	if json.Unmarshal(data, &in) != nil {
		return data
	}
	out := map[string]json.RawMessage{"state": json.RawMessage(`{"messages":0,"bytes":0,"first_seq":0,"last_seq":0,"consumer_count":0}`)}
	for _, k := range []string{"type", "config", "created", "error", "ts"} {
		if v, ok := in[k]; ok {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return data
	}
	return b
}

// answerError answers m with a JetStream API error.
func (g *gate) answerError(m *nats.Msg, respType string, code int, description string) {
	b, _ := json.Marshal(map[string]any{
		"type":  respType,
		"error": map[string]any{"code": code, "description": "invictus: " + description},
	})
	_ = g.nc.Publish(m.Reply, b)
}

// Response types of the JetStream API, for the gate's errors.
const (
	respCreate  = "io.nats.jetstream.api.v1.consumer_create_response"
	respInfo    = "io.nats.jetstream.api.v1.consumer_info_response"
	respDelete  = "io.nats.jetstream.api.v1.consumer_delete_response"
	respAccount = "io.nats.jetstream.api.v1.account_info_response"
	// respStreamInfo is the response type of stream info.
	respStreamInfo = "io.nats.jetstream.api.v1.stream_info_response"
)

// check returns the JetStream request to make for organisation org's
// request api (the subject after $JS.API.) with body data, or an error
// wrapping errDenied. respType is the response type of the API, for an
// error answer.
func (g *gate) check(org, api string, data []byte) (subject string, body []byte, respType string, err error) {
	tokens := strings.Split(api, ".")
	deny := func(format string, a ...any) (string, []byte, string, error) {
		return "", nil, respType, fmt.Errorf("%w: "+format, append([]any{errDenied}, a...)...)
	}
	if api == "STREAM.INFO."+StreamInbound || api == "STREAM.INFO."+StreamDelivery {
		// Without the request's body: no subject counts, no deleted
		// messages.
		return "$JS.API." + api, nil, respStreamInfo, nil
	}
	if len(tokens) < 4 || tokens[0] != "CONSUMER" {
		respType = respAccount
		return deny("%s is not open to organisations", "$JS.API."+api)
	}
	op, stream, name := tokens[1], tokens[2], tokens[3]
	switch op {
	case "CREATE":
		respType = respCreate
	case "INFO":
		respType = respInfo
	case "DELETE":
		respType = respDelete
	default:
		return deny("$JS.API.CONSUMER.%s is not open to organisations", op)
	}
	if op != "CREATE" && len(tokens) != 4 {
		return deny("malformed request subject")
	}
	switch {
	case stream == StreamDelivery && op == "CREATE":
		body, err := checkReader(org, name, tokens[4:], data)
		if err != nil {
			return deny("%v", err)
		}
		return "$JS.API." + api, body, respType, nil
	case stream == StreamDelivery && name == OrgConsumerName(org) && op == "INFO":
		// First use: the durable consumer exists from now on, until it
		// has gone unread for OrgConsumerInactive. A create with the
		// same configuration changes nothing and answers its info.
		cfg := OrgConsumerOnDemand(org)
		body, err := json.Marshal(struct {
			Stream string                    `json:"stream_name"`
			Config *jetstream.ConsumerConfig `json:"config"`
		}{StreamDelivery, &cfg})
		if err != nil {
			return deny("%v", err)
		}
		return "$JS.API.CONSUMER.CREATE." + StreamDelivery + "." + name + "." + cfg.FilterSubject, body, respType, nil
	case stream == StreamDelivery:
		if !isReader(org, name) {
			return deny("consumer %s on %s is not %s's", name, stream, org)
		}
		return "$JS.API." + api, nil, respType, nil
	case stream == kvStream && op == "CREATE":
		if err := g.checkOwner(org, name, true); err != nil {
			return deny("%v", err)
		}
		if err := g.checkWatchers(org); err != nil {
			return deny("%v", err)
		}
		body, err := checkWatcher(org, name, tokens[4:], data)
		if err != nil {
			return deny("%v", err)
		}
		return "$JS.API." + api, body, respType, nil
	case stream == kvStream:
		if err := g.checkOwner(org, name, false); err != nil {
			return deny("%v", err)
		}
		return "$JS.API." + api, nil, respType, nil
	}
	return deny("stream %s is not open to organisations", stream)
}

// isReader reports whether name is one of org's reader slots.
func isReader(org, name string) bool {
	for _, r := range OrgReaderNames(org) {
		if r == name {
			return true
		}
	}
	return false
}

// parseCreate decodes a consumer create request and checks what every
// consumer an organisation creates must satisfy.
func parseCreate(stream, name string, filterTokens []string, data []byte) (*server.CreateConsumerRequest, error) {
	var req server.CreateConsumerRequest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	cfg := &req.Config
	switch {
	case req.Stream != stream:
		return nil, fmt.Errorf("the request names stream %q", req.Stream)
	case cfg.Name != "" && cfg.Name != name:
		return nil, fmt.Errorf("the request names consumer %q", cfg.Name)
	case cfg.Durable != "":
		return nil, errors.New("durable consumers are provisioned by the node")
	case cfg.Direct || cfg.Sourcing:
		return nil, errors.New("internal consumers are not open to organisations")
	case cfg.AckPolicy != server.AckNone:
		return nil, errors.New("readers and watchers acknowledge nothing (ack_policy none)")
	case cfg.DeliverGroup != "":
		return nil, errors.New("queue groups are not open to organisations")
	case cfg.PriorityPolicy != server.PriorityNone || len(cfg.PriorityGroups) > 0:
		return nil, errors.New("priority groups are not open to organisations")
	case cfg.Replicas > 1:
		return nil, errors.New("replicas are set by the node")
	case cfg.InactiveThreshold < 0 || cfg.InactiveThreshold > OrgReaderInactiveMax:
		return nil, fmt.Errorf("inactive_threshold must be at most %s", OrgReaderInactiveMax)
	}
	cfg.Name = name // 0 InactiveThreshold: JetStream's default for an ephemeral consumer, 5 s
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = append(filters, cfg.FilterSubject)
	}
	if len(filters) == 0 {
		return nil, errors.New("a filter subject is required")
	}
	if len(filterTokens) > 0 && (len(filters) != 1 || filters[0] != strings.Join(filterTokens, ".")) {
		return nil, errors.New("the filter of the subject and of the request differ")
	}
	return &req, nil
}

// within reports whether every subject filter is a valid subject inside
// prefix.> (its first tokens equal to prefix's).
func within(filters []string, prefix string) bool {
	for _, f := range filters {
		if !server.IsValidSubject(f) || !strings.HasPrefix(f, prefix+".") {
			return false
		}
	}
	return true
}

// filtersOf returns the filters of cfg.
func filtersOf(cfg *server.ConsumerConfig) []string {
	if cfg.FilterSubject != "" {
		return append([]string{cfg.FilterSubject}, cfg.FilterSubjects...)
	}
	return cfg.FilterSubjects
}

// checkReader checks the creation of reader name on DELIVERY by org and
// returns the request to forward: a pull consumer inside
// out.<cc>.<org>.>.
func checkReader(org, name string, filterTokens []string, data []byte) ([]byte, error) {
	if !isReader(org, name) {
		return nil, fmt.Errorf("%s may create only its readers %s", org, strings.Join(OrgReaderNames(org), ", "))
	}
	req, err := parseCreate(StreamDelivery, name, filterTokens, data)
	if err != nil {
		return nil, err
	}
	if req.Config.DeliverSubject != "" {
		return nil, errors.New("readers are pull consumers (no deliver_subject)")
	}
	prefix := strings.TrimSuffix(events.DeliveryFilter(org), ".>")
	if !within(filtersOf(&req.Config), prefix) {
		return nil, fmt.Errorf("a reader of %s reads inside %s only", org, events.DeliveryFilter(org))
	}
	return json.Marshal(req)
}

// checkWatcher checks the creation of watcher name on the directory
// bucket by org and returns the request to forward: a push consumer
// delivering to the organisation's own inbox, through the account's
// $INVICTUS.PUSH import, with its owner in the metadata.
func checkWatcher(org, name string, filterTokens []string, data []byte) ([]byte, error) {
	if !server.IsValidSubject(name) || strings.ContainsAny(name, ".*>") {
		return nil, fmt.Errorf("%q is not a consumer name", name)
	}
	req, err := parseCreate(kvStream, name, filterTokens, data)
	if err != nil {
		return nil, err
	}
	cfg := &req.Config
	inbox := OrgInboxPrefix(org) + "."
	rest, ok := strings.CutPrefix(cfg.DeliverSubject, inbox)
	if !ok || rest == "" || !server.IsValidPublishSubject(cfg.DeliverSubject) {
		return nil, fmt.Errorf("a watcher of %s delivers below %s only", org, inbox+">")
	}
	if !within(filtersOf(cfg), "$KV."+BucketDirectory) {
		return nil, fmt.Errorf("a watcher reads inside $KV.%s.> only", BucketDirectory)
	}
	cfg.DeliverSubject = pushPrefix + "." + OrgAccountName(org) + "." + rest
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	cfg.Metadata[metaOwner] = org
	return json.Marshal(req)
}

// checkOwner returns nil when the directory watcher name was created by
// org, or, for a creation (absentOK), does not exist yet.
func (g *gate) checkOwner(org, name string, absentOK bool) error {
	if !server.IsValidSubject(name) || strings.ContainsAny(name, ".*>") {
		return fmt.Errorf("%q is not a consumer name", name)
	}
	resp, err := g.nc.Request("$JS.API.CONSUMER.INFO."+kvStream+"."+name, nil, gateTimeout)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", name, err)
	}
	var info struct {
		Config *struct {
			Metadata map[string]string `json:"metadata"`
		} `json:"config"`
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &info); err != nil {
		return fmt.Errorf("consumer %s: %w", name, err)
	}
	switch {
	case info.Error != nil && info.Error.Code == 404 && absentOK:
		return nil
	case info.Error != nil:
		return fmt.Errorf("consumer %s on %s: not found", name, kvStream)
	case info.Config == nil || info.Config.Metadata[metaOwner] != org:
		return fmt.Errorf("consumer %s on %s is not %s's", name, kvStream, org)
	}
	return nil
}

// checkWatchers returns an error when org already has [OrgMaxWatchers]
// directory watchers.
func (g *gate) checkWatchers(org string) error {
	n, offset := 0, 0
	for {
		req, _ := json.Marshal(map[string]int{"offset": offset})
		resp, err := g.nc.Request("$JS.API.CONSUMER.LIST."+kvStream, req, gateTimeout)
		if err != nil {
			return fmt.Errorf("list the watchers: %w", err)
		}
		var page struct {
			Total     int `json:"total"`
			Consumers []struct {
				Config struct {
					Metadata map[string]string `json:"metadata"`
				} `json:"config"`
			} `json:"consumers"`
		}
		if err := json.Unmarshal(resp.Data, &page); err != nil {
			return fmt.Errorf("list the watchers: %w", err)
		}
		for _, c := range page.Consumers {
			if c.Config.Metadata[metaOwner] == org {
				n++
			}
		}
		offset += len(page.Consumers)
		if len(page.Consumers) == 0 || offset >= page.Total {
			break
		}
	}
	if n >= OrgMaxWatchers {
		return fmt.Errorf("%s has %d directory watchers open, the most it may", org, n)
	}
	return nil
}
