package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// MaxContactChars bounds the contact details a visitor writes (sealed in
// her browser before anything is sent).
const MaxContactChars = 2000

// AskTimeout bounds the hand-over of one request to be contacted to
// [Intake].
const AskTimeout = 10 * time.Second

// SelfReferral is a request to be contacted, as the page hands it to
// [Intake]: codes only, and the contact details sealed in the visitor's
// browser to the organisation's age recipient. Nothing in it but
// Envelope says who she is, and the server cannot open Envelope.
type SelfReferral struct {
	// Service and Organisation are what she chose from the finder.
	Service, Organisation string
	// Recipient is the organisation's age recipient the page sealed to.
	Recipient string
	// Envelope is the armored age file of her contact details.
	Envelope string
	// Needs are need codes, all offered by Service.
	Needs []string
	// Country is where she is (ISO 3166-1 alpha-2, lower case).
	Country string
	// Language is the language she wants to be contacted in.
	Language string
	// Channel is how she wants to be contacted (phone, email, chat...).
	Channel string
	// AgeBand and Urgency are codes of the needs profile.
	AgeBand, Urgency string
	// ConsentAt is when she ticked the consent box (the server's clock).
	ConsentAt time.Time
}

// Intake hands a request to be contacted to the network, as a referral
// from the node's public intake source with the visitor's consent. It
// returns the referral id. Errors: one wrapping [ErrIntakeRefused] when
// the network refused the request (its message is shown to nobody: the
// page says it could not be sent), anything else when it is unavailable.
type Intake interface {
	Refer(ctx context.Context, r SelfReferral) (string, error)
}

// ErrIntakeRefused is wrapped by an [Intake] error when the request was
// read and refused.
var ErrIntakeRefused = errors.New("web: the request to be contacted was refused")

// askData is what the self-referral page shows.
type askData struct {
	Service   *directory.Service
	Org       string
	Recipient string
	Needs     []choice
	Countries []choice
	Languages []choice
	Channels  []choice
	AgeBands  []choice
	Urgencies []choice
	Form      askForm
	Errors    map[string]*fieldError
	Summary   []errorItem
	// Unavailable says why a request cannot be sent to this service
	// (no key, not accepting, no intake on this node).
	Unavailable string
	Sent        bool
	MaxChars    int
	// Work is the proof-of-work challenge the form carries; WorkError
	// says why the last one was refused (its code and message).
	Work      Challenge
	WorkError *fieldError
	WorkCode  string
	// Phone, PhoneTel and Email are the service's own ways to be reached,
	// for a visitor whose browser cannot send the form.
	Phone, PhoneTel, Email string
}

type askForm struct {
	Needs                                              []string
	Country, Language, Channel, AgeBand, Urgency, Envl string
	Consent                                            bool
}

