package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
)

// TestReports sends referrals through the real router, lets the read
// model follow REFERRALS, and reads the figures as coordinators.
func TestReports(t *testing.T) {
	t.Parallel()
	b := setup(t, options{router: true, reports: true})
	const n = 6
	for range n {
		b.refer()
	}
	eu := b.token("", httpapi.RoleCoordinator)
	var overview struct {
		Totals map[string]any `json:"totals"`
	}
	b.eventually("6 referrals in the read model", func() bool {
		r := b.get("/v1/reports/overview", eu)
		if r.status != http.StatusOK {
			t.Fatalf("overview: %d %s", r.status, r.body)
		}
		r.decode(t, &overview)
		return overview.Totals["requested"] == float64(n) && overview.Totals["offered"] == float64(n)
	})
	// A national coordinator of Finland sees none of Portugal's referrals;
	// with fewer than 5 the count is hidden, never shown.
	fi := b.token("fi.coordination", httpapi.RoleCoordinator)
	r := b.get("/v1/reports/flows/countries", fi)
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"pt"`) {
		t.Fatalf("fi flows: %d %s", r.status, r.body)
	}
	if r := b.get("/v1/reports/flows/countries?country=pt", fi); r.status != http.StatusForbidden || strings.Contains(string(r.body), "rows") {
		t.Fatalf("fi asking for pt: %d %s", r.status, r.body)
	}
	pt := b.token("pt.coordination", httpapi.RoleCoordinator)
	if r := b.get("/v1/reports/flows/countries?country=pt", pt); r.status != http.StatusOK || !strings.Contains(string(r.body), `"offered":6`) {
		t.Fatalf("pt flows: %d %s", r.status, r.body)
	}
	if strings.Contains(string(b.get("/v1/reports/flows/organisations", eu).body), "-") {
		// referral ids are UUIDs; organisation ids have no dash here
		t.Fatal("a referral id in a report")
	}
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/v1/reports/overview?colour=red&size=2", 400, `"colour"`},
		{"/v1/reports/overview?colour=red&size=2", 400, `"size"`},
		{"/v1/reports/overview?from=2026-02-10&to=2026-02-01", 400, `"to"`},
		{"/v1/reports/overview?from=2999-01-01", 400, `"from"`},
		{"/v1/reports/overview?need=food", 400, `"need"`},
		{"/v1/reports/nothing", 404, "not_found"},
	} {
		r := b.get(tc.path, eu)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %d %s; want %d naming %s", tc.path, r.status, r.body, tc.status, tc.want)
		}
	}
	if r := b.get("/v1/reports/overview", b.orgToken(orgRef)); r.status != http.StatusForbidden {
		t.Errorf("organisation token: %d", r.status)
	}
}
