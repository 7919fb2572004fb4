package natsjs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/referral"
	"github.com/invictus-network/invictus/routing"
)

// Listings is what the router needs to apply an organisation's commands
// about its own listing (directory.*.updated on its INBOUND subject);
// *DirectoryStore is one.
type Listings interface {
	// SetCapacity sets a service's capacity status and its timestamp.
	SetCapacity(ctx context.Context, serviceID, status string) (uint64, error)
	// ConfirmService and ConfirmOrganisation record that the listing was
	// confirmed as current now (its updated_at), changing nothing else.
	ConfirmService(ctx context.Context, id string) (uint64, error)
	ConfirmOrganisation(ctx context.Context, id string) (uint64, error)
	// SetServiceContent replaces a service's listing content (hours,
	// languages, channels, accessibility, eligibility, contact).
	SetServiceContent(ctx context.Context, c *events.ServiceContent) (uint64, error)
}

// isListingCommand reports whether typ is one of the directory commands
// an organisation may send about its own listing.
func isListingCommand(typ string) bool {
	switch typ {
	case events.TypeDirectoryOrgUpdated, events.TypeDirectoryServiceUpdated, events.TypeDirectoryServiceContent, events.TypeDirectoryCapacityUpdated:
		return true
	}
	return false
}

// listingOwner returns the organisation a directory command concerns and
// the id it names, and whether the command asks to delete.
func listingOwner(p events.Payload) (owner, id string, deleted bool) {
	switch v := p.(type) {
	case *events.OrganisationUpdated:
		return v.Organisation, v.Organisation, v.Deleted
	case *events.ServiceUpdated:
		return v.Service[:strings.LastIndexByte(v.Service, '.')], v.Service, v.Deleted
	case *events.ServiceContent:
		return v.Service[:strings.LastIndexByte(v.Service, '.')], v.Service, false
	case *events.CapacityUpdated:
		return v.Service[:strings.LastIndexByte(v.Service, '.')], v.Service, false
	}
	return "", "", false
}

// listingRejection is the rejection of a directory command, or nil when
// org may send it: it must come from org's own source, concern org's own
// organisation or services, and not delete (only a directory
// administrator deletes, from the CLI).
func listingRejection(org string, env *events.Envelope) *routing.Rejection {
	forbid := func(pointer, msg string) *routing.Rejection {
		return &routing.Rejection{Code: referral.CodeForbidden, Problems: []events.Problem{{Pointer: pointer, Code: referral.CodeForbidden, Message: msg}}}
	}
	if env.Event.Source() != events.SourceOf(org) {
		return forbid("/source", fmt.Sprintf("source %q is not the sender %s", env.Event.Source(), events.SourceOf(org)))
	}
	owner, id, deleted := listingOwner(env.Payload)
	switch {
	case owner == "":
		return forbid("/type", "not a listing command")
	case owner != org:
		return forbid("/subject", fmt.Sprintf("%s may change only its own listing, not %s", org, id))
	case env.Event.Subject() != id:
		return &routing.Rejection{Code: referral.CodeInvalid, Problems: []events.Problem{{Pointer: "/subject", Code: referral.CodeInvalid,
			Message: fmt.Sprintf("subject %q is not the id the data names, %q", env.Event.Subject(), id)}}}
	case deleted:
		return forbid("/data/deleted", "only a directory administrator removes a listing")
	}
	return nil
}

