package httpapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/testenv"
)

// serviceIDs returns the invictus ids of the HSDS services of a page.
func serviceIDs(t *testing.T, page httpapi.HSDSPage) []string {
	t.Helper()
	var out []string
	for _, raw := range page.Contents {
		var s struct {
			ID         string `json:"id"`
			Attributes []struct {
				Value string `json:"value"`
				Term  struct {
					Code string `json:"code"`
				} `json:"taxonomy_term"`
			} `json:"attributes"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		for _, a := range s.Attributes {
			if a.Term.Code == "service_id" {
				out = append(out, a.Value)
				if directory.HSDSID("service", a.Value) != s.ID {
					t.Errorf("service %s has HSDS id %s", a.Value, s.ID)
				}
			}
		}
	}
	return out
}

func TestDirectoryServices(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	tok := b.token("", httpapi.RoleDirectoryAdmin)
	list := func(q string) (response, httpapi.HSDSPage) {
		r := b.get("/v1/services?"+q, tok)
		var p httpapi.HSDSPage
		if r.status == http.StatusOK {
			r.decode(t, &p)
		}
		return r, p
	}
	all := []string{"pt.a1.support", "pt.a2.support", "pt.a3.support", "pt.porto.support", "pt.ref.support"}
	tests := []struct {
		query string
		want  []string
	}{
		{"", all},
		{"taxonomy_term=support.emotional", []string{"pt.a1.support", "pt.a2.support", "pt.a3.support"}},
		{"taxonomy_term=need:support.emotional,crime:domestic_violence", []string{"pt.a1.support", "pt.a2.support", "pt.a3.support"}},
		{"taxonomy_term=support.emotional&taxonomy_term=info.case", nil},
		{"taxonomy_term=flag:child", nil},
		{"language=fr", []string{"pt.a3.support"}},
		{"language=en&taxonomy_term=info.rights", []string{"pt.a1.support", "pt.a2.support"}},
		{"country=pt", all},
		{"country=fr", nil},
		{"organization_id=pt.a2", []string{"pt.a2.support"}},
		// Porto's office serves PT11 only; the remote services serve all of Portugal.
		{"region=PT11A", all},
		{"region=PT17", []string{"pt.a1.support", "pt.a2.support", "pt.a3.support", "pt.ref.support"}},
		{"region=PT17&taxonomy_term=safety.risk_advice", nil},
		// Proximity: a location within km, nearest first.
		{"proximity=38.72,-9.14,50", []string{"pt.a1.support", "pt.a2.support", "pt.a3.support"}},
		{"proximity=41.15,-8.61,20", []string{"pt.porto.support"}},
		{"proximity=41.15,-8.61,400", []string{"pt.porto.support", "pt.a1.support", "pt.a2.support", "pt.a3.support"}},
	}
	for _, tc := range tests {
		r, p := list(tc.query)
		if r.status != http.StatusOK {
			t.Errorf("?%s: status %d %s", tc.query, r.status, r.body)
			continue
		}
		if got := serviceIDs(t, p); !slices.Equal(got, tc.want) || p.TotalItems != len(tc.want) {
			t.Errorf("?%s: %v (total %d), want %v", tc.query, got, p.TotalItems, tc.want)
		}
	}

	// Pages.
	_, p := list("per_page=2&page=3")
	if got := serviceIDs(t, p); !slices.Equal(got, []string{"pt.ref.support"}) || p.TotalPages != 3 || !p.LastPage || p.FirstPage || p.Size != 1 {
		t.Fatalf("page 3 of 2: %+v %v", p, got)
	}
	_, p = list("per_page=2&page=9")
	if !p.Empty || len(p.Contents) != 0 {
		t.Fatalf("page 9: %+v", p)
	}

	for _, q := range []string{"taxonomy_term=nope", "country=xx", "region=XX1", "country=pt&region=FR10", "language=zz", "proximity=1,2", "proximity=91,0,5",
		"proximity=0,0,501", "page=0", "per_page=201", "organization_id=nope"} {
		r, _ := list(q)
		if r.status != http.StatusBadRequest || r.errors(t)[0].Parameter == "" {
			t.Errorf("?%s: status %d %s; want 400 naming the parameter", q, r.status, r.body)
		}
	}

	// One service, by id or by HSDS id.
	for _, id := range []string{"pt.a1.support", directory.HSDSID("service", "pt.a1.support")} {
		r := b.get("/v1/services/"+id, tok)
		var s struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		r.decode(t, &s)
		if r.status != http.StatusOK || s.ID != directory.HSDSID("service", "pt.a1.support") || s.Name != "Support of pt.a1" {
			t.Errorf("service %s: status %d %s", id, r.status, r.body)
		}
	}
	if r := b.get("/v1/services/pt.nope.support", tok); r.status != http.StatusNotFound {
		t.Errorf("unknown service: status %d", r.status)
	}
}

func TestDirectoryOrganizations(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	tok := b.token("", httpapi.RoleCoordinator)
	r := b.get("/v1/organizations?per_page=2", tok)
	var p httpapi.HSDSPage
	r.decode(t, &p)
	if r.status != http.StatusOK || p.TotalItems != 5 || p.TotalPages != 3 || len(p.Contents) != 2 {
		t.Fatalf("organizations: status %d %s", r.status, r.body)
	}
	var first struct {
		ID       string            `json:"id"`
		Name     string            `json:"name"`
		Services []json.RawMessage `json:"services"`
	}
	if err := json.Unmarshal(p.Contents[0], &first); err != nil || first.Name != "Test pt.a1" || first.ID != directory.HSDSID("organization", "pt.a1") || len(first.Services) != 0 {
		t.Fatalf("first organization: %s", p.Contents[0])
	}
	b.get("/v1/organizations?country=fr", tok).decode(t, &p)
	if p.TotalItems != 0 {
		t.Fatalf("organizations in fr: %d", p.TotalItems)
	}
	if r := b.get("/v1/organizations?country=zz", tok); r.status != http.StatusBadRequest {
		t.Fatalf("country=zz: status %d", r.status)
	}

	r = b.get("/v1/organizations/pt.porto", tok)
	var one struct {
		Name     string            `json:"name"`
		Services []json.RawMessage `json:"services"`
	}
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Name != "Test pt.porto" || len(one.Services) != 1 {
		t.Fatalf("organization: status %d %s", r.status, r.body)
	}
	if r := b.get("/v1/organizations/pt.nope", tok); r.status != http.StatusNotFound {
		t.Fatalf("unknown organization: status %d", r.status)
	}
}

func TestMatchPreview(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	profile := requested() // consent is accepted and ignored
	r := b.postJSON("/v1/match", b.orgToken(orgRef), profile)
	var plan httpapi.MatchResponse
	r.decode(t, &plan)
	if r.status != http.StatusOK || len(plan.Groups) != 1 || plan.DirectoryRevision != 1 || plan.Urgency != events.UrgencyUrgent {
		t.Fatalf("match: status %d %s", r.status, r.body)
	}
	g := plan.Groups[0]
	if !slices.Equal(g.Needs, []string{events.NeedSupportEmotional}) || len(g.Candidates) != 3 || g.Candidates[0].Service != "pt.a1.support" ||
		len(g.Candidates[0].Reasons) == 0 || len(g.Candidates[0].Components) == 0 || g.Candidates[0].Score <= 0 {
		t.Fatalf("group: %+v", g)
	}

	// A need nobody offers is reported unmatched.
	profile.Needs = []string{events.NeedSupportEmotional, events.NeedSafetyShelter}
	b.postJSON("/v1/match", b.token("", httpapi.RoleCoordinator), profile).decode(t, &plan)
	if len(plan.Unmatched) != 1 || plan.Unmatched[0].Need != events.NeedSafetyShelter {
		t.Fatalf("unmatched: %+v", plan.Unmatched)
	}

	// An invalid profile: 422 with pointers into the body.
	profile.Needs = []string{"support.emotional", "nope"}
	profile.Channels = nil
	r = b.postJSON("/v1/match", b.orgToken(orgRef), profile)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid profile: status %d %s", r.status, r.body)
	}
	ps := r.errors(t)
	for _, want := range []string{"/needs/1", "/channels"} {
		if !slices.ContainsFunc(ps, func(p httpapi.Problem) bool { return p.Pointer == want }) {
			t.Errorf("no problem at %s: %+v", want, ps)
		}
	}
	if r := b.postJSON("/v1/match", b.token("", httpapi.RoleDirectoryAdmin), requested()); r.status != http.StatusForbidden {
		t.Fatalf("directory admin: status %d", r.status)
	}
}

// POST /v1/match rejects the profiles invictus match and refer reject,
// with the same pointers (events/testdata/invalid_profiles.json).
func TestMatchRejectsTheSharedInvalidProfiles(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	for _, c := range testenv.InvalidProfiles(t) {
		r := b.postJSON("/v1/match", b.orgToken(orgRef), c.Profile)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d %s", c.Name, r.status, r.body)
			continue
		}
		if ps := r.errors(t); !slices.ContainsFunc(ps, func(p httpapi.Problem) bool { return p.Pointer == c.Pointer }) {
			t.Errorf("%s: problems %+v, want one at %s", c.Name, ps, c.Pointer)
		}
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	good := b.orgToken(orgA1)
	tests := []struct {
		name, header string
	}{
		{"none", ""},
		{"wrong scheme", "Basic " + good},
		{"malformed", "Bearer inv_short"},
		{"unknown", "Bearer inv_" + strings.Repeat("A", 43)},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Authorization", tc.header)
		}
		r := b.do(http.MethodGet, "/v1/inbox", "", nil, h)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" || r.errors(t)[0].Code != httpapi.CodeUnauthorized {
			t.Errorf("%s: status %d %s; want 401 with WWW-Authenticate", tc.name, r.status, r.body)
		}
	}
	if r := b.get("/v1/inbox", good); r.status != http.StatusOK {
		t.Fatalf("good token: status %d %s", r.status, r.body)
	}

	// Revoked: refused from then on.
	_, tok, err := b.api.Tokens().Create(t.Context(), orgA2, httpapi.RoleOrganisation, "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := b.api.Tokens().List(t.Context())
	if err != nil || !slices.ContainsFunc(list, func(x httpapi.Token) bool { return x.ID == tok.ID && x.Org == orgA2 }) {
		t.Fatalf("List: %v, %+v", err, list)
	}
	for _, x := range list {
		if len(x.Hash) != 64 || strings.HasPrefix(x.Hash, "inv_") {
			t.Fatalf("a stored token is not a SHA-256: %+v", x)
		}
	}
	secret, tok, err := b.api.Tokens().Create(t.Context(), orgA2, httpapi.RoleOrganisation, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.get("/v1/inbox", secret); r.status != http.StatusOK {
		t.Fatalf("before revocation: status %d", r.status)
	}
	if err := b.api.Tokens().Revoke(t.Context(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if r := b.get("/v1/inbox", secret); r.status != http.StatusUnauthorized {
		t.Fatalf("after revocation: status %d", r.status)
	}
	if err := b.api.Tokens().Revoke(t.Context(), tok.ID); err == nil {
		t.Fatal("revoking twice: no error")
	}
	if _, _, err := b.api.Tokens().Create(t.Context(), "", httpapi.RoleOrganisation, ""); err == nil {
		t.Fatal("an organisation token without an organisation")
	}
	if _, _, err := b.api.Tokens().Create(t.Context(), orgA1, "admin", ""); err == nil {
		t.Fatal("a token with an unknown role")
	}
}

// TestRoles checks every endpoint with every role: what each may do is
// DESIGN.md section 8's matrix (see the package documentation).
func TestRoles(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := events.NewReferralID()
	ev, _ := json.Marshal(newEvent(t, orgA1, id, &events.Accepted{Placement: "p1"}))
	profile, _ := json.Marshal(requested())
	type call struct {
		method, path string
		body         []byte
		ct           string
	}
	calls := []call{
		{http.MethodPost, "/v1/events", ev, "application/cloudevents+json"},
		{http.MethodGet, "/v1/referrals/" + id, nil, ""},
		{http.MethodGet, "/v1/inbox", nil, ""},
		{http.MethodGet, "/v1/webhooks", nil, ""},
		{http.MethodPost, "/v1/webhooks", []byte(`{"url":"https://example.org/"}`), "application/json"},
		{http.MethodGet, "/v1/webhooks/wh_aaaaaaaaaaaaaaaaaaaaaaaa", nil, ""},
		{http.MethodDelete, "/v1/webhooks/wh_aaaaaaaaaaaaaaaaaaaaaaaa", nil, ""},
		{http.MethodGet, "/v1/webhooks/wh_aaaaaaaaaaaaaaaaaaaaaaaa/deliveries", nil, ""},
		{http.MethodPost, "/v1/match", profile, "application/json"},
	}
	// Allowed calls answer anything but 401/403 (404 for the made-up
	// referral and webhook is fine). The directory is open data:
	// TestDirectoryOpenData.
	allowed := map[httpapi.Role][]int{
		httpapi.RoleOrganisation:   {0, 1, 2, 3, 4, 5, 6, 7, 8},
		httpapi.RoleCoordinator:    {8},
		httpapi.RoleDirectoryAdmin: {},
	}
	for role, ok := range allowed {
		org := ""
		if role == httpapi.RoleOrganisation {
			org = orgA1
		}
		tok := b.token(org, role)
		for i, c := range calls {
			r := b.do(c.method, c.path, tok, c.body, http.Header{"Content-Type": {c.ct}})
			switch {
			case slices.Contains(ok, i) && (r.status == 401 || r.status == 403 || r.status >= 500):
				t.Errorf("%s %s %s: status %d %s; want allowed", role, c.method, c.path, r.status, r.body)
			case !slices.Contains(ok, i) && r.status != http.StatusForbidden:
				t.Errorf("%s %s %s: status %d; want 403", role, c.method, c.path, r.status)
			}
			// Without a token, every one of them is 401.
			if r := b.do(c.method, c.path, "", c.body, http.Header{"Content-Type": {c.ct}}); r.status != http.StatusUnauthorized {
				t.Errorf("no token %s %s: status %d; want 401", c.method, c.path, r.status)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	frozen := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	b := setup(t, options{cfg: httpapi.Config{RatePerSecond: 1, RateBurst: 3, Now: func() time.Time { return frozen }}})
	tok, other := b.orgToken(orgA1), b.orgToken(orgA2)
	for i := range 3 {
		if r := b.get("/v1/inbox", tok); r.status != http.StatusOK {
			t.Fatalf("request %d: status %d", i, r.status)
		}
	}
	r := b.get("/v1/inbox", tok)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || r.errors(t)[0].Code != httpapi.CodeRateLimited {
		t.Fatalf("fourth request: status %d, Retry-After %q %s; want 429", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Each token has its own bucket; health checks have none.
	if r := b.get("/v1/inbox", other); r.status != http.StatusOK {
		t.Fatalf("another token: status %d", r.status)
	}
	// The open directory has one bucket per client address, whatever
	// token is sent.
	for i := range 3 {
		if r := b.get("/v1/services", ""); r.status != http.StatusOK {
			t.Fatalf("open directory request %d: status %d", i, r.status)
		}
	}
	if r := b.get("/v1/organizations", other); r.status != http.StatusTooManyRequests {
		t.Fatalf("fourth open directory request from one address: status %d; want 429", r.status)
	}
	for range 10 {
		if r := b.get("/healthz", ""); r.status != http.StatusOK {
			t.Fatalf("healthz: status %d", r.status)
		}
	}
}

func TestContractEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})

	// The OpenAPI document as JSON, with its file $refs under /schemas/.
	r := b.get("/v1/openapi.json", "")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r.decode(t, &doc)
	if r.status != http.StatusOK || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: status %d, openapi %q", r.status, doc.OpenAPI)
	}
	// It stands alone: every $ref points inside it, at something there.
	if !strings.Contains(string(r.body), `"$ref":"#/components/schemas/referral.requested.v1"`) {
		t.Error("openapi.json: the payload schemas are not bundled")
	}
	var whole any
	if err := json.Unmarshal(r.body, &whole); err != nil {
		t.Fatal(err)
	}
	nRefs := 0
	walkRefs(whole, func(ref string) {
		nRefs++
		if !strings.HasPrefix(ref, "#/") {
			t.Errorf("openapi.json: $ref %q points outside the document", ref)
			return
		}
		if _, ok := jsonPointer(whole, ref[1:]); !ok {
			t.Errorf("openapi.json: $ref %q resolves to nothing", ref)
		}
	})
	if nRefs < 100 {
		t.Errorf("openapi.json: only %d $refs", nRefs)
	}
	// Every path of the document is served (nothing answers "no such
	// endpoint"), and the document has every endpoint the package lists.
	tok := b.orgToken(orgA1)
	pathParam := regexp.MustCompile(`\{[a-z]+\}`)
	for p, ops := range doc.Paths {
		path := pathParam.ReplaceAllString(p, "x")
		for m := range ops {
			if m == "parameters" {
				continue
			}
			r := b.do(strings.ToUpper(m), path, tok, nil, nil)
			if r.status == http.StatusMethodNotAllowed || (r.status == http.StatusNotFound && strings.Contains(string(r.body), "no such endpoint")) {
				t.Errorf("%s %s (documented): status %d %s", m, p, r.status, r.body)
			}
		}
	}
	for _, want := range []string{"/v1/events", "/v1/referrals/{id}", "/v1/inbox", "/v1/webhooks", "/v1/webhooks/{id}",
		"/v1/webhooks/{id}/deliveries", "/v1/match", "/v1/services", "/v1/services/{id}", "/v1/organizations",
		"/v1/organizations/{id}", "/v1/directory/hsds.json", "/v1/keys/identity", "/v1/openapi.json", "/schemas/{file}", "/healthz", "/readyz", "/metrics"} {
		if _, ok := doc.Paths[want]; !ok {
			t.Errorf("openapi.json lacks %s", want)
		}
	}

	// The payload schemas are served under /schemas/, each with the
	// events' dataschema as its $id.
	r = b.get(events.SchemaPath(events.TypeReferralRequested), "")
	var schema struct {
		ID string `json:"$id"`
	}
	r.decode(t, &schema)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/schema+json" || schema.ID != events.SchemaURI(events.TypeReferralRequested) {
		t.Fatalf("schema: status %d %q %s", r.status, r.header.Get("Content-Type"), schema.ID)
	}
	for path, ct := range map[string]string{
		"/schemas/defs.json": "application/schema+json", "/schemas/taxonomy.json": "application/json",
		"/schemas/openapi.yaml": "application/yaml", "/schemas/asyncapi.yaml": "application/yaml",
	} {
		if r := b.get(path, ""); r.status != http.StatusOK || r.header.Get("Content-Type") != ct {
			t.Errorf("%s: status %d %q", path, r.status, r.header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/schemas/nope.json", "/schemas/../go.mod", "/schemas/", "/nope", "/v1/nope"} {
		if r := b.get(path, ""); r.status != http.StatusNotFound || r.errors(t)[0].Code != httpapi.CodeNotFound {
			t.Errorf("%s: status %d %s; want a JSON 404", path, r.status, r.body)
		}
	}
	if r := b.do(http.MethodPut, "/v1/inbox", tok, nil, nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
		t.Errorf("PUT /v1/inbox: status %d, Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestOperations(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	if r := b.get("/healthz", ""); r.status != http.StatusOK {
		t.Fatalf("healthz: %d", r.status)
	}
	r := b.get("/readyz", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"jetstream":"ok"`) {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	r = b.get("/metrics", "")
	for _, want := range []string{"invictus_dlq_messages 0", "invictus_http_requests_total", "go_goroutines"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// With JetStream gone, not ready.
	tok := b.orgToken(orgA1)
	ctx := t.Context()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r = b.get("/readyz", "")
	if r.status != http.StatusServiceUnavailable || strings.Contains(string(r.body), `"jetstream":"ok"`) {
		t.Fatalf("readyz without NATS: %d %s", r.status, r.body)
	}
	// A port failing is a 503, not a 500, and says nothing of the cause.
	if r := b.get("/v1/inbox", tok); r.status != http.StatusServiceUnavailable {
		// The token store is on NATS too: that is a 503 as well.
		t.Fatalf("inbox without NATS: %d %s", r.status, r.body)
	}
}

func TestLogsHoldNoCaseData(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true})
	id := b.refer()
	b.get("/v1/referrals/"+id, b.orgToken(orgRef))
	b.postJSON("/v1/match", b.orgToken(orgRef), requested())
	b.get("/v1/inbox?after=0", b.orgToken(orgA1))

	logs := b.logs.String()
	allowed := map[string]bool{"time": true, "level": true, "msg": true, "method": true, "route": true, "status": true, "org": true, "duration": true}
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "http" {
			continue
		}
		n++
		for k := range rec {
			if !allowed[k] {
				t.Errorf("request log has %q: %s", k, line)
			}
		}
	}
	if n < 4 {
		t.Fatalf("%d request log lines; want one per request:\n%s", n, logs)
	}
	for _, secret := range []string{id, events.NeedSupportEmotional, "domestic_violence", "staff-1", "inv_"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `"route":"/v1/referrals/{id}"`) || !strings.Contains(logs, `"org":"pt.ref"`) {
		t.Errorf("the logs lack the route pattern or the organisation:\n%s", logs)
	}
}

// walkRefs calls f with every "$ref" string under v.
func walkRefs(v any, f func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				f(s)
				continue
			}
			walkRefs(e, f)
		}
	case []any:
		for _, e := range v {
			walkRefs(e, f)
		}
	}
}

// jsonPointer returns the value at pointer p (RFC 6901) in v.
func jsonPointer(v any, p string) (any, bool) {
	if p == "" {
		return v, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}