// ask serves /<lang>/ask?service=ID: a victim who chose a service asks it
// to contact her. Her contact details are written in a textarea without
// a name: static/seal.js seals them in the browser to the organisation's
// age recipient and posts only the armored envelope.
func (s *Server) ask(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Section = "ask"
	rq.pg.Title = rq.p.T("ask.title")
	rq.pg.Robots = "noindex"
	rq.pg.Scripts = []string{"seal.js"}
	// The proof of work is checked before anything else: a refused one
	// changes nothing and costs the node one HMAC and one hash.
	var werr error
	form := askWorkForm(r.Form.Get("service"))
	if r.Method == http.MethodPost {
		werr = s.work.Verify(form, r.PostForm.Get("pow"), r.PostForm.Get("pow-solution"))
	}
	snap := s.deps.Directory.Snapshot()
	svc := snap.ServiceByID(r.Form.Get("service"))
	if svc == nil || !snap.Listed(svc) {
		rq.pg.Title = rq.p.T("ask.noservice.title")
		return "asknone", http.StatusNotFound, nil
	}
	d := &askData{Service: svc, Org: svc.Organisation, MaxChars: MaxContactChars, Errors: map[string]*fieldError{},
		Work: s.work.Issue(form)}
	contact := svc.Contact
	if o := snap.Organisation(svc.Organisation); o != nil {
		d.Org, d.Recipient = o.Name, o.AgeRecipient
		if contact.IsZero() {
			contact = o.ReferralContact
		}
	}
	d.Phone, d.PhoneTel, d.Email = contact.Phone, telDigits(contact.Phone), contact.Email
	rq.pg.Data = d
	s.askChoices(d, svc, rq.p)
	switch {
	case d.Recipient == "":
		d.Unavailable = rq.p.T("ask.unavailable.key")
	case s.deps.Intake == nil:
		d.Unavailable = rq.p.T("ask.unavailable.node")
	}
	if r.Method != http.MethodPost {
		d.Form = askForm{Country: firstOr(svc.Area.Countries, ""), Language: rq.lang, Urgency: "soon"}
		if !slices.Contains(codes(d.Languages), rq.lang) {
			d.Form.Language = firstOr(codes(d.Languages), "")
		}
		return "ask", http.StatusOK, nil
	}
	if werr != nil {
		return s.askRefused(w, r, d, rq, werr)
	}
	if d.Unavailable != "" {
		return "ask", http.StatusServiceUnavailable, nil
	}
	sr, f := s.parseAsk(r, d, rq.p)
	d.Form = f
	for _, field := range []string{"needs", "country", "language", "channel", "ageband", "urgency", "contact", "consent"} {
		if e := d.Errors[field]; e != nil {
			d.Summary = append(d.Summary, errorItem{Field: field, Message: e.Message})
		}
	}
	if len(d.Errors) > 0 {
		s.metrics.asked.WithLabelValues("invalid").Inc()
		rq.pg.Title = rq.p.T("ask.title.errors")
		return "ask", http.StatusBadRequest, nil
	}
	sr.Service, sr.Organisation, sr.Recipient = svc.ID, svc.Organisation, d.Recipient
	sr.ConsentAt = s.cfg.Now().UTC()
	ctx, cancel := context.WithTimeout(r.Context(), AskTimeout)
	defer cancel()
	if _, err := s.deps.Intake.Refer(ctx, sr); err != nil {
		s.metrics.asked.WithLabelValues("failed").Inc()
		// The error names no one: the request holds codes and a sealed
		// envelope only; the log still says nothing but that it failed.
		s.log.WarnContext(r.Context(), "web: request to be contacted not sent", slog.Bool("refused", errors.Is(err, ErrIntakeRefused)))
		d.Unavailable = rq.p.T("ask.failed")
		return "ask", http.StatusServiceUnavailable, nil
	}
	s.metrics.asked.WithLabelValues("sent").Inc()
	d.Sent = true
	d.Form = askForm{}
	rq.pg.Title = rq.p.T("ask.sent.title")
	return "ask", http.StatusOK, nil
}

// askWorkForm names the self-referral form of a service for the proof of
// work: a challenge issued for one service's form does not pass another's.
func askWorkForm(service string) string { return "ask/" + service }

// askRefused draws the form again after its proof of work was refused:
// nothing is handed over, what she chose is kept (her contact details
// only as the envelope sealed earlier), a new challenge comes with it,
// and the reason is given in words, as the Invictus-Error header and as
// the message's data-code.
func (s *Server) askRefused(w http.ResponseWriter, r *http.Request, d *askData, rq *request, werr error) (string, int, error) {
	var we *WorkError
	if !errors.As(werr, &we) {
		return "ask", http.StatusInternalServerError, werr
	}
	s.metrics.work.WithLabelValues(we.Code).Inc()
	w.Header().Set("Invictus-Error", we.Code)
	if d.Unavailable == "" {
		scratch := &askData{Needs: d.Needs, Countries: d.Countries, Languages: d.Languages, Channels: d.Channels,
			AgeBands: d.AgeBands, Urgencies: d.Urgencies, Errors: map[string]*fieldError{}}
		_, d.Form = s.parseAsk(r, scratch, rq.p)
	}
	key, status := "ask.work.wrong", http.StatusBadRequest
	switch we {
	case ErrWorkMissing:
		key = "ask.work.missing"
	case ErrWorkExpired:
		key = "ask.work.expired"
	case ErrWorkReplayed:
		key, status = "ask.work.replayed", http.StatusConflict
	case ErrWorkBusy:
		key, status = "ask.work.busy", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "60")
	}
	d.WorkError, d.WorkCode = &fieldError{Message: rq.p.T(key)}, we.Code
	rq.pg.Title = rq.p.T("ask.title.errors")
	return "ask", status, nil
}

