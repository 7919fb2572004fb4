package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invictus-network/invictus/events"
)

// FailuresMax bounds the failures the page lists (the newest).
const FailuresMax = 500

// DeliveryFailure is a message to an organisation that a channel (the
// e-mail channel) gave up: refused by the mail server for good, or still
// failing after its attempts. It names the message, never its content.
type DeliveryFailure struct {
	At time.Time
	// Org is the organisation the message was for.
	Org string
	// Kind is the kind of message: offer, reminder, expired, withdrawn,
	// handover, accepted, declined, contacted, completed, unmatched,
	// undeliverable or digest.
	Kind string
	// Referral and Placement say which referral it was about (empty for
	// a digest).
	Referral, Placement string
	// Code is the mail server's last reply code (0: none, e.g. no server).
	Code     int
	Attempts uint64
	// Temporary: it kept failing (4xx or no answer) rather than being
	// refused.
	Temporary bool
}

// Failures lists the messages a channel gave up, per organisation.
type Failures interface {
	// Failures returns those addressed to org (every organisation's when
	// org is ""), oldest first, or an error
	// wrapping ErrNoChannel when no e-mail channel ever ran.
	Failures(ctx context.Context, org string) ([]DeliveryFailure, error)
}

// ErrNoChannel says that no e-mail channel ever ran on the node: the
// failures page says so.
var ErrNoChannel = errors.New("console: no e-mail channel has run on this node")

// Notices reads the channels' own events (delivery.failed) on an
// organisation's delivery subject of one referral; they are not in the
// referral's log.
type Notices interface {
	Notices(ctx context.Context, org, referralID string, types ...string) ([]*events.Envelope, error)
}

// failureKinds are the kinds of message the page names.
var failureKinds = []string{"offer", "reminder", "expired", "withdrawn", "handover", "accepted", "declined",
	"contacted", "completed", "unmatched", "undeliverable", "digest"}

// failuresData is the page of failed deliveries.
type failuresData struct {
	Off bool
	// All: the directory's administrator's page, every organisation.
	All  bool
	Rows []failureRow
}

type failureRow struct {
	At                  time.Time
	Org                 string
	Kind, Outcome, Code string
	Referral, Placement string
	Attempts            uint64
}

// failureRoutes registers the page of failed deliveries under p.
func (s *Server) failureRoutes(p, lang string) {
	s.mux.HandleFunc("GET "+p+"/failures", s.page(lang, signedIn, s.failures))
}

// failures lists the messages that the e-mail channel gave up, newest
// first: to an organisation administrator those to her own organisation,
// to the directory's administrator those of every organisation, with the
// organisation. Anyone else is refused.
func (s *Server) failures(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	org := rq.user.Org
	switch rq.user.Role {
	case RoleOrgAdmin:
	case RoleDirectoryAdmin:
		org = "" // every organisation
	default:
		s.auditLine(r.Context(), rq.user, "page_refused", "", r.URL.Path)
		s.refuse(w, r, rq, http.StatusForbidden, "error.role")
		return "", 0, nil
	}
	rq.pg.Title = rq.p.T("failures.title")
	rq.pg.Section = "failures"
	d := &failuresData{Off: s.deps.Failures == nil, All: org == ""}
	rq.pg.Data = d
	if d.Off {
		return "failures", http.StatusOK, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	fs, err := s.deps.Failures.Failures(ctx, org)
	if errors.Is(err, ErrNoChannel) {
		d.Off = true
		return "failures", http.StatusOK, nil
	}
	if err != nil {
		return "failures", 0, err
	}
	slices.Reverse(fs)
	for _, f := range fs[:min(len(fs), FailuresMax)] {
		row := failureRow{At: f.At, Org: f.Org, Kind: f.Kind, Referral: f.Referral, Placement: f.Placement, Attempts: f.Attempts,
			Outcome: rq.p.T("failures.refused"), Code: "—"}
		if slices.Contains(failureKinds, f.Kind) {
			row.Kind = rq.p.T("failkind." + f.Kind)
		}
		if f.Temporary {
			row.Outcome = rq.p.T("failures.gave_up")
		}
		if f.Code != 0 {
			row.Code = "SMTP " + strconv.Itoa(f.Code)
		}
		if !events.IsReferralID(row.Referral) {
			row.Referral = ""
		}
		d.Rows = append(d.Rows, row)
	}
	return "failures", http.StatusOK, nil
}

// notices returns the delivery.failed events org holds for referral id,
// none when the console has no Notices or they cannot be read (the
// timeline then shows the log alone).
func (s *Server) notices(ctx context.Context, org, id string) []*events.Envelope {
	if s.deps.Notices == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	evs, err := s.deps.Notices.Notices(ctx, org, id, events.TypeDeliveryFailed)
	if err != nil {
		s.log.WarnContext(ctx, "console: notices not read", slog.String("referral", id), slog.Any("error", err))
		return nil
	}
	return evs
}

// withNotices adds to the referrer's timeline the delivery.failed events
// of referral id, in time order.
func (s *Server) withNotices(ctx context.Context, id string, rq *request, tl []entry) []entry {
	evs := s.notices(ctx, rq.user.Org, id)
	if len(evs) == 0 {
		return tl
	}
	for _, ev := range evs {
		if p, ok := ev.Payload.(*events.DeliveryFailed); ok {
			tl = append(tl, s.failedEntry(ev, p, rq))
		}
	}
	slices.SortStableFunc(tl, func(a, b entry) int { return a.At.Compare(b.At) })
	return tl
}

// failedEntry says a delivery.failed in words.
func (s *Server) failedEntry(ev *events.Envelope, p *events.DeliveryFailed, rq *request) entry {
	notes := []string{p.Placement, rq.p.T("event.delivery_failed.note", s.orgName(p.Organisation))}
	if p.Message == "reminder" {
		notes = append(notes, rq.p.T("failkind.reminder"))
	}
	if p.SMTPCode != 0 {
		notes = append(notes, "SMTP "+strconv.Itoa(p.SMTPCode))
	}
	return entry{At: ev.Event.Time().UTC(), What: rq.p.T("event.delivery_failed"), Note: strings.Join(notes, " · ")}
}
