package email

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/mail"
	"path"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/schemas"
)

// Languages are the languages of messages and pages: those of the
// taxonomy. An organisation gets the first of its languages found here,
// else English.
var Languages = []string{"en", "bg", "hr", "fi", "fr", "it", "nl", "pt"}

// Kinds of message.
const (
	KindOffer     = "offer"
	KindReminder  = "reminder"
	KindExpired   = "expired"
	KindWithdrawn = "withdrawn"
	KindHandover  = "handover"
	KindAccepted  = "accepted"
	KindDeclined  = "declined"
	KindContacted = "contacted"
	KindCompleted = "completed"
	KindUnmatched = "unmatched"
	// KindUndeliverable tells a referrer that its offer could not be
	// delivered to an e-mail organisation (its server refused it): the
	// delivery.failed event, by e-mail.
	KindUndeliverable = "undeliverable"
	// KindDigest is the daily message that gathers the others for an
	// organisation with referral_channel email_digest.
	KindDigest = "digest"
)

//go:embed templates/*.tmpl locales/*.json
var files embed.FS

// catalog holds the strings of every language, keys in English.
type catalog map[string]map[string]string

func loadCatalog() (catalog, error) {
	c := catalog{}
	for _, lang := range Languages {
		b, err := fs.ReadFile(files, path.Join("locales", lang+".json"))
		if err != nil {
			return nil, fmt.Errorf("email: locale %s: %w", lang, err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("email: locale %s: %w", lang, err)
		}
		c[lang] = m
	}
	return c, nil
}

// t returns the string key in lang (English when missing there) with each
// {name} replaced by the value that follows it in args.
func (c catalog) t(lang, key string, args ...string) string {
	s, ok := c[lang][key]
	if !ok {
		if s, ok = c["en"][key]; !ok {
			return key
		}
	}
	if len(args) > 0 {
		pairs := make([]string, 0, len(args))
		for i := 0; i+1 < len(args); i += 2 {
			pairs = append(pairs, "{"+args[i]+"}", args[i+1])
		}
		s = strings.NewReplacer(pairs...).Replace(s)
	}
	return s
}

// languageOf returns the language to write to o in.
func languageOf(o *directory.Organisation) string {
	if o != nil {
		for _, l := range o.Languages {
			if slices.Contains(Languages, l) {
				return l
			}
		}
	}
	return "en"
}

// field is one line of a message: a label and its value.
type field struct{ Label, Value string }

// action is a link of a message.
type action struct {
	Label, URL string
	Primary    bool
}

// view is what a message template renders; a digest has Items, the
// messages it gathers.
type view struct {
	Lang, Subject, Intro, Note, Footer string
	Fields                             []field
	Actions                            []action
	Items                              []view `json:",omitempty"`
}

// Outgoing is a composed message.
type Outgoing struct {
	Kind      string
	To        string
	MessageID string
	Msg       *gomail.Msg
	// Deadline is the answer deadline of an offer or reminder (zero for
	// other kinds): a digest organisation gets such a message at once when
	// the deadline comes before its next digest.
	Deadline time.Time
	view     view
}

// composer turns deliveries into messages.
type composer struct {
	cfg    Config
	dir    Directory
	tl     Timeline
	links  *Links
	cat    catalog
	tax    *schemas.Taxonomy
	text   *texttemplate.Template
	html   *htmltemplate.Template
	page   *htmltemplate.Template
	domain string
}

func newComposer(cfg Config, dir Directory, tl Timeline, links *Links) (*composer, error) {
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		return nil, err
	}
	text, err := texttemplate.ParseFS(files, "templates/mail.txt.tmpl")
	if err != nil {
		return nil, fmt.Errorf("email: templates: %w", err)
	}
	html, err := htmltemplate.ParseFS(files, "templates/mail.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("email: templates: %w", err)
	}
	page, err := htmltemplate.ParseFS(files, "templates/page.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("email: templates: %w", err)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: From: %w", err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	return &composer{cfg: cfg, dir: dir, tl: tl, links: links, cat: cat, tax: tax,
		text: text, html: html, page: page, domain: domain}, nil
}

// org returns the organisation id, or nil.
func (c *composer) org(id string) *directory.Organisation {
	return c.dir.Snapshot().Organisation(id)
}

// orgName returns the organisation's name, or its id when unknown.
func (c *composer) orgName(id string) string {
	if o := c.org(id); o != nil && o.Name != "" {
		return o.Name
	}
	return id
}

// labels returns the labels of codes of a taxonomy section, joined.
func (c *composer) labels(section, lang string, codes []string) string {
	out := make([]string, len(codes))
	for i, code := range codes {
		out[i] = c.tax.Label(section, code, lang)
	}
	return strings.Join(out, ", ")
}

// when formats t in the time zone of service svc (UTC when unknown).
func (c *composer) when(t time.Time, svc string) string {
	loc := time.UTC
	if s := c.dir.Snapshot().ServiceByID(svc); s != nil {
		if z, err := directory.LoadZone(s.Hours.TimeZone); err == nil {
			loc = z
		}
	}
	lt := t.In(loc)
	return lt.Format("2006-01-02 15:04 MST")
}

// state folds the referral's log; a zero state when it cannot be read
// (the message then says less).
func (c *composer) state(ctx context.Context, referralID string) referral.State {
	if c.tl == nil {
		return referral.State{}
	}
	evs, err := c.tl.Events(ctx, referralID)
	if err != nil {
		return referral.State{}
	}
	st, _ := referral.Fold(evs)
	return st
}

// Compose returns the message org must get for the delivery env, or nil
// when the delivery needs none (an organisation's own answers, events
// nobody reads by e-mail). reminder marks an offer delivered again as a
// reminder. An error means the message cannot be composed.
func (c *composer) Compose(ctx context.Context, org string, env *events.Envelope, reminder bool) (*Outgoing, error) {
	o := c.org(org)
	if o == nil || !o.ReceivesByEmail() || o.ReferralContact.Email == "" {
		return nil, nil
	}
	lang := languageOf(o)
	sender, _ := events.OrgOfSource(env.Event.Source())
	refID := env.Event.Subject()
	v := view{Lang: lang, Footer: c.cat.t(lang, "footer")}
	f := func(key, value string) { v.Fields = append(v.Fields, field{c.cat.t(lang, "field."+key), value}) }
	var kind string
	var offerDeadline time.Time
	switch p := env.Payload.(type) {
	case *events.Offered:
		if p.Organisation != org {
			return nil, nil // the referrer's copy
		}
		kind = KindOffer
		if reminder {
			kind = KindReminder
		}
		offerDeadline = p.Deadline
		deadline := c.when(p.Deadline, p.Service)
		referrer := c.orgName(p.Referrer)
		v.Subject = c.cat.t(lang, "subject."+kind, "deadline", deadline)
		v.Intro = c.cat.t(lang, "intro."+kind, "referrer", referrer)
		f("needs", c.labels("needs", lang, p.Needs))
		f("urgency", c.tax.Label("urgencies", p.Profile.Urgency, lang))
		f("deadline", deadline)
		f("referrer", referrer)
		f("referral", refID+" / "+p.Placement)
		for _, a := range []string{ActionAccept, ActionDecline} {
			tok, err := c.links.Sign(Link{Action: a, Org: org, Referral: refID, Placement: p.Placement,
				Attempt: p.Attempt, Expires: p.Deadline})
			if err != nil {
				return nil, err
			}
			v.Actions = append(v.Actions, action{Label: c.cat.t(lang, "action."+a), URL: c.linkURL(tok), Primary: a == ActionAccept})
		}
		v.Note = c.cat.t(lang, "note.links")
	case *events.Expired:
		if directory.OrgIDOf(p.Service) != org {
			return nil, nil
		}
		kind = KindExpired
		v.Subject = c.cat.t(lang, "subject."+kind)
		v.Intro = c.cat.t(lang, "intro."+kind)
		f("referral", refID+" / "+p.Placement)
		f("deadline", c.when(p.Deadline, p.Service))
	case *events.Withdrawn:
		if sender == org {
			return nil, nil
		}
		kind = KindWithdrawn
		v.Subject = c.cat.t(lang, "subject."+kind)
		v.Intro = c.cat.t(lang, "intro."+kind)
		f("referral", refID)
		f("reason", c.tax.Label("withdraw_reasons", p.Reason, lang))
	case *events.Handover:
		kind = KindHandover
		v.Subject = c.cat.t(lang, "subject."+kind)
		v.Intro = c.cat.t(lang, "intro."+kind, "referrer", c.orgName(sender))
		f("referral", refID+" / "+p.Placement)
		v.Actions = append(v.Actions, action{Label: c.cat.t(lang, "action.console"), URL: c.cfg.ConsoleURL, Primary: true})
	case *events.Accepted, *events.Declined, *events.Contacted, *events.Completed:
		if sender == "" || sender == org {
			return nil, nil // the organisation's own answer
		}
		by := c.orgName(sender)
		var placement string
		switch p := p.(type) {
		case *events.Accepted:
			kind, placement = KindAccepted, p.Placement
		case *events.Declined:
			kind, placement = KindDeclined, p.Placement
		case *events.Contacted:
			kind, placement = KindContacted, p.Placement
		case *events.Completed:
			kind, placement = KindCompleted, p.Placement
		}
		v.Subject = c.cat.t(lang, "subject."+kind, "org", by)
		v.Intro = c.cat.t(lang, "intro."+kind, "org", by)
		f("organisation", by)
		f("referral", refID+" / "+placement)
		if pl, ok := c.state(ctx, refID).Placement(placement); ok {
			f("needs", c.labels("needs", lang, pl.Needs))
		}
		switch p := p.(type) {
		case *events.Declined:
			f("reason", c.tax.Label("decline_reasons", p.Reason, lang))
		case *events.Completed:
			f("outcome", c.tax.Label("outcomes", p.Outcome, lang))
		}
	case *events.DeliveryFailed:
		// The offer of the referrer's referral did not reach p.Organisation.
		kind = KindUndeliverable
		by := c.orgName(p.Organisation)
		v.Subject = c.cat.t(lang, "subject."+kind, "org", by)
		v.Intro = c.cat.t(lang, "intro."+kind, "org", by)
		f("organisation", by)
		f("referral", refID+" / "+p.Placement)
		if pl, ok := c.state(ctx, refID).Placement(p.Placement); ok {
			f("needs", c.labels("needs", lang, pl.Needs))
			if !pl.Offer.Deadline.IsZero() {
				f("deadline", c.when(pl.Offer.Deadline, pl.Offer.Service))
			}
		}
	case *events.Unmatched:
		kind = KindUnmatched
		v.Subject = c.cat.t(lang, "subject."+kind)
		v.Intro = c.cat.t(lang, "intro."+kind)
		f("referral", refID)
		f("needs", c.labels("needs", lang, p.Needs))
		f("reason", c.cat.t(lang, "unmatched."+p.Reason))
	default:
		return nil, nil
	}
	out := &Outgoing{Kind: kind, To: o.ReferralContact.Email, Deadline: offerDeadline,
		MessageID: env.Event.ID() + "." + kind + "." + org + "@" + c.domain}
	msg, err := c.render(v, out)
	if err != nil {
		return nil, err
	}
	out.Msg = msg
	out.view = v
	return out, nil
}

// Digest returns the one message that gathers items, the views of the
// messages org would have got, under the Message-ID id.
func (c *composer) Digest(org string, items []view, id string) (*Outgoing, error) {
	o := c.org(org)
	if o == nil || o.ReferralContact.Email == "" {
		return nil, nil
	}
	lang := languageOf(o)
	v := view{Lang: lang, Footer: c.cat.t(lang, "footer"), Items: items,
		Subject: c.cat.t(lang, "subject."+KindDigest, "count", strconv.Itoa(len(items))),
		Intro:   c.cat.t(lang, "intro."+KindDigest)}
	for _, it := range items {
		if len(it.Actions) > 0 && it.Note != "" {
			v.Note = it.Note
		}
	}
	out := &Outgoing{Kind: KindDigest, To: o.ReferralContact.Email, MessageID: id}
	msg, err := c.render(v, out)
	if err != nil {
		return nil, err
	}
	out.Msg = msg
	return out, nil
}

func (c *composer) linkURL(token string) string {
	return c.cfg.PublicURL + MountPath + "link/" + token
}

// render builds the MIME message of v: plain text and HTML alternatives.
func (c *composer) render(v view, out *Outgoing) (*gomail.Msg, error) {
	var text, html bytes.Buffer
	if err := c.text.Execute(&text, v); err != nil {
		return nil, fmt.Errorf("email: render %s: %w", out.Kind, err)
	}
	if err := c.html.Execute(&html, v); err != nil {
		return nil, fmt.Errorf("email: render %s: %w", out.Kind, err)
	}
	m := gomail.NewMsg()
	if err := m.From(c.cfg.From); err != nil {
		return nil, fmt.Errorf("email: From: %w", err)
	}
	if err := m.To(out.To); err != nil {
		return nil, fmt.Errorf("email: To: %w", err)
	}
	m.Subject(v.Subject)
	m.SetMessageIDWithValue(out.MessageID)
	m.SetDate()
	m.SetGenHeader(gomail.HeaderContentLang, v.Lang)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader("X-Invictus-Kind", out.Kind)
	m.SetBodyString(gomail.TypeTextPlain, text.String())
	m.AddAlternativeString(gomail.TypeTextHTML, html.String())
	return m, nil
}