// handleListing applies an organisation's directory command: capacity
// sets the status, the two others confirm the listing as current. A
// command about another organisation, or for a record that does not
// exist, is rejected and changes nothing.
func (r *Router) handleListing(ctx context.Context, m jetstream.Msg, org string, env *events.Envelope) {
	if r.cfg.Listings == nil {
		r.reject(ctx, m, org, env, &routing.Rejection{Code: referral.CodeForbidden, Problems: []events.Problem{{Pointer: "/type",
			Code: referral.CodeForbidden, Message: "this node does not keep the directory"}}})
		return
	}
	if rej := listingRejection(org, env); rej != nil {
		r.reject(ctx, m, org, env, rej)
		return
	}
	var err error
	switch v := env.Payload.(type) {
	case *events.CapacityUpdated:
		_, err = r.cfg.Listings.SetCapacity(ctx, v.Service, v.Status)
	case *events.ServiceUpdated:
		_, err = r.cfg.Listings.ConfirmService(ctx, v.Service)
	case *events.ServiceContent:
		_, err = r.cfg.Listings.SetServiceContent(ctx, v)
	case *events.OrganisationUpdated:
		_, err = r.cfg.Listings.ConfirmOrganisation(ctx, v.Organisation)
	}
	switch {
	case err == nil:
		r.held.ack(m, r.cfg.Logger)
	case errors.Is(err, directory.ErrNotFound):
		r.reject(ctx, m, org, env, &routing.Rejection{Code: "not_found", Problems: []events.Problem{{Pointer: "/subject", Code: "not_found",
			Message: fmt.Sprintf("%s is not in the directory", env.Event.Subject())}}})
	case errors.Is(err, directory.ErrInvalid):
		problems := []events.Problem{{Pointer: "/data", Code: referral.CodeInvalid, Message: "the listing change is not valid"}}
		if ve := (*directory.ValidationError)(nil); errors.As(err, &ve) && len(ve.Problems) > 0 {
			problems = problems[:0]
			for _, p := range ve.Problems[:min(len(ve.Problems), 10)] {
				problems = append(problems, events.Problem{Pointer: "/data" + p.Pointer, Code: referral.CodeInvalid, Message: p.Message})
			}
		}
		r.reject(ctx, m, org, env, &routing.Rejection{Code: referral.CodeInvalid, Problems: problems})
	default:
		if r.deliveries(m) >= r.cfg.MaxDeliver {
			r.reject(ctx, m, org, env, &routing.Rejection{Code: ReasonUndelivered, Problems: []events.Problem{{Code: "unavailable", Message: "the command could not be processed; send it again later"}}})
			return
		}
		r.cfg.Logger.InfoContext(ctx, "natsjs: listing command retried", slog.String("org", org), slog.Any("error", err))
		r.nak(ctx, m, r.retryDelay(m))
	}
}

// ConfirmService records that service id's listing was confirmed now: its
// updated_at is set, nothing else changes. Errors as SetCapacity.
func (s *DirectoryStore) ConfirmService(ctx context.Context, id string) (uint64, error) {
	return s.touch(ctx, directory.ServiceKey(id), func(now time.Time) ([]byte, uint64, error) {
		sv, rev, err := s.GetService(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		sv.UpdatedAt = now
		val, err := encodeService(*sv)
		return val, rev, err
	}, func(rev uint64) {
		s.emit(SubjectDirectoryService+id, id, &events.ServiceUpdated{Service: id, Revision: rev})
	})
}

// SetServiceContent replaces the listing content of service c.Service with
// c's (hours, languages, channels, accessibility, eligibility, contact),
// keeping the rest of the record, and stamps its updated_at; the result is
// validated as any directory record. Errors: directory.ErrNotFound, a
// *directory.ValidationError (directory.ErrInvalid), and the errors of
// ConfirmService.
func (s *DirectoryStore) SetServiceContent(ctx context.Context, c *events.ServiceContent) (uint64, error) {
	id := c.Service
	return s.touch(ctx, directory.ServiceKey(id), func(now time.Time) ([]byte, uint64, error) {
		sv, rev, err := s.GetService(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		sv.SetContent(c)
		sv.UpdatedAt = now
		if err := directory.ValidateService(sv); err != nil {
			return nil, 0, err
		}
		val, err := encodeService(*sv)
		return val, rev, err
	}, func(rev uint64) {
		s.emit(SubjectDirectoryService+id, id, &events.ServiceUpdated{Service: id, Revision: rev})
	})
}

// ConfirmOrganisation is ConfirmService for an organisation.
func (s *DirectoryStore) ConfirmOrganisation(ctx context.Context, id string) (uint64, error) {
	return s.touch(ctx, directory.OrgKey(id), func(now time.Time) ([]byte, uint64, error) {
		o, rev, err := s.GetOrganisation(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		o.UpdatedAt = now
		val, err := encodeOrganisation(*o)
		return val, rev, err
	}, func(rev uint64) {
		s.emit(SubjectDirectoryOrganisation+id, id, &events.OrganisationUpdated{Organisation: id, Revision: rev})
	})
}

// touch writes what build makes of key's current value (and its
// revision), with
// compare-and-set, at most CASRetries times, then calls announce.
func (s *DirectoryStore) touch(ctx context.Context, key string, build func(time.Time) ([]byte, uint64, error), announce func(uint64)) (uint64, error) {
	var lastErr error
	for range s.cfg.CASRetries {
		val, expected, err := build(s.cfg.Now().UTC())
		if err != nil {
			return 0, err
		}
		rev, err := s.cas(ctx, key, val, expected)
		if err == nil {
			announce(rev)
			return rev, nil
		}
		if !errors.Is(err, directory.ErrConflict) {
			return 0, err
		}
		lastErr = err
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("natsjs: confirm %s: %w", key, err)
		}
	}
	return 0, fmt.Errorf("natsjs: confirm %s: gave up after %d attempts: %w", key, s.cfg.CASRetries, lastErr)
}
