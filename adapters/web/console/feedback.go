package console

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/adapters/web"
	"github.com/invictus-network/invictus/events"
)

// The victims' own feedback (issue 12, item 4). The organisation that
// helped a victim gives her a single-use code, as a link or read out on
// the phone; she answers a short questionnaire in her language on a
// public page, without signing in. Her answers become the same
// referral.feedback command the organisation could send, sent as that
// organisation: codes and 1-5 values only, nothing that says who she is.

// FeedbackCodeTTLDefault is how long a feedback code works.
const FeedbackCodeTTLDefault = 30 * 24 * time.Hour

// SurveyQuestions are the questionnaire's questions, each answered on a
// scale of 1 (not at all) to 5 (fully); events.FeedbackMissing are its
// "what was missing" codes.
var SurveyQuestions = []string{"informed", "respectful", "helpful", "recommend"}

// codeAlphabet leaves out letters and digits read alike (0 O 1 I L U):
// 30 symbols, 10 of them make about 49 bits.
const codeAlphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

// feedbackCode is what the store keeps of an issued code, under the
// hash of the code.
type feedbackCode struct {
	Org       string    `json:"org"`
	Referral  string    `json:"referral"`
	Placement string    `json:"placement,omitempty"`
	Lang      string    `json:"lang"`
	Expires   time.Time `json:"expires"`
}

// newFeedbackCode returns a random code, XXXXX-XXXXX.
func newFeedbackCode() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	out := make([]byte, 0, 11)
	for i, x := range b {
		if i == 5 {
			out = append(out, '-')
		}
		// 256 % 30 = 16: a bias of at most 1/16 on six symbols, which
		// costs under half a bit of the code's 49.
		out = append(out, codeAlphabet[int(x)%len(codeAlphabet)])
	}
	return string(out)
}

// normalCode upper-cases a typed code and drops spaces and dashes; ""
// when what is left is not ten symbols of the alphabet.
func normalCode(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(s))
	if len(s) != 10 || strings.Trim(s, codeAlphabet) != "" {
		return ""
	}
	return s
}

func feedbackKey(code string) string     { return hashKey("fb.", code) }
func feedbackUsedKey(code string) string { return hashKey("fbused.", code) }

// feedbackLinkData is the page that gives a caseworker the code.
type feedbackLinkData struct {
	Referral string
	Code     string
	Link     string
	Lang     string
	Expires  time.Time
}

