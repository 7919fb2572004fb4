package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/client"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/schemas"
)

// capturedMsg is one NATS message seen on a running node.
type capturedMsg struct {
	from    string // "core" (a subscription) or the stream it was read from
	subject string
	header  nats.Header
	data    []byte
}

// TestContractAgainstRunningNode runs a node in process with the demo,
// drives a referral to completion (over HTTP for the referrer, as a NATS
// client for the receiver), a rejected command, an undecodable one and a
// directory change, captures every message the node published on the
// subjects of the contract and every HTTP answer, and checks them: each
// subject against the channels of asyncapi.yaml, each header against the
// headers the document declares for that channel, each payload against its
// schema, each event with sdk-go's event.Validate (as sdk-go receivers do),
// and each HTTP body against the response schema of the OpenAPI document
// the node serves at /v1/openapi.json.
func TestContractAgainstRunningNode(t *testing.T) {
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--demo")
	ctx := testenv.Context(t)

	adminOpt, err := natsCredsOption(filepath.Join(data, "keys", "admin.nk"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := nats.Connect("nats://"+p.NATS, adminOpt)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// Core subscriptions see what goes to INBOUND (a work queue, emptied
	// by the router) and the directory notifications (no stream).
	var mu sync.Mutex
	var captured []capturedMsg
	for _, subj := range []string{"in.>", "directory.>"} {
		sub, err := admin.Subscribe(subj, func(m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			captured = append(captured, capturedMsg{from: "core", subject: m.Subject, header: m.Header, data: m.Data})
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}

	var tokens map[string]string
	b, err := os.ReadFile(filepath.Join(data, "demo", "tokens.json"))
	if err != nil || json.Unmarshal(b, &tokens) != nil {
		t.Fatalf("demo tokens: %v", err)
	}
	const referrer, receiver = "pt.apav", "pt.amcv"
	base := "http://" + p.HTTP
	api := &apiRecorder{t: t, base: base}

	// The receiver is a NATS client with its own nkey and nothing more.
	amcv, err := client.Connect(ctx, "nats://"+p.NATS, receiver, client.WithNKeySeed(filepath.Join(data, "keys", receiver+".nk")))
	if err != nil {
		t.Fatal(err)
	}
	defer amcv.Close()

	// The referral, to its end. The referrer writes dataschema as clients
	// did before the URN: what the node stores and delivers must carry
	// the URN all the same.
	ref := events.NewReferralID()
	api.oldDataSchema = true
	api.command(tokens[referrer], referrer, ref, testRequested(receiver), http.StatusCreated)
	api.oldDataSchema = false
	var placement string
	waitFor(t, "the offer", func() bool {
		var view httpapi.ReferralView
		code := api.call(http.MethodGet, "/v1/referrals/"+ref, tokens[referrer], "", nil, &view)
		if code == http.StatusOK && len(view.Placements) == 1 && view.Placements[0].Status == "offered" {
			placement = view.Placements[0].Placement
			return true
		}
		return false
	})
	api.call(http.MethodGet, "/v1/inbox?per_page=10", tokens[receiver], "", nil, nil)
	api.call(http.MethodGet, "/v1/organizations/"+receiver, tokens[referrer], "", nil, nil)
	api.call(http.MethodGet, "/v1/organizations?per_page=2", tokens[referrer], "", nil, nil)
	api.call(http.MethodGet, "/v1/services?per_page=2&taxonomy_term=support.emotional", tokens[referrer], "", nil, nil)
	api.call(http.MethodGet, "/healthz", "", "", nil, nil)
	api.call(http.MethodGet, "/readyz", "", "", nil, nil)

	// A forbidden command (the referrer accepting its own referral) is
	// rejected on the referrer's delivery subject of the referral.
	api.command(tokens[referrer], referrer, ref, &events.Accepted{Placement: placement}, http.StatusUnprocessableEntity)

	for _, p := range []events.Payload{
		&events.Accepted{Placement: placement},
		&events.Contacted{Placement: placement},
		&events.Completed{Placement: placement, Outcome: "supported"},
	} {
		id, err := amcv.Send(ctx, ref, p)
		if err != nil {
			t.Fatalf("%s: %v", p.EventType(), err)
		}
		if _, err := amcv.Await(ctx, ref, id); err != nil {
			t.Fatalf("%s: %v", p.EventType(), err)
		}
	}
	waitFor(t, "the completion", func() bool {
		var view httpapi.ReferralView
		return api.call(http.MethodGet, "/v1/referrals/"+ref, tokens[referrer], "", nil, &view) == http.StatusOK && view.Status == "completed"
	})

	// Error answers of the API.
	api.call(http.MethodGet, "/v1/referrals/"+ref, "inv_not-a-token", "", nil, nil)
	api.call(http.MethodGet, "/v1/referrals/"+events.NewReferralID(), tokens[receiver], "", nil, nil)
	api.call(http.MethodPost, "/v1/events", tokens[referrer], "application/cloudevents+json", []byte(`{"specversion":"1.0"}`), nil)
	api.call(http.MethodPost, "/v1/events", tokens[referrer], "text/plain", []byte(`x`), nil)

	// An undecodable command, published as a NATS client would: rejected
	// on out.<cc>.<org>.rejected.
	inbound, err := events.InboundSubject(receiver)
	if err != nil {
		t.Fatal(err)
	}
	if err := amcv.Conn().Publish(inbound, []byte("not a cloudevent")); err != nil {
		t.Fatal(err)
	}
	// A directory change.
	if code, out, errOut := cliRun(t, "org", "set-capacity", "--data", data, "pt.apav.support", "waitlist"); code != exitOK {
		t.Fatalf("set-capacity: %d %s%s", code, out, errOut)
	}

	js, err := jetstream.New(admin, jetstream.WithDefaultTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	delivery, err := js.Stream(ctx, natsjs.StreamDelivery)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejection of the undecodable command", func() bool {
		_, err := delivery.GetLastMsgForSubject(ctx, "out.pt.amcv.rejected")
		return err == nil
	})
	waitFor(t, "the directory notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(captured, func(m capturedMsg) bool { return strings.HasPrefix(m.subject, "directory.capacity.") })
	})

	for _, stream := range []string{natsjs.StreamReferrals, natsjs.StreamDelivery, natsjs.StreamDLQ} {
		captured = append(captured, readStream(ctx, t, js, stream)...)
	}
	mu.Lock()
	msgs := slices.Clone(captured)
	mu.Unlock()

	doc := loadAsyncAPI(t)
	// The consumer and inbox prefix the document names are the ones
	// organisations get.
	recv := doc.deref(doc.root["operations"].(map[string]any)["receiveDelivery"]).(map[string]any)
	for _, org := range []string{referrer, receiver} {
		cc, slug, _ := strings.Cut(org, ".")
		fill := strings.NewReplacer("{cc}", cc, "{org}", slug)
		if got := fill.Replace(recv["x-invictus-consumer"].(string)); got != natsjs.OrgConsumerName(org) {
			t.Errorf("asyncapi consumer of %s: %s, want %s", org, got, natsjs.OrgConsumerName(org))
		}
		if got := fill.Replace(recv["x-invictus-inbox-prefix"].(string)); got != natsjs.OrgInboxPrefix(org) {
			t.Errorf("asyncapi inbox prefix of %s: %s, want %s", org, got, natsjs.OrgInboxPrefix(org))
		}
	}
	var nMsgs, nHeaders, nPayloads, nValidated, mismatches int
	for _, m := range msgs {
		nMsgs++
		h, p, v, bad := doc.check(t, m)
		nHeaders += h
		nPayloads += p
		nValidated += v
		mismatches += bad
	}
	nBodies, bodyMismatches := api.checkAll(ctx)
	t.Logf("contract: %d NATS messages (%d headers, %d payloads, %d events through sdk-go Validate), %d HTTP bodies; %d + %d mismatches",
		nMsgs, nHeaders, nPayloads, nValidated, nBodies, mismatches, bodyMismatches)
	for _, want := range []string{"in.", "referral.", "out.", "directory.", "dlq."} {
		if !slices.ContainsFunc(msgs, func(m capturedMsg) bool { return strings.HasPrefix(m.subject, want) }) {
			t.Errorf("no message captured on %s*", want)
		}
	}
	if nMsgs < 20 || nBodies < 12 {
		t.Errorf("captured only %d messages and %d bodies", nMsgs, nBodies)
	}
}

// readStream returns every message of stream.
func readStream(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) []capturedMsg {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []capturedMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		h := m.Header
		for _, k := range []string{"Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Time-Stamp"} {
			h.Del(k) // added by the get API, not stored with the message
		}
		out = append(out, capturedMsg{from: stream, subject: m.Subject, header: h, data: m.Data})
	}
	return out
}

// asyncDoc is the parsed AsyncAPI document with what the check needs.
type asyncDoc struct {
	root     map[string]any
	channels []asyncChannel
	schemas  *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

type asyncChannel struct {
	name     string
	address  *regexp.Regexp
	params   []string
	messages map[string]map[string]any // by CloudEvents type (message name)
	headers  []string                  // x-invictus-headers: the headers this channel adds
	msgID    string                    // x-invictus-nats-msg-id: the Nats-Msg-Id template
	reminder string                    // x-invictus-nats-msg-id-reminder: the same for reminders
}

func loadAsyncAPI(t *testing.T) *asyncDoc {
	t.Helper()
	var root map[string]any
	if err := yaml.Unmarshal(schemas.AsyncAPI(), &root); err != nil {
		t.Fatal(err)
	}
	d := &asyncDoc{root: root, schemas: jsonschema.NewCompiler(), compiled: map[string]*jsonschema.Schema{}}
	d.schemas.DefaultDraft(jsonschema.Draft2020)
	for _, name := range append([]string{schemas.DefsFile}, func() []string {
		var out []string
		for _, s := range schemas.PayloadTypes() {
			out = append(out, schemas.FileName(s))
		}
		return out
	}()...) {
		b, _ := fsRead(name)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.schemas.AddResource(schemas.URI(strings.TrimSuffix(name, ".json")), v); err != nil {
			t.Fatal(err)
		}
	}
	param := regexp.MustCompile(`\{([a-zA-Z]+)\}`)
	channels := root["channels"].(map[string]any)
	for _, name := range sortedMapKeys(channels) {
		ch := channels[name].(map[string]any)
		addr := ch["address"].(string)
		var params []string
		re, last := "^", 0
		for _, loc := range param.FindAllStringSubmatchIndex(addr, -1) {
			re += regexp.QuoteMeta(addr[last:loc[0]]) + `([^.]+)`
			params = append(params, addr[loc[2]:loc[3]])
			last = loc[1]
		}
		re += regexp.QuoteMeta(addr[last:]) + "$"
		c := asyncChannel{name: name, params: params, messages: map[string]map[string]any{}}
		c.address = regexp.MustCompile(re)
		for _, m := range ch["messages"].(map[string]any) {
			msg := d.deref(m).(map[string]any)
			c.messages[msg["name"].(string)] = msg
		}
		if hs, ok := ch["x-invictus-headers"].([]any); ok {
			for _, h := range hs {
				c.headers = append(c.headers, h.(string))
			}
		}
		c.msgID, _ = ch["x-invictus-nats-msg-id"].(string)
		c.reminder, _ = ch["x-invictus-nats-msg-id-reminder"].(string)
		d.channels = append(d.channels, c)
	}
	return d
}

func fsRead(name string) ([]byte, error) { return fs.ReadFile(schemas.FS(), name) }

// deref follows a local $ref of the document.
func (d *asyncDoc) deref(v any) any {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return v
		}
		cur := any(d.root)
		for _, tok := range strings.Split(ref[2:], "/") {
			cur = cur.(map[string]any)[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
		}
		v = cur
	}
	return v
}

// headerSchema returns the headers schema of msg: its traits' headers and
// its own, merged.
func (d *asyncDoc) headerSchema(msg map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	open := true
	merge := func(h any) {
		hm, ok := d.deref(h).(map[string]any)
		if !ok {
			return
		}
		if ap, ok := hm["additionalProperties"].(bool); ok {
			open = ap
		}
		for k, v := range d.deref(hm["properties"]).(map[string]any) {
			props[k] = v
		}
		if r, ok := hm["required"].([]any); ok {
			for _, x := range r {
				required = append(required, x.(string))
			}
		}
	}
	if traits, ok := msg["traits"].([]any); ok {
		for _, tr := range traits {
			merge(d.deref(tr).(map[string]any)["headers"])
		}
	}
	merge(msg["headers"])
	return map[string]any{"props": props, "required": required, "open": open}
}

// check checks one captured message; it returns the headers, payloads and
// events it checked and the number of mismatches (each reported).
func (d *asyncDoc) check(t *testing.T, m capturedMsg) (nHeaders, nPayloads, nValidated, bad int) {
	t.Helper()
	fail := func(format string, args ...any) {
		bad++
		t.Errorf("%s %s: %s", m.from, m.subject, fmt.Sprintf(format, args...))
	}
	typ := m.header.Get("ce-type")
	if m.from == "core" && typ == "" {
		return // the test's own undecodable command, not something the node sent
	}
	var ch *asyncChannel
	var msg map[string]any
	var params map[string]string
	for i := range d.channels {
		c := &d.channels[i]
		sm := c.address.FindStringSubmatch(m.subject)
		if sm == nil {
			continue
		}
		want := typ
		if m.from == natsjs.StreamDLQ {
			want = "dlq.message" // the original message, whatever it was
		}
		mm, ok := c.messages[want]
		if !ok {
			continue
		}
		ch, msg, params = c, mm, map[string]string{}
		for j, p := range c.params {
			params[p] = sm[j+1]
		}
		break
	}
	if ch == nil {
		fail("no channel of asyncapi.yaml has this address with a message of type %q", typ)
		return
	}
	for name, val := range params {
		pd := d.deref(d.root["channels"].(map[string]any)[ch.name].(map[string]any)["parameters"].(map[string]any)[name]).(map[string]any)
		if enum, ok := pd["enum"].([]any); ok && !slices.Contains(enum, any(val)) {
			fail("parameter %s = %q is not in its enum", name, val)
		}
	}
	hs := d.headerSchema(msg)
	props := hs["props"].(map[string]any)
	for _, r := range hs["required"].([]string) {
		if m.header.Get(r) == "" {
			fail("required header %s missing", r)
		}
	}
	for name, vals := range m.header {
		nHeaders++
		spec, ok := props[name]
		if !ok {
			if !hs["open"].(bool) {
				fail("header %s is not declared by the document", name)
			}
			continue
		}
		channelOnly, _ := d.deref(spec).(map[string]any)["x-invictus-channels"].([]any)
		if channelOnly != nil && !slices.Contains(channelOnly, any(ch.name)) {
			fail("header %s is declared only for channels %v, not %s", name, channelOnly, ch.name)
		}
		if err := d.validate("header "+name, spec, vals[0]); err != nil {
			fail("header %s = %q: %v", name, vals[0], err)
		}
	}
	if ch.msgID != "" {
		want := ch.msgID
		if m.header.Get("Invictus-Reminder") != "" {
			want = ch.reminder
		}
		want = strings.ReplaceAll(want, "{ce-id}", m.header.Get("ce-id"))
		want = strings.ReplaceAll(want, "{ce-source}", m.header.Get("ce-source"))
		for k, v := range params {
			want = strings.ReplaceAll(want, "{"+k+"}", v)
		}
		if got := m.header.Get(jetstream.MsgIDHeader); got != want && !(strings.Contains(want, "{") && got != "") {
			fail("Nats-Msg-Id %q, want %q (%s)", got, want, ch.msgID)
		}
	}
	if typ == "" || m.from == natsjs.StreamDLQ {
		return
	}
	// The payload against its schema, and the event through sdk-go.
	payload := d.deref(msg["payload"]).(map[string]any)
	if s, ok := payload["schema"].(map[string]any); ok {
		ref, _ := s["$ref"].(string)
		short := strings.TrimSuffix(strings.TrimPrefix(ref, "./"), ".json")
		sch, err := d.compile(schemas.URI(short))
		if err != nil {
			fail("payload schema %s: %v", ref, err)
		} else {
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.data))
			if err != nil || sch.Validate(inst) != nil {
				fail("payload does not match %s: %v %v", ref, err, sch.Validate(inst))
			}
			nPayloads++
		}
	}
	env, err := events.Decode(events.Message{Subject: m.subject, Header: m.header, Data: m.data})
	if err != nil {
		fail("events.Decode: %v", err)
		return
	}
	if err := env.Event.Validate(); err != nil {
		fail("sdk-go event.Validate: %v", err)
		return
	}
	var again cloudevent.Event
	if b, err := json.Marshal(env.Event); err != nil || json.Unmarshal(b, &again) != nil {
		fail("sdk-go JSON round trip: %v", err)
		return
	}
	nValidated++
	return
}

