package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
)

// demoDir is the demo directory, built once: the same data that
// `invictus serve --demo` loads.
var demoDir = sync.OnceValue(func() *directory.Directory {
	d, err := directory.Demo(1)
	if err != nil {
		panic(err)
	}
	return d
})

// testNow is a Wednesday at 10:00 in Lisbon: offices are open.
var testNow = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

type bundle struct {
	srv  *Server
	view *directory.View
	dir  *directory.Directory
}

// setup returns a server over the demo directory.
func setup(t testing.TB, cfg Config) *bundle {
	t.Helper()
	v := directory.NewView()
	d := demoDir()
	v.Load(d, 1)
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	s, err := New(Deps{Directory: v}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{srv: s, view: v, dir: d}
}

// response is the status and headers of a response.
type response struct {
	StatusCode int
	Header     http.Header
}

// do serves one request and returns the response and its body.
func (b *bundle) do(t testing.TB, method, target string, form url.Values, hdr map[string]string) (response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	b.srv.ServeHTTP(rec, req)
	return response{StatusCode: rec.Code, Header: rec.Header()}, rec.Body.String()
}

// doFrom serves one request from the client address addr (host:port).
func (b *bundle) doFrom(t testing.TB, method, target string, form url.Values, addr string) (response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = addr
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	b.srv.ServeHTTP(rec, req)
	return response{StatusCode: rec.Code, Header: rec.Header()}, rec.Body.String()
}