// feedbackLink issues a code for the victim of a placement the person's
// organisation accepted (or, for the referrer, one that was accepted).
func (s *Server) feedbackLink(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	id := r.PathValue("id")
	org := rq.user.Org
	f, err := s.load(r.Context(), id, org)
	if errors.Is(err, errNotFound) {
		return s.notParty(r.Context(), rq, "action_refused", id)
	}
	if err != nil {
		return "message", 0, err
	}
	pl := r.PostFormValue("placement")
	ok := false
	for _, p := range f.State.Placements {
		if p.ID == pl && p.AcceptedBy != "" && (p.AcceptedBy == org || f.Part == partReferrer) {
			ok = true
		}
	}
	lang := r.PostFormValue("lang")
	if !ok || !slices.Contains(web.Languages, lang) {
		s.auditLine(r.Context(), rq.user, "action_refused", id, "feedback_link")
		rq.pg.Title = rq.p.T("error.title")
		rq.pg.Data = messageData{Text: rq.p.T("error.not_yours")}
		return "message", http.StatusForbidden, nil
	}
	code := newFeedbackCode()
	rec := feedbackCode{Org: org, Referral: id, Placement: pl, Lang: lang, Expires: s.cfg.Now().Add(FeedbackCodeTTLDefault).UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return "message", 0, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	if err := s.deps.Accounts.Create(ctx, feedbackKey(normalCode(code)), b); err != nil {
		return "message", 0, err
	}
	// The audit line names the referral, never the code.
	s.auditLine(r.Context(), rq.user, "feedback_link", id, pl)
	rq.pg.Title = rq.p.T("survey.link.title")
	rq.pg.Section = "home"
	rq.pg.Data = &feedbackLinkData{Referral: id, Code: code, Lang: lang, Expires: rec.Expires,
		Link: s.origin(r) + Prefix + lang + "/feedback?code=" + code}
	return "feedbacklink", http.StatusOK, nil
}

// origin is the scheme and host the person reached the console at, for
// a link she can hand on.
func (s *Server) origin(r *http.Request) string {
	if r.TLS != nil || s.cfg.SecureCookies {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// surveyData is the public questionnaire.
type surveyData struct {
	Code      string
	Questions []string
	Missing   []choice
	Error     string
	// Answers and Ticked keep what she chose when the page comes back
	// with an error.
	Answers map[string]int
	Ticked  map[string]bool
	Done    bool
}

// survey is the public questionnaire: without a code, a form to type
// one; with a working code, the questions; posted, the answers sent as
// the issuing organisation's referral.feedback command. Every failure
// says what went wrong and sends nothing.
func (s *Server) survey(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("survey.title")
	d := &surveyData{Questions: SurveyQuestions, Answers: map[string]int{}, Ticked: map[string]bool{}}
	for _, m := range events.FeedbackMissing {
		d.Missing = append(d.Missing, choice{Value: m, Label: rq.p.T("missing." + m)})
	}
	rq.pg.Data = d
	typed := r.FormValue("code")
	if typed == "" {
		return "survey", http.StatusOK, nil
	}
	if !s.allow(r) {
		d.Error = rq.p.T("survey.err.rate")
		return "survey", http.StatusTooManyRequests, nil
	}
	code := normalCode(typed)
	rec, err := s.feedbackCode(r.Context(), code)
	if err != nil {
		return "survey", 0, err
	}
	if rec == nil {
		d.Error = rq.p.T("survey.err.code")
		return "survey", http.StatusNotFound, nil
	}
	d.Code = code[:5] + "-" + code[5:]
	if r.Method != http.MethodPost {
		return "survey", http.StatusOK, nil
	}
	fb := &events.Feedback{Placement: rec.Placement}
	for _, q := range SurveyQuestions {
		v := r.PostFormValue("q_" + q)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			// Not a value of the scale: said on the page, nothing sent.
			d.Error = rq.p.T("survey.err.value")
			return "survey", http.StatusUnprocessableEntity, nil //nolint:nilerr // a bad answer is the person's, not the server's
		}
		d.Answers[q] = n
		fb.Answers = append(fb.Answers, events.Answer{Question: q, Value: n})
	}
	for _, m := range r.PostForm["missing"] {
		if !slices.Contains(events.FeedbackMissing, m) || d.Ticked[m] {
			d.Error = rq.p.T("survey.err.value")
			return "survey", http.StatusUnprocessableEntity, nil
		}
		d.Ticked[m] = true
		fb.Missing = append(fb.Missing, m)
	}
	if len(fb.Answers) == 0 {
		d.Error = rq.p.T("survey.err.empty")
		return "survey", http.StatusUnprocessableEntity, nil
	}
	if events.ValidatePayload(fb) != nil {
		d.Error = rq.p.T("survey.err.value")
		return "survey", http.StatusUnprocessableEntity, nil //nolint:nilerr // a bad answer is the person's, not the server's
	}
	sent, err := s.sendSurvey(r.Context(), code, fb)
	if err != nil {
		return "survey", 0, err
	}
	if !sent {
		d.Error = rq.p.T("survey.err.code")
		return "survey", http.StatusNotFound, nil
	}
	d.Done, d.Code = true, ""
	rq.pg.Title = rq.p.T("survey.thanks")
	return "survey", http.StatusOK, nil
}

// feedbackCode returns the unexpired record of code, or nil.
func (s *Server) feedbackCode(ctx context.Context, code string) (*feedbackCode, error) {
	if code == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	b, err := s.deps.Accounts.Get(ctx, feedbackKey(code))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec feedbackCode
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	if !s.cfg.Now().Before(rec.Expires) {
		_ = s.deps.Accounts.Delete(ctx, feedbackKey(code))
		return nil, nil
	}
	return &rec, nil
}

// sendSurvey spends code and sends fb as its organisation's command. A
// marker created first makes the code single-use under concurrency: of
// two answers with one code, the second finds the marker, or (once the
// first is done) no code. It returns false, sending nothing, when the
// code is used or gone.
func (s *Server) sendSurvey(ctx context.Context, code string, fb *events.Feedback) (bool, error) {
	sctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	if err := s.deps.Accounts.Create(sctx, feedbackUsedKey(code), []byte("1")); errors.Is(err, fs.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StoreTimeout)
		defer cancel()
		_ = s.deps.Accounts.Delete(ctx, feedbackUsedKey(code))
	}
	rec, err := s.feedbackCode(ctx, code)
	if err != nil || rec == nil {
		release()
		return false, err
	}
	// The command goes as the organisation that gave her the code; the
	// audit line says it came from the questionnaire.
	if _, err := s.command(ctx, &User{Org: rec.Org, StaffRef: "survey"}, rec.Referral, fb); err != nil {
		release()
		return false, err
	}
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), StoreTimeout)
	defer dcancel()
	if err := s.deps.Accounts.Delete(dctx, feedbackKey(code)); err != nil {
		// The answers are sent; the marker stays, so the code stays spent.
		s.log.WarnContext(ctx, "console: spent feedback code not deleted", slog.Any("error", err))
		return true, nil
	}
	release()
	return true, nil
}
