package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/directory"
)

// TestDirectoryOpenData: the directory needs no token, is cacheable by
// revision, refuses unknown parameters by name, and downloads whole.
func TestDirectoryOpenData(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	for _, p := range []string{"/v1/services", "/v1/services/pt.a1.support", "/v1/organizations", "/v1/organizations/pt.a1", "/v1/directory/hsds.json"} {
		r := b.get(p, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s without a token: status %d %s", p, r.status, r.body)
		}
		etag := r.header.Get("ETag")
		if etag != `"dir-1"` || !strings.HasPrefix(r.header.Get("Cache-Control"), "public, max-age=") {
			t.Errorf("%s: ETag %q, Cache-Control %q", p, etag, r.header.Get("Cache-Control"))
		}
		r = b.do(http.MethodGet, p, "", nil, http.Header{"If-None-Match": {`"dir-0", ` + etag}})
		if r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("%s with If-None-Match %s: status %d, %d bytes; want 304 and nothing", p, etag, r.status, len(r.body))
		}
		r = b.do(http.MethodGet, p, "", nil, http.Header{"If-None-Match": {`"dir-0"`}})
		if r.status != http.StatusOK {
			t.Errorf("%s with a stale ETag: status %d", p, r.status)
		}
		// An unknown parameter is an error that names it.
		r = b.get(p+"?need=safety.shelter&zz=1", "")
		if r.status != http.StatusBadRequest {
			t.Errorf("%s?need=: status %d; want 400", p, r.status)
			continue
		}
		errs := r.errors(t)
		if len(errs) != 2 || errs[0].Parameter != "need" || errs[1].Parameter != "zz" || errs[0].Code != httpapi.CodeUnknownParameter {
			t.Errorf("%s?need=&zz=: errors %+v", p, errs)
		}
	}
	// A change of the directory changes the ETag: the old one no longer
	// matches.
	sv := *b.view.Service("pt.a1.support")
	sv.Description = "changed"
	b.view.Apply(directory.Change{Key: directory.ServiceKey(sv.ID), Revision: 2, Service: &sv})
	r := b.do(http.MethodGet, "/v1/services/pt.a1.support", "", nil, http.Header{"If-None-Match": {`"dir-1"`}})
	if r.status != http.StatusOK || r.header.Get("ETag") != `"dir-2"` || !strings.Contains(string(r.body), "changed") {
		t.Errorf("after a change: status %d, ETag %q", r.status, r.header.Get("ETag"))
	}
	// The bulk download is the whole directory in HSDS 3.0, which imports
	// back to the same directory.
	r = b.get("/v1/directory/hsds.json", "")
	if !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") {
		t.Errorf("Content-Disposition %q", r.header.Get("Content-Disposition"))
	}
	got, err := directory.ImportHSDS(r.body)
	if err != nil {
		t.Fatalf("import the download: %v", err)
	}
	want := b.view.Snapshot().Directory()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if len(got.Services) != len(want.Services) || len(got.Organisations) != len(want.Organisations) {
		t.Errorf("download has %d organisations and %d services; the directory %d and %d",
			len(got.Organisations), len(got.Services), len(want.Organisations), len(want.Services))
	}
	if !strings.Contains(string(gb), "changed") || !strings.Contains(string(wb), "changed") {
		t.Error("the download is not of the current directory")
	}
}
