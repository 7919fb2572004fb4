package web

import (
	"crypto/sha256"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/seal"
)

// solved returns a copy of form with a solved challenge of service's
// self-referral form, as static/pow.js would post it.
func (b *bundle) solved(service string, form url.Values) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	c := b.srv.work.Issue(askWorkForm(service))
	out.Set("pow", c.Token)
	out.Set("pow-solution", SolveWork(c))
	return out
}

// clock is a test clock that can be moved on.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testKey(b byte) []byte {
	k := make([]byte, WorkKeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

// TestWorkVerify: a solved challenge passes once; a missing, forged,
// altered, other form's, wrong, expired or replayed one is refused with
// its code, and a refusal changes nothing (the right solution still
// passes after a wrong one; nothing is remembered).
func TestWorkVerify(t *testing.T) {
	clk := &clock{t: testNow}
	w, err := NewWork(testKey(1), 8, time.Hour, 100, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	c := w.Issue("ask/a")
	if c.Bits != 8 || len(c.Token) != 78 {
		t.Fatalf("challenge %+v", c)
	}
	sol := SolveWork(c)
	if WorkZeros(c.Token, sol) < 8 {
		t.Fatalf("SolveWork gave %s with %d zero bits", sol, WorkZeros(c.Token, sol))
	}
	wrong := "0"
	for n := 0; WorkZeros(c.Token, wrong) >= 8; n++ {
		wrong = strconv.Itoa(n)
	}
	other, _ := NewWork(testKey(2), 8, time.Hour, 100, clk.now)
	oc := other.Issue("ask/a")
	raw := []byte(c.Token)
	altered := string(raw[:3]) + string(rune('A'+(raw[3]-'A'+1)%26)) + string(raw[4:])
	for name, tc := range map[string]struct {
		form, token, solution string
		want                  error
	}{
		"no challenge":         {"ask/a", "", sol, ErrWorkMissing},
		"no solution":          {"ask/a", c.Token, "", ErrWorkMissing},
		"another form":         {"ask/b", c.Token, sol, ErrWorkForged},
		"another node's key":   {"ask/a", oc.Token, SolveWork(oc), ErrWorkForged},
		"altered challenge":    {"ask/a", altered, sol, ErrWorkForged},
		"not base64":           {"ask/a", "!!!", sol, ErrWorkForged},
		"wrong solution":       {"ask/a", c.Token, wrong, ErrWorkWrong},
		"not a number":         {"ask/a", c.Token, "12a", ErrWorkWrong},
		"a very long solution": {"ask/a", c.Token, strings.Repeat("1", 40), ErrWorkWrong},
	} {
		if err := w.Verify(tc.form, tc.token, tc.solution); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if n := w.usedCount(); n != 0 {
		t.Fatalf("refusals remembered %d challenges", n)
	}
	if err := w.Verify("ask/a", c.Token, sol); err != nil {
		t.Fatalf("the solved challenge after refusals: %v", err)
	}
	if err := w.Verify("ask/a", c.Token, sol); !errors.Is(err, ErrWorkReplayed) {
		t.Fatalf("second use: %v", err)
	}
	var we *WorkError
	if err := w.Verify("ask/a", c.Token, sol); !errors.As(err, &we) || we.Code != "pow-replayed" {
		t.Fatalf("the code of a replay: %v", err)
	}

	// Expired: solved in time, sent too late.
	late := w.Issue("ask/a")
	lateSol := SolveWork(late)
	clk.add(time.Hour)
	if err := w.Verify("ask/a", late.Token, lateSol); !errors.Is(err, ErrWorkExpired) {
		t.Fatalf("an hour later: %v", err)
	}
}

// TestWorkMemoryBounded: when the memory of used challenges is full, a
// new solution is refused as busy (never accepted twice, never grown);
// once the remembered ones expire they are forgotten and room is made.
func TestWorkMemoryBounded(t *testing.T) {
	clk := &clock{t: testNow}
	w, err := NewWork(testKey(3), 1, time.Minute, 2, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	var used []Challenge
	for range 2 {
		c := w.Issue("f")
		if err := w.Verify("f", c.Token, SolveWork(c)); err != nil {
			t.Fatal(err)
		}
		used = append(used, c)
	}
	c := w.Issue("f")
	if err := w.Verify("f", c.Token, SolveWork(c)); !errors.Is(err, ErrWorkBusy) {
		t.Fatalf("a third with room for two: %v", err)
	}
	if n := w.usedCount(); n != 2 {
		t.Fatalf("%d remembered, bound 2", n)
	}
	if err := w.Verify("f", used[0].Token, SolveWork(used[0])); !errors.Is(err, ErrWorkReplayed) {
		t.Fatalf("a replay while full: %v", err)
	}
	clk.add(time.Minute)
	c = w.Issue("f")
	if err := w.Verify("f", c.Token, SolveWork(c)); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
	if n := w.usedCount(); n != 1 {
		t.Fatalf("%d remembered after the sweep, want 1", n)
	}
}

// TestWorkConfig: a bad proof-of-work setting is named.
func TestWorkConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"short key":  {Config{WorkKey: []byte("short")}, "Config.WorkKey"},
		"too hard":   {Config{WorkBits: WorkBitsMax + 1}, "Config.WorkBits"},
		"negative":   {Config{WorkBits: -1}, "Config.WorkBits"},
		"short life": {Config{WorkTTL: time.Second}, "Config.WorkTTL"},
		"no memory":  {Config{WorkMemory: -1}, "Config.WorkMemory"},
	} {
		if err := tc.cfg.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want one naming %s", name, err, tc.want)
		}
	}
	if _, err := NewWork(testKey(1), 0, time.Hour, 1, nil); err != nil {
		t.Errorf("NewWork with 0 bits: %v", err)
	}
}

var (
	powAttr  = regexp.MustCompile(`data-pow="([^"]+)" data-pow-bits="(\d+)"`)
	powInput = regexp.MustCompile(`<input type="hidden" name="pow" value="([^"]+)">`)
)

// challengeOf reads the challenge a page's form carries.
func challengeOf(t *testing.T, body string) Challenge {
	t.Helper()
	m := powAttr.FindStringSubmatch(body)
	in := powInput.FindStringSubmatch(body)
	if m == nil || in == nil || in[1] != m[1] {
		t.Fatalf("the form carries no challenge:\n%s", body)
	}
	bits, _ := strconv.Atoi(m[2])
	return Challenge{Token: html.UnescapeString(m[1]), Bits: bits}
}

// TestAskWork: over HTTP, the self-referral page carries a challenge; a
// form sent with its solution is handed over; without one (no
// JavaScript), with one for another service, a wrong one, an expired one
// or a replayed one it is refused with its code (status, Invictus-Error
// header, data-code of the message), counted, and nothing is handed over;
// the page keeps her choices and the envelope sealed earlier, carries a
// new challenge, and offers the service's phone and the helplines.
func TestAskWork(t *testing.T) {
	in := &recordingIntake{}
	clk := &clock{t: testNow}
	reg := prometheus.NewRegistry()
	b, key, svc := keyedSite(t, in, Config{AskBurst: 100, Now: clk.now, Registerer: reg})
	var other string
	for _, s := range b.dir.ServicesOf(svc.Organisation) {
		if s.ID != svc.ID {
			other = s.ID
			break
		}
	}
	if other == "" {
		t.Fatal("the keyed organisation has one service only")
	}
	sealed, err := seal.Seal(key.Recipient, []byte(canary))
	if err != nil {
		t.Fatal(err)
	}
	form := func(c *Challenge, solution string) url.Values {
		f := url.Values{"need": {svc.Needs[0]}, "country": {svc.Area.Countries[0]}, "language": {svc.Languages[0]},
			"channel": {"phone"}, "ageband": {"adult"}, "urgency": {"soon"}, "consent": {"yes"}, "envelope": {sealed}}
		if c != nil {
			f.Set("pow", c.Token)
			f.Set("pow-solution", solution)
		}
		return f
	}
	page := func() Challenge {
		t.Helper()
		res, body := b.do(t, "GET", "/en/ask?service="+svc.ID, nil, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET ask: %d", res.StatusCode)
		}
		return challengeOf(t, body)
	}
	post := func(path string, f url.Values, status int, code string) string {
		t.Helper()
		res, body := b.do(t, "POST", path, f, nil)
		if res.StatusCode != status || res.Header.Get("Invictus-Error") != code {
			t.Fatalf("POST: status %d, Invictus-Error %q; want %d, %q\n%s", res.StatusCode, res.Header.Get("Invictus-Error"), status, code, body)
		}
		if code != "" && !strings.Contains(body, `id="err-pow" data-code="`+code+`"`) {
			t.Fatalf("%s: no message with its code:\n%s", code, body)
		}
		return body
	}
	askPath := "/en/ask?service=" + svc.ID

	c := page()
	if c.Bits != WorkBitsDefault {
		t.Errorf("the page asks for %d bits, want the default %d", c.Bits, WorkBitsDefault)
	}
	sol := SolveWork(c)

	// Without JavaScript: no solution, no envelope.
	f := form(&c, "")
	f.Del("envelope")
	body := post(askPath, f, http.StatusBadRequest, "pow-missing")
	for _, want := range []string{"it needs JavaScript", "tel:112", "tel:116006", "The helplines at the top of this page"} {
		if !strings.Contains(body, want) {
			t.Errorf("the refusal without JavaScript lacks %q", want)
		}
	}
	if strings.Contains(body, `id="err-needs"`) {
		t.Error("the form's fields were checked before its proof of work")
	}
	// For another service's form.
	post("/en/ask?service="+other, form(&c, sol), http.StatusBadRequest, "pow-forged")
	// A wrong solution.
	wrong := "1"
	for n := 2; WorkZeros(c.Token, wrong) >= c.Bits; n++ {
		wrong = strconv.Itoa(n)
	}
	post(askPath, form(&c, wrong), http.StatusBadRequest, "pow-wrong")
	if n := len(in.all()); n != 0 {
		t.Fatalf("%d handed over after refusals", n)
	}
	// The right one, after all those: sent.
	body = post(askPath, form(&c, sol), http.StatusOK, "")
	if !strings.Contains(body, `id="ask-sent"`) || len(in.all()) != 1 {
		t.Fatalf("a solved form was not handed over (%d)", len(in.all()))
	}
	// Replayed: refused, nothing more handed over.
	post(askPath, form(&c, sol), http.StatusConflict, "pow-replayed")
	// Expired: her choices and the sealed envelope are kept, with a new
	// challenge that passes.
	c2 := page()
	sol2 := SolveWork(c2)
	clk.add(WorkTTLDefault)
	body = post(askPath, form(&c2, sol2), http.StatusBadRequest, "pow-expired")
	if !strings.Contains(body, `id="contact-kept"`) || !strings.Contains(body, `id="channel-phone" value="phone" checked`) {
		t.Error("the page after an expired challenge lost her choices")
	}
	c3 := challengeOf(t, body)
	if c3.Token == c2.Token {
		t.Fatal("the page after an expired challenge carries the same challenge")
	}
	post(askPath, form(&c3, SolveWork(c3)), http.StatusOK, "")
	if n := len(in.all()); n != 2 {
		t.Fatalf("%d handed over, want 2", n)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "invictus_web_work_refused_total" {
			for _, m := range mf.GetMetric() {
				got[labelOf(m, "reason")] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{"pow-missing": 1, "pow-forged": 1, "pow-wrong": 1, "pow-replayed": 1, "pow-expired": 1, "pow-busy": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("invictus_web_work_refused_total{reason=%q} = %g, want %g", k, got[k], v)
		}
	}
}

// BenchmarkWork: what the proof of work costs the browser against what
// it costs the node, per operation, in wall time (ns/op) and in CPU time
// of the benchmark's thread (cpu-ns/op), beside the raw baseline of one
// SHA-256 of the same input in the same run:
//   - solve: issue a challenge at the default difficulty and solve it
//     counting up as static/pow.js does (a browser pays more per hash:
//     SubtleCrypto's promise; TestBrowserWorkCost prints that cost);
//   - verify: check a solution and remember its challenge;
//   - refuse: check a wrong solution (a flood's cost to the node);
//   - raw-sha256: one SHA-256.
func BenchmarkWork(b *testing.B) {
	w, err := NewWork(testKey(9), WorkBitsDefault, time.Hour, 1<<24, nil)
	if err != nil {
		b.Fatal(err)
	}
	cpuRun := func(b *testing.B, f func(i int)) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ResetTimer()
		c0, ok := threadCPU()
		for i := range b.N {
			f(i)
		}
		c1, _ := threadCPU()
		b.StopTimer()
		if ok {
			b.ReportMetric(float64((c1-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
	b.Run("solve", func(b *testing.B) {
		hashes := 0
		cpuRun(b, func(int) {
			sol := SolveWork(w.Issue("ask/x"))
			n, _ := strconv.Atoi(sol)
			hashes += n + 1
		})
		b.ReportMetric(float64(hashes)/float64(b.N), "hashes/op")
	})
	b.Run("verify", func(b *testing.B) {
		cheap, _ := NewWork(testKey(9), 1, time.Hour, 1<<24, nil)
		cs := make([]Challenge, b.N)
		sols := make([]string, b.N)
		for i := range cs {
			cs[i] = cheap.Issue("ask/x")
			sols[i] = SolveWork(cs[i])
		}
		cpuRun(b, func(i int) {
			if err := cheap.Verify("ask/x", cs[i].Token, sols[i]); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("refuse", func(b *testing.B) {
		c := w.Issue("ask/x")
		wrong := "0"
		for n := 1; WorkZeros(c.Token, wrong) >= c.Bits; n++ {
			wrong = strconv.Itoa(n)
		}
		cpuRun(b, func(int) {
			if err := w.Verify("ask/x", c.Token, wrong); err == nil {
				b.Fatal("a wrong solution passed")
			}
		})
	})
	b.Run("raw-sha256", func(b *testing.B) {
		in := []byte(w.Issue("ask/x").Token + ".1234")
		cpuRun(b, func(int) { _ = sha256.Sum256(in) })
	})
}
