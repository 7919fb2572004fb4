package console_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/invictus-network/invictus/events"
)

// The victim's questionnaire in the browser, without signing in: the
// code form and the questions in English and Portuguese, checked with
// axe-core; she answers in Portuguese and her answers arrive as the
// accepting organisation's feedback.
func TestBrowserSurvey(t *testing.T) {
	b := setup(t)
	id, cb, _ := acceptedReferral(t, b)
	codes := map[string]string{}
	for _, lang := range []string{"en", "pt"} {
		cb.get("/console/en/referrals/" + id)
		codes[lang] = feedbackCode(t, cb.post("/console/en/referrals/"+id+"/feedback-link", url.Values{"placement": {"p1"}, "lang": {lang}}))
	}
	ta := b.tab(t)
	for _, lang := range []string{"en", "pt"} {
		ta.open("/console/" + lang + "/feedback")
		ta.waitFor(`document.querySelector('#survey-code')`)
		ta.axe("survey-code-" + lang)
		ta.set("#code", strings.ToLower(codes[lang]))
		ta.submit("#survey-code button")
		ta.waitFor(`document.querySelector('#survey-form')`)
		ta.axe("survey-" + lang)
		ta.screenshot("survey-" + lang)
	}
	ta.check(`input[name="q_helpful"][value="4"]`)
	ta.check(`input[name="missing"][value="interpreter"]`)
	ta.submit("#survey-send")
	ta.waitFor(`document.querySelector('#survey-done')`)
	ta.axe("survey-done-pt")
	fb := b.waitEvent(id, events.TypeReferralFeedback).Payload.(*events.Feedback)
	if len(fb.Answers) != 1 || fb.Answers[0] != (events.Answer{Question: "helpful", Value: 4}) || len(fb.Missing) != 1 || fb.Missing[0] != "interpreter" {
		t.Errorf("feedback %+v", fb)
	}
	// A wrong code: the error is announced, the questions are not shown.
	ta.open("/console/pt/feedback?code=" + url.QueryEscape(codes["pt"]))
	ta.waitFor(`document.querySelector('#survey-error')`)
	if eval[bool](ta, `!!document.querySelector('#survey-form')`) {
		t.Error("a spent code still opens the questions")
	}
	ta.axe("survey-error-pt")
}
