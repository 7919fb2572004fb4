package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/invictus-network/invictus/adapters/web/console"
	"github.com/invictus-network/invictus/events"
)

// feedbackCode reads the code off the page that gives it.
func feedbackCode(t *testing.T, p page) string {
	t.Helper()
	const mark = `id="feedback-code" class="code">`
	i := strings.Index(p.body, mark)
	if p.status != http.StatusOK || i < 0 {
		t.Fatalf("feedback link: status %d: %.1500s", p.status, p.body)
	}
	rest := p.body[i+len(mark):]
	return rest[:strings.IndexByte(rest, '<')]
}

// acceptedReferral refers from pt.apav and has the offered organisation
// accept; it returns the referral, the recipient's client and its org.
func acceptedReferral(t *testing.T, b *bundle) (string, *client, string) {
	t.Helper()
	o := referOffered(t, b, "bea", console.RoleCaseworker)
	o.accept(t, b)
	return o.id, o.ct, o.offered
}

// TestFeedbackQuestionnaire: the accepting organisation makes a code;
// the victim answers on the public page without signing in, in her
// language; her answers arrive as a referral.feedback event of that
// organisation with codes and values only; the code works once; bad
// codes and bad answers send nothing.
func TestFeedbackQuestionnaire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, cb, offered := acceptedReferral(t, b)

	// The referral page offers the code; another organisation may not
	// make one.
	r := cb.get("/console/en/referrals/" + id)
	if !strings.Contains(r.body, `id="make-feedback-link-p1"`) {
		t.Fatalf("the referral page offers no feedback code")
	}
	other := b.client()
	other.signIn(b.addPerson("eve", console.RoleCaseworker, "fi.riku"))
	other.get("/console/en/")
	if r := other.post("/console/en/referrals/"+id+"/feedback-link", url.Values{"placement": {"p1"}, "lang": {"pt"}}); r.status != http.StatusNotFound {
		t.Fatalf("another organisation's code: status %d", r.status)
	}
	cb.get("/console/en/referrals/" + id)
	if r := cb.post("/console/en/referrals/"+id+"/feedback-link", url.Values{"placement": {"p1"}, "lang": {"xx"}}); r.status != http.StatusForbidden {
		t.Fatalf("a code in no language: status %d", r.status)
	}
	cb.get("/console/en/referrals/" + id)
	lp := cb.post("/console/en/referrals/"+id+"/feedback-link", url.Values{"placement": {"p1"}, "lang": {"pt"}})
	code := feedbackCode(t, lp)
	if !strings.Contains(lp.body, "/console/pt/feedback?code="+code) {
		t.Fatalf("the link is not in Portuguese: %.1500s", lp.body)
	}

	// The victim: no session, no sign-in.
	v := b.client()
	if r := v.get("/console/pt/feedback"); r.status != http.StatusOK || !strings.Contains(r.body, `id="survey-code"`) {
		t.Fatalf("code form: status %d", r.status)
	}
	before := b.count(id)
	for _, bad := range []string{"ABCDE-FGHJK", "not a code", code + "X"} {
		r := v.get("/console/pt/feedback?code=" + url.QueryEscape(bad))
		if r.status != http.StatusNotFound || !strings.Contains(r.body, "Este código não funciona") || strings.Contains(r.body, `id="survey-form"`) {
			t.Errorf("code %q: status %d", bad, r.status)
		}
	}
	// Typed by hand: small letters and spaces work too.
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	r = v.get("/console/pt/feedback?code=" + url.QueryEscape(typed))
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="survey-form"`) || !strings.Contains(r.body, "Recomendaria este serviço") {
		t.Fatalf("questionnaire: status %d: %.2000s", r.status, r.body)
	}
	for _, bad := range []url.Values{
		{"code": {code}},                     // no answer
		{"code": {code}, "q_helpful": {"9"}}, // out of the scale
		{"code": {code}, "q_helpful": {"4"}, "missing": {"my name"}}, // free text
		{"code": {code}, "q_helpful": {"4"}, "missing": {"safety", "safety"}},
	} {
		if r := v.post("/console/pt/feedback", bad); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Nada foi enviado") {
			t.Errorf("%v: status %d", bad, r.status)
		}
	}
	if n := b.count(id); n != before {
		t.Fatalf("bad codes and answers changed the log: %d events, then %d", before, n)
	}
	answers := url.Values{"code": {code}, "q_informed": {"4"}, "q_respectful": {"5"}, "q_helpful": {"3"}, "q_recommend": {"5"},
		"missing": {"follow_up", "legal_help"}}
	if r := v.post("/console/pt/feedback", answers); r.status != http.StatusOK || !strings.Contains(r.body, `id="survey-done"`) {
		t.Fatalf("answers: status %d: %.1500s", r.status, r.body)
	}
	ev := b.waitEvent(id, events.TypeReferralFeedback)
	fb := ev.Payload.(*events.Feedback)
	want := []events.Answer{{Question: "informed", Value: 4}, {Question: "respectful", Value: 5}, {Question: "helpful", Value: 3}, {Question: "recommend", Value: 5}}
	if fb.Placement != "p1" || !slices.Equal(fb.Answers, want) || !slices.Equal(fb.Missing, []string{"follow_up", "legal_help"}) {
		t.Errorf("feedback %+v", fb)
	}
	if src, _ := events.OrgOfSource(ev.Event.Source()); src != offered {
		t.Errorf("feedback from %q, want the accepting organisation %q", ev.Event.Source(), offered)
	}
	// Nothing but codes and values: not the code, not a name.
	data := string(ev.Event.Data())
	if strings.Contains(data, code) || strings.Contains(data, normal(code)) {
		t.Errorf("the event carries the code: %s", data)
	}
	if strings.Contains(b.logs.String(), normal(code)) || strings.Contains(b.logs.String(), code) {
		t.Errorf("the log has the code")
	}

	// Once only.
	n := b.count(id)
	if r := v.post("/console/pt/feedback", answers); r.status != http.StatusNotFound || !strings.Contains(r.body, "Este código não funciona") {
		t.Errorf("second use: status %d", r.status)
	}
	if b.count(id) != n {
		t.Errorf("second use changed the log")
	}
}

// TestFeedbackCodeOnceUnderConcurrency: four answers posted at once with
// one code send one feedback.
func TestFeedbackCodeOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, cb, _ := acceptedReferral(t, b)
	cb.get("/console/en/referrals/" + id)
	code := feedbackCode(t, cb.post("/console/en/referrals/"+id+"/feedback-link", url.Values{"placement": {"p1"}, "lang": {"en"}}))
	before := b.count(id)
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = b.client().post("/console/en/feedback", url.Values{"code": {code}, "q_helpful": {"5"}}).status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	b.waitEvent(id, events.TypeReferralFeedback)
	if ok != 1 || b.count(id) != before+1 {
		t.Errorf("statuses %v; the log grew by %d", statuses, b.count(id)-before)
	}
}

func normal(code string) string { return strings.ReplaceAll(code, "-", "") }
