package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServePprof: with --pprof-listen the node serves Go's profiles on
// loopback to the token of DATA/pprof.token only.
func TestServePprof(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := serveInProcess(t, fakeEnv(nil), "--data", data, "--pprof-listen", "127.0.0.1:0")
	if p.PPROF == "" {
		t.Fatal("no pprof address in the addr file")
	}
	path := filepath.Join(data, pprofTokenFile)
	fileMode(t, path, 0o600)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	get := func(token string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+p.PPROF+"/debug/pprof/heap?debug=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, _ := get(strings.Repeat("0", 64)); code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d, want 401", code)
	}
	if code, body := get(strings.TrimSpace(string(raw))); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("with the token: %d %.200s, want 200 and the heap profile", code, body)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d\n%s", code, p.errOut)
	}
}

func TestPprofLoopbackOnly(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "localhost:0": true,
		"0.0.0.0:6060": false, ":6060": false, "192.0.2.1:6060": false, "example.org:6060": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}
