package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/tracing"
	"github.com/invictus-network/invictus/referral"
)

// pageFormMax bounds the body of a confirmation.
const pageFormMax = 4 << 10

// pages serves the action links' pages.
type pages struct {
	a   *Adapter
	mux *http.ServeMux
}

func newPages(a *Adapter) *pages {
	p := &pages{a: a, mux: http.NewServeMux()}
	p.mux.HandleFunc("GET "+MountPath+"link/{token}", p.show)
	p.mux.HandleFunc("POST "+MountPath+"link/{token}", p.confirm)
	return p
}

func (p *pages) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// reason is a choice of the decline form.
type reason struct{ Code, Label string }

// pageView is what page.html.tmpl renders.
type pageView struct {
	Lang, Title, Message, Class, Nonce string
	Fields                             []field
	Form                               bool
	Reasons                            []reason
	ReasonLabel, Button                string
}

// offerCheck is a link checked against the referral's log.
type offerCheck struct {
	link   Link
	lang   string
	offer  referral.Offer
	state  referral.State
	status int
	// refusal is the catalogue key of the page refusing the link; empty
	// when the link may act.
	refusal string
}

// check verifies token and the offer it names: signature, expiry, use,
// and that the offer is still open to the link's organisation.
func (p *pages) check(ctx context.Context, token string) offerCheck {
	l, err := p.a.links.Verify(token)
	c := offerCheck{link: l, lang: "en"}
	if err == nil || errors.Is(err, ErrLinkExpired) {
		c.lang = languageOf(p.a.composer.org(l.Org))
	}
	switch {
	case errors.Is(err, ErrLinkExpired):
		c.status, c.refusal = http.StatusGone, "expired"
		return c
	case err != nil:
		c.status, c.refusal = http.StatusBadRequest, "invalid"
		return c
	}
	if _, _, err := p.a.deps.Marks.Get(ctx, l.UseKey()); err == nil {
		c.status, c.refusal = http.StatusConflict, "used"
		return c
	} else if !errors.Is(err, fs.ErrNotExist) {
		c.status, c.refusal = http.StatusServiceUnavailable, "unavailable"
		return c
	}
	evs, err := p.a.deps.Timeline.Events(ctx, l.Referral)
	if err != nil {
		c.status, c.refusal = http.StatusServiceUnavailable, "unavailable"
		return c
	}
	st, err := referral.Fold(evs)
	if err != nil {
		c.status, c.refusal = http.StatusServiceUnavailable, "unavailable"
		return c
	}
	off, ok := st.LiveOffer(l.Placement, l.Attempt)
	if !ok || off.Organisation != l.Org {
		c.status, c.refusal = http.StatusConflict, "closed"
		return c
	}
	c.offer, c.state = off, st
	return c
}

// show serves GET: the offer and a form asking for confirmation. It
// changes nothing (mail scanners open links).
func (p *pages) show(w http.ResponseWriter, r *http.Request) {
	c := p.check(r.Context(), r.PathValue("token"))
	if c.refusal != "" {
		p.refuse(w, c)
		return
	}
	t := p.a.composer.cat.t
	v := pageView{Lang: c.lang, Title: t(c.lang, "page.title."+c.link.Action), Form: true,
		Button: t(c.lang, "page.button."+c.link.Action), Fields: p.offerFields(c)}
	if c.link.Action == ActionDecline {
		v.ReasonLabel = t(c.lang, "page.reason")
		for _, code := range events.DeclineReasons {
			v.Reasons = append(v.Reasons, reason{code, p.a.composer.tax.Label("decline_reasons", code, c.lang)})
		}
	}
	p.render(w, http.StatusOK, v)
}

// offerFields describes the offer: needs, urgency, deadline, referrer.
func (p *pages) offerFields(c offerCheck) []field {
	co := p.a.composer
	t := co.cat.t
	pl, _ := c.state.Placement(c.link.Placement)
	return []field{
		{t(c.lang, "field.needs"), co.labels("needs", c.lang, pl.Needs)},
		{t(c.lang, "field.urgency"), co.tax.Label("urgencies", c.state.Profile.Urgency, c.lang)},
		{t(c.lang, "field.deadline"), co.when(c.offer.Deadline, c.offer.Service)},
		{t(c.lang, "field.referrer"), co.orgName(c.state.Referrer)},
		{t(c.lang, "field.referral"), c.link.Referral + " / " + c.link.Placement},
	}
}