func (d *asyncDoc) compile(url string) (*jsonschema.Schema, error) {
	if s, ok := d.compiled[url]; ok {
		return s, nil
	}
	s, err := d.schemas.Compile(url)
	if err == nil {
		d.compiled[url] = s
	}
	return s, err
}

// validate checks a header value against its schema (from the document).
func (d *asyncDoc) validate(what string, spec any, value string) error {
	key := "urn:invictus:test:asyncapi-header:" + strings.ToLower(strings.ReplaceAll(what, " ", "-"))
	if _, ok := d.compiled[key]; !ok {
		b, err := json.Marshal(d.deref(spec))
		if err != nil {
			return err
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if err := d.schemas.AddResource(key, v); err != nil {
			return err
		}
	}
	s, err := d.compile(key)
	if err != nil {
		return err
	}
	return s.Validate(value)
}

func sortedMapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// apiRecorder makes HTTP calls and keeps every answer for the check
// against the OpenAPI document.
type apiRecorder struct {
	t       *testing.T
	base    string
	answers []apiAnswer
	// oldDataSchema makes command send dataschema as a path, the form
	// before the URN.
	oldDataSchema bool
}

type apiAnswer struct {
	method, path, contentType string
	status                    int
	body                      []byte
}

func (a *apiRecorder) call(method, path, token, contentType string, body []byte, v any) int {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.answers = append(a.answers, apiAnswer{method: method, path: path, contentType: resp.Header.Get("Content-Type"), status: resp.StatusCode, body: b})
	if v != nil && len(b) > 0 {
		if err := json.Unmarshal(b, v); err != nil {
			a.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// command posts a command of org as a structured CloudEvent, waiting for
// the routing service's decision, and checks the status.
func (a *apiRecorder) command(token, org, referralID string, p events.Payload, want int) {
	a.t.Helper()
	ev, err := events.New(events.SourceOf(org), referralID, p)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.oldDataSchema {
		ev.SetDataSchema(events.SchemaPath(p.EventType()))
	}
	body, err := json.Marshal(ev)
	if err != nil {
		a.t.Fatal(err)
	}
	var res httpapi.CommandResult
	if code := a.call(http.MethodPost, "/v1/events?wait=5s", token, "application/cloudevents+json", body, &res); code != want {
		a.t.Fatalf("POST %s as %s: %d %+v, want %d", p.EventType(), org, code, res, want)
	}
}

// checkAll checks every recorded JSON answer against the response schema
// of its operation in the OpenAPI document the node serves.
func (a *apiRecorder) checkAll(ctx context.Context) (n, bad int) {
	t := a.t
	var doc map[string]any
	if code := a.call(http.MethodGet, "/v1/openapi.json", "", "", nil, &doc); code != http.StatusOK {
		t.Fatalf("openapi.json: %d", code)
	}
	raw := a.answers[len(a.answers)-1].body
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const docURL = "urn:invictus:test:openapi"
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(docURL, inst); err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(map[string]any)
	deref := func(v any) (any, string) {
		ptr := ""
		for range 10 {
			m, ok := v.(map[string]any)
			if !ok {
				return v, ptr
			}
			ref, ok := m["$ref"].(string)
			if !ok {
				return v, ptr
			}
			ptr = ref[1:]
			cur := any(doc)
			for _, tok := range strings.Split(ref[2:], "/") {
				cur = cur.(map[string]any)[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
			}
			v = cur
		}
		return v, ptr
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	for _, ans := range a.answers[:len(a.answers)-1] {
		path, _, _ := strings.Cut(ans.path, "?")
		fail := func(format string, args ...any) {
			bad++
			t.Errorf("%s %s (%d): %s", ans.method, ans.path, ans.status, fmt.Sprintf(format, args...))
		}
		tmpl := ""
		for p := range paths {
			re := "^" + regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
			if regexp.MustCompile(re).MatchString(path) && (tmpl == "" || !strings.Contains(p, "{")) {
				tmpl = p
			}
		}
		if tmpl == "" {
			fail("no path of the document")
			continue
		}
		op, ok := paths[tmpl].(map[string]any)[strings.ToLower(ans.method)].(map[string]any)
		if !ok {
			fail("no %s operation on %s", ans.method, tmpl)
			continue
		}
		responses := op["responses"].(map[string]any)
		status := strconv.Itoa(ans.status)
		ptr := "/paths/" + esc(tmpl) + "/" + strings.ToLower(ans.method) + "/responses/" + status
		resp, ok := responses[status]
		if !ok {
			if resp, ok = responses[status[:1]+"XX"]; ok {
				ptr = ptr[:len(ptr)-3] + status[:1] + "XX"
			} else if resp, ok = responses["default"]; ok {
				ptr = ptr[:len(ptr)-3] + "default"
			} else {
				fail("status %d is not documented", ans.status)
				continue
			}
		}
		r, rptr := deref(resp)
		if rptr != "" {
			ptr = rptr
		}
		content, _ := r.(map[string]any)["content"].(map[string]any)
		mt, _, _ := strings.Cut(ans.contentType, ";")
		media, ok := content[mt].(map[string]any)
		if !ok {
			fail("content type %q is not documented (have %v)", ans.contentType, sortedMapKeys(content))
			continue
		}
		if _, ok := media["schema"]; !ok {
			continue
		}
		sch, err := c.Compile(docURL + "#" + ptr + "/content/" + esc(mt) + "/schema")
		if err != nil {
			fail("compile its schema: %v", err)
			continue
		}
		body, err := jsonschema.UnmarshalJSON(bytes.NewReader(ans.body))
		if err != nil {
			fail("body is not JSON: %v", err)
			continue
		}
		n++
		if err := sch.Validate(body); err != nil {
			fail("body %s does not match its schema: %v", clipBody(ans.body), err)
		}
	}
	return n, bad
}

func clipBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