// askChoices fills the choices of the form for svc.
func (s *Server) askChoices(d *askData, svc *directory.Service, p Printer) {
	for _, n := range svc.Needs {
		d.Needs = append(d.Needs, choice{n, s.tax.Label("needs", n, p.lang)})
	}
	all := s.countryChoices(p)
	for _, c := range all {
		if slices.Contains(svc.Area.Countries, c.Code) {
			d.Countries = append(d.Countries, c)
		}
	}
	for _, l := range s.places.languages {
		if slices.Contains(svc.Languages, l.Code) {
			d.Languages = append(d.Languages, choice{l.Code, l.NativeName})
		}
	}
	// Only the ways the service works: the routing service holds a
	// referral to the channel asked for.
	for _, c := range svc.Channels {
		d.Channels = append(d.Channels, choice{c, s.tax.Label("channels", c, p.lang)})
	}
	for _, a := range []string{"child", "youth", "adult", "older"} {
		d.AgeBands = append(d.AgeBands, choice{a, p.T("ask.age." + a)})
	}
	for _, u := range []string{"routine", "soon", "urgent"} {
		d.Urgencies = append(d.Urgencies, choice{u, p.T("ask.urgency." + u)})
	}
}

// parseAsk reads the posted form; every problem goes into d.Errors next
// to its field.
func (s *Server) parseAsk(r *http.Request, d *askData, p Printer) (SelfReferral, askForm) {
	v := r.PostForm
	f := askForm{
		Country: strings.TrimSpace(v.Get("country")), Language: strings.TrimSpace(v.Get("language")),
		Channel: strings.TrimSpace(v.Get("channel")), AgeBand: strings.TrimSpace(v.Get("ageband")),
		Urgency: strings.TrimSpace(v.Get("urgency")), Envl: strings.TrimSpace(v.Get("envelope")),
		Consent: v.Get("consent") == "yes",
	}
	f.Needs = v["need"]
	bad := func(field, key string, choices []choice) {
		d.Errors[field] = &fieldError{Message: p.T(key), Choices: choices}
	}
	if len(f.Needs) == 0 {
		bad("needs", "ask.error.needs", nil)
	}
	for _, n := range f.Needs {
		if !slices.Contains(codes(d.Needs), n) {
			bad("needs", "ask.error.needs.unknown", d.Needs)
			break
		}
	}
	f.Needs = slices.Compact(slices.Sorted(slices.Values(f.Needs)))
	check := func(field, val string, choices []choice) {
		if !slices.Contains(codes(choices), val) {
			bad(field, "ask.error."+field, choices)
		}
	}
	check("country", f.Country, d.Countries)
	check("language", f.Language, d.Languages)
	check("channel", f.Channel, d.Channels)
	check("ageband", f.AgeBand, d.AgeBands)
	check("urgency", f.Urgency, d.Urgencies)
	switch {
	case f.Envl == "":
		bad("contact", "ask.error.contact", nil)
	case events.CheckEnvelope(f.Envl) != nil:
		bad("contact", "ask.error.contact.sealed", nil)
		f.Envl = ""
	}
	if !f.Consent {
		bad("consent", "ask.error.consent", nil)
	}
	return SelfReferral{Envelope: f.Envl, Needs: f.Needs, Country: f.Country, Language: f.Language,
		Channel: f.Channel, AgeBand: f.AgeBand, Urgency: f.Urgency}, f
}

func codes(cs []choice) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Code
	}
	return out
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}

// open serves /<lang>/open: an organisation's caseworker opens a sealed
// case file in her browser (static/open.js). The page itself holds no
// case data: the envelope is pasted or read from a file, and the
// identity is unlocked in the browser from the organisation's wrapped
// copy (GET /v1/keys/identity) with its passphrase, or pasted.
func (s *Server) open(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
	rq.pg.Section = "open"
	rq.pg.Title = rq.p.T("open.title")
	rq.pg.Robots = "noindex"
	rq.pg.Scripts = []string{"open.js"}
	rq.pg.Connect = true
	return "open", http.StatusOK, nil
}
