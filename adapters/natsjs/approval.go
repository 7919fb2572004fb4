package natsjs

import (
	"context"
	"fmt"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// ErrNotPending is returned by ApproveOrganisation and RejectOrganisation
// for an organisation that is not waiting for approval (it wraps
// directory.ErrConflict: someone else decided first).
var ErrNotPending = fmt.Errorf("natsjs: the organisation is not waiting for approval: %w", directory.ErrConflict)

// ApproveOrganisation records a directory administrator's approval of an
// organisation added as pending ([directory.Organisation.Pending]): the
// flag is cleared and its updated_at set, with compare-and-set, so that its
// services become candidates. It returns the new revision. Errors:
// directory.ErrNotFound, ErrNotPending when it was approved already,
// directory.ErrConflict when every attempt lost to another writer.
func (s *DirectoryStore) ApproveOrganisation(ctx context.Context, id string) (uint64, error) {
	return s.touch(ctx, directory.OrgKey(id), func(now time.Time) ([]byte, uint64, error) {
		o, rev, err := s.GetOrganisation(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		if !o.Pending {
			return nil, 0, fmt.Errorf("%s: %w", id, ErrNotPending)
		}
		o.Pending, o.UpdatedAt = false, now
		val, err := encodeOrganisation(*o)
		return val, rev, err
	}, func(rev uint64) {
		s.emit(SubjectDirectoryOrganisation+id, id, &events.OrganisationUpdated{Organisation: id, Revision: rev})
	})
}

// RejectOrganisation removes an organisation that waits for approval, and
// its services, from the directory: a directory administrator refused it.
// An organisation already approved is never removed this way (ErrNotPending;
// a listed organisation leaves with DeleteOrganisation). Errors:
// directory.ErrNotFound, ErrNotPending, directory.ErrConflict when the
// record changed meanwhile.
func (s *DirectoryStore) RejectOrganisation(ctx context.Context, id string) error {
	o, rev, err := s.GetOrganisation(ctx, id)
	if err != nil {
		return err
	}
	if !o.Pending {
		return fmt.Errorf("%s: %w", id, ErrNotPending)
	}
	return s.DeleteOrganisation(ctx, id, rev)
}