// confirm serves POST: it records the link's use, sends the answer as
// the organisation's command and waits a while for the decision.
func (p *pages) confirm(w http.ResponseWriter, r *http.Request) {
	tracing.Route(r, r.Pattern) // the span is POST /mail/link/{token}, never the token
	ctx := r.Context()
	c := p.check(ctx, r.PathValue("token"))
	if c.refusal != "" {
		p.refuse(w, c)
		return
	}
	l := c.link
	var payload events.Payload = &events.Accepted{Placement: l.Placement}
	if l.Action == ActionDecline {
		r.Body = http.MaxBytesReader(w, r.Body, pageFormMax)
		code := ""
		if err := r.ParseForm(); err == nil {
			code = r.PostForm.Get("reason")
		}
		if !slices.Contains(events.DeclineReasons, code) {
			c.status, c.refusal = http.StatusBadRequest, "invalid"
			p.refuse(w, c)
			return
		}
		payload = &events.Declined{Placement: l.Placement, Reason: code}
	}
	ev, err := events.New(events.SourceOf(l.Org), l.Referral, payload)
	var msg events.Message
	if err == nil {
		subject, _ := events.InboundSubject(l.Org)
		msg, err = events.ToNATS(subject, ev)
	}
	if err != nil {
		p.a.cfg.Logger.ErrorContext(ctx, "email: answer not built", slog.String("organisation", l.Org), slog.Any("error", err))
		c.status, c.refusal = http.StatusInternalServerError, "unavailable"
		p.refuse(w, c)
		return
	}
	// The use is recorded first: of two confirmations at once, one acts.
	if _, err := p.a.deps.Marks.Create(ctx, l.UseKey(), []byte(l.Action)); err != nil {
		c.status, c.refusal = http.StatusServiceUnavailable, "unavailable"
		if errors.Is(err, fs.ErrExist) {
			c.status, c.refusal = http.StatusConflict, "used"
		}
		p.refuse(w, c)
		return
	}
	if err := p.a.deps.Commands.Submit(ctx, l.Org, msg); err != nil {
		// Not sent: the link may be used again.
		_ = p.a.deps.Marks.Delete(context.WithoutCancel(ctx), l.UseKey())
		p.a.cfg.Logger.WarnContext(ctx, "email: answer not submitted", slog.String("organisation", l.Org), slog.Any("error", err))
		c.status, c.refusal = http.StatusServiceUnavailable, "unavailable"
		p.refuse(w, c)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, p.a.cfg.OutcomeWait)
	accepted, rej, err := p.a.deps.Outcomes.Wait(wctx, l.Org, l.Referral, ev.ID())
	cancel()
	t := p.a.composer.cat.t
	v := pageView{Lang: c.lang, Title: t(c.lang, "page.title.done"), Fields: p.offerFields(c)}
	status, result := http.StatusOK, "accepted"
	if l.Action == ActionDecline {
		result = "declined"
	}
	switch {
	case accepted:
		v.Message, v.Class = t(c.lang, "page.done."+l.Action), "done"
	case rej != nil:
		status, result = http.StatusConflict, "rejected"
		v.Title, v.Message, v.Class = t(c.lang, "page.title.refused"), t(c.lang, "page.rejected"), "refused"
	default:
		_ = err // the decision is late; it is still coming
		status, result = http.StatusAccepted, "pending"
		v.Message, v.Class = t(c.lang, "page.pending"), "done"
	}
	p.a.metrics.links.WithLabelValues(result).Inc()
	p.render(w, status, v)
}

// refuse renders the page that says why the link cannot act.
func (p *pages) refuse(w http.ResponseWriter, c offerCheck) {
	t := p.a.composer.cat.t
	p.a.metrics.links.WithLabelValues(c.refusal).Inc()
	p.render(w, c.status, pageView{Lang: c.lang, Title: t(c.lang, "page.title.refused"),
		Message: t(c.lang, "page."+c.refusal), Class: "refused"})
}

// render writes the page with a strict Content-Security-Policy: nothing
// may load, only the page's own style block (by nonce) applies, and the
// form may post only to this origin.
func (p *pages) render(w http.ResponseWriter, status int, v pageView) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // never fails (crypto/rand)
	v.Nonce = hex.EncodeToString(nonce[:])
	var buf bytes.Buffer
	if err := p.a.composer.page.Execute(&buf, v); err != nil {
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+v.Nonce+"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
