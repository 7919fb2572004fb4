package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/invictus-network/invictus/events"
)

// Error classes of directory storage. Adapters translate their driver's
// errors into these at the edge; test them with errors.Is.
var (
	// ErrConflict reports a compare-and-set write whose expected revision
	// is not the record's current one: someone else wrote first. Read the
	// record again and retry; a stale write never overwrites silently.
	ErrConflict = errors.New("directory: revision conflict")
	// ErrNotFound reports a record that does not exist (or was deleted).
	ErrNotFound = errors.New("directory: not found")
)

// Kinds of directory records, as the first token of their key.
const (
	KindOrganisation = "org"
	KindService      = "svc"
)

// OrgKey returns the storage key of an organisation: org.<cc>.<slug>
// (DESIGN.md section 3). The id is not checked.
func OrgKey(id string) string { return KindOrganisation + "." + id }

// ServiceKey returns the storage key of a service: svc.<cc>.<org>.<svc>.
// The id is not checked.
func ServiceKey(id string) string { return KindService + "." + id }

// ParseKey splits a storage key into its kind (KindOrganisation or
// KindService) and the record's id, and reports whether the key is well
// formed (the id valid for its kind).
func ParseKey(key string) (kind, id string, ok bool) {
	kind, id, found := strings.Cut(key, ".")
	if !found {
		return "", "", false
	}
	switch kind {
	case KindOrganisation:
		return kind, id, events.IsOrgID(id)
	case KindService:
		return kind, id, events.IsServiceID(id)
	}
	return "", "", false
}

// Change is one change of a directory record, as the storage reports it:
// a new value of an organisation or a service, or a deletion.
type Change struct {
	// Key is the record's storage key (see OrgKey, ServiceKey); it says
	// what kind of record changed and its id.
	Key string
	// Revision is the storage revision of the change; 0 means unknown.
	Revision uint64
	// Org is the new organisation value when Key is an organisation key.
	Org *Organisation
	// Service is the new service value when Key is a service key.
	Service *Service
	// Deleted reports that the record was deleted; Org and Service are
	// then ignored.
	Deleted bool
}

// View is the live directory of one process: the current snapshot of the
// search index, kept up to date by a follower of the storage (the KV
// watcher of adapters/natsjs) that calls Load once and Apply for every
// change. Readers take a [View.Snapshot] and query it without locks;
// writers never wait for readers. A View is safe for concurrent use.
type View struct {
	mu      sync.Mutex // serialises writers and guards changed
	cur     atomic.Pointer[Index]
	changed chan struct{} // closed and replaced on every new snapshot
}

// NewView returns an empty view at revision 0.
func NewView() *View {
	v := &View{changed: make(chan struct{})}
	v.cur.Store(NewIndex(nil, 0))
	return v
}

// Snapshot returns the current immutable index. It never blocks.
func (v *View) Snapshot() *Index { return v.cur.Load() }

// Revision returns the storage revision the view reflects.
func (v *View) Revision() uint64 { return v.cur.Load().Revision() }

// Organisation returns the organisation with the id in the current
// snapshot, or nil. It must not be modified.
func (v *View) Organisation(id string) *Organisation { return v.Snapshot().Organisation(id) }

// Service returns the service with the id in the current snapshot, or nil.
// It must not be modified.
func (v *View) Service(id string) *Service { return v.Snapshot().ServiceByID(id) }

// Load replaces the whole view with d at the given revision, typically the
// initial content of the storage. d must not be modified afterwards.
func (v *View) Load(d *Directory, revision uint64) {
	v.publish(NewIndex(d, revision))
}

// Apply applies changes in order and publishes the new snapshot. A change
// whose revision is not above the view's revision (a replay) is skipped;
// a change with revision 0 is always applied.
func (v *View) Apply(changes ...Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := v.cur.Load()
	fresh := make([]Change, 0, len(changes))
	rev := cur.Revision()
	for _, c := range changes {
		if c.Revision != 0 && c.Revision <= rev {
			continue
		}
		rev = max(rev, c.Revision)
		fresh = append(fresh, c)
	}
	if len(fresh) == 0 {
		return
	}
	v.storeLocked(cur.With(fresh...))
}

// Compact rebuilds the current snapshot's postings, so that queries no
// longer test changed services one by one. It is worth calling when the
// storage has gone quiet after a burst of changes.
func (v *View) Compact() {
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := v.cur.Load()
	if cur.Pending() == 0 {
		return
	}
	v.storeLocked(cur.Rebuild())
}

func (v *View) publish(x *Index) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.storeLocked(x)
}

func (v *View) storeLocked(x *Index) {
	v.cur.Store(x)
	close(v.changed)
	v.changed = make(chan struct{})
}

// WaitRevision blocks until the view reflects at least revision rev, and
// returns nil then, or an error wrapping ctx's error if ctx ends first.
func (v *View) WaitRevision(ctx context.Context, rev uint64) error {
	for {
		v.mu.Lock()
		cur, changed := v.cur.Load(), v.changed
		v.mu.Unlock()
		if cur.Revision() >= rev {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("directory: wait for revision %d (at %d): %w", rev, cur.Revision(), ctx.Err())
		}
	}
}
