package natsjs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/wire"
)

// Directory change events.
//
// Every write of the directory store is followed by a directory.* CloudEvent
// published on core NATS (not JetStream): the bucket is the record and its
// watchers get every change from it, so the events are notifications for
// anyone listening (dashboards, other hubs), not a second copy to keep. No
// stream captures these subjects ([EnsureStreams] creates none that match
// directory.>), so publishing them costs nothing when nobody listens.
const (
	// SubjectDirectoryEvents matches every directory change event.
	SubjectDirectoryEvents = wire.SubjectDirectoryEvents
	// SubjectDirectoryOrganisation prefixes organisation events:
	// directory.organisation.<cc>.<org>.
	SubjectDirectoryOrganisation = wire.SubjectDirectoryOrganisation
	// SubjectDirectoryService prefixes service events:
	// directory.service.<cc>.<org>.<svc>.
	SubjectDirectoryService = wire.SubjectDirectoryService
	// SubjectDirectoryCapacity prefixes capacity events:
	// directory.capacity.<cc>.<org>.<svc>.
	SubjectDirectoryCapacity = wire.SubjectDirectoryCapacity
)

// Defaults of [DirectoryStoreConfig] and the follower.
const (
	// CASRetriesDefault bounds the read-modify-write attempts of
	// [DirectoryStore.SetCapacity] when other writers keep winning.
	CASRetriesDefault = 8
	// ImportWorkersDefault is how many writes ImportDirectory keeps in flight.
	ImportWorkersDefault = 16
	// CallTimeoutDefault bounds each call to NATS when the caller's context
	// has no deadline.
	CallTimeoutDefault = 10 * time.Second
	// FollowerCompactAfter is how long the directory must stay quiet before
	// a follower compacts its view's index (see directory.View.Compact).
	FollowerCompactAfter = 2 * time.Second
	// followerBatchMax bounds how many changes a follower applies at once.
	followerBatchMax = 4096
)

// DirectoryStoreConfig configures a [DirectoryStore]. The zero value of each
// field means its default.
type DirectoryStoreConfig struct {
	// Logger receives warnings (an event that could not be published); it
	// never receives record contents. Default: discard.
	Logger *slog.Logger
	// Source is the CloudEvents source of the change events. Default
	// events.SourceDirectory; an organisation writing its own records may
	// use events.SourceOf(its id).
	Source string
	// CASRetries bounds SetCapacity's attempts. Default [CASRetriesDefault].
	CASRetries int
	// ImportWorkers is how many writes ImportDirectory keeps in flight.
	// Default [ImportWorkersDefault].
	ImportWorkers int
	// CallTimeout bounds each NATS call when the context has no deadline.
	// Default [CallTimeoutDefault].
	CallTimeout time.Duration
	// Now returns the current time, for capacity timestamps. Default
	// time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c DirectoryStoreConfig) WithDefaults() DirectoryStoreConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Source == "" {
		c.Source = events.SourceDirectory
	}
	if c.CASRetries == 0 {
		c.CASRetries = CASRetriesDefault
	}
	if c.ImportWorkers == 0 {
		c.ImportWorkers = ImportWorkersDefault
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = CallTimeoutDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on the
// result of [DirectoryStoreConfig.WithDefaults].
func (c DirectoryStoreConfig) Validate() error {
	if !events.IsSource(c.Source) {
		return fmt.Errorf("natsjs: DirectoryStoreConfig.Source %q is not a valid event source", c.Source)
	}
	if c.CASRetries < 1 || c.CASRetries > 100 {
		return fmt.Errorf("natsjs: DirectoryStoreConfig.CASRetries %d must be from 1 to 100", c.CASRetries)
	}
	if c.ImportWorkers < 1 || c.ImportWorkers > 256 {
		return fmt.Errorf("natsjs: DirectoryStoreConfig.ImportWorkers %d must be from 1 to 256", c.ImportWorkers)
	}
	if c.CallTimeout <= 0 {
		return fmt.Errorf("natsjs: DirectoryStoreConfig.CallTimeout %s must be positive", c.CallTimeout)
	}
	return nil
}

// DirectoryStore keeps organisations and services in the KV bucket
// [BucketDirectory]: keys org.<cc>.<org> and svc.<cc>.<org>.<svc>, values
// the records as JSON with "version": directory.ModelVersion. Every write
// is a compare-and-set on the key's revision: a stale write fails with an
// error wrapping directory.ErrConflict and changes nothing. Its methods
// are safe for concurrent use.
type DirectoryStore struct {
	kv  jetstream.KeyValue
	nc  *nats.Conn
	cfg DirectoryStoreConfig
}

// NewDirectoryStore opens the directory bucket through js (it must exist:
// run [EnsureStreams] first) and publishes change events on js's
// connection. It returns an error wrapping jetstream.ErrBucketNotFound if
// the bucket is missing, or a config error naming the invalid field.
func NewDirectoryStore(ctx context.Context, js jetstream.JetStream, cfg DirectoryStoreConfig) (*DirectoryStore, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, cfg.CallTimeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, BucketDirectory)
	if err != nil {
		return nil, fmt.Errorf("natsjs: open bucket %s: %w", BucketDirectory, err)
	}
	return &DirectoryStore{kv: kv, nc: js.Conn(), cfg: cfg}, nil
}

// KeyValue returns the bucket, for a [DirectoryFollower].
func (s *DirectoryStore) KeyValue() jetstream.KeyValue { return s.kv }

// withTimeout gives ctx a deadline of d unless it has one.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// translate maps JetStream KV errors to the directory's error classes:
// wrong-last-sequence (a stale revision, or a create of an existing key)
// to directory.ErrConflict, a missing or deleted key to
// directory.ErrNotFound. Other errors pass through.
func translate(err error, key string) error {
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch),
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return fmt.Errorf("natsjs: %s: %w (%w)", key, directory.ErrConflict, err)
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("natsjs: %s: %w", key, directory.ErrNotFound)
	}
	return fmt.Errorf("natsjs: %s: %w", key, err)
}

// encodeOrganisation returns the stored form of o: JSON with the version.
func encodeOrganisation(o directory.Organisation) ([]byte, error) {
	o.Version = directory.ModelVersion
	return json.Marshal(o)
}

func encodeService(s directory.Service) ([]byte, error) {
	s.Version = directory.ModelVersion
	return json.Marshal(s)
}

// checkVersion rejects a value written by a newer model.
func checkVersion(v int, key string) error {
	if v > directory.ModelVersion {
		return fmt.Errorf("natsjs: %s has version %d; this build reads up to %d: %w", key, v, directory.ModelVersion, directory.ErrInvalid)
	}
	return nil
}

// decodeEntry turns a bucket entry into a change of the directory.
func decodeEntry(e jetstream.KeyValueEntry) (directory.Change, error) {
	ch := directory.Change{Key: e.Key(), Revision: e.Revision()}
	kind, id, ok := directory.ParseKey(e.Key())
	if !ok {
		return ch, fmt.Errorf("natsjs: %q is not a directory key: %w", e.Key(), directory.ErrInvalid)
	}
	if e.Operation() != jetstream.KeyValuePut {
		ch.Deleted = true
		return ch, nil
	}
	switch kind {
	case directory.KindOrganisation:
		var o directory.Organisation
		if err := json.Unmarshal(e.Value(), &o); err != nil {
			return ch, fmt.Errorf("natsjs: decode %s: %w: %w", e.Key(), directory.ErrInvalid, err)
		}
		if err := checkVersion(o.Version, e.Key()); err != nil {
			return ch, err
		}
		if o.ID != id {
			return ch, fmt.Errorf("natsjs: %s holds organisation %q: %w", e.Key(), o.ID, directory.ErrInvalid)
		}
		ch.Org = &o
	case directory.KindService:
		var s directory.Service
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			return ch, fmt.Errorf("natsjs: decode %s: %w: %w", e.Key(), directory.ErrInvalid, err)
		}
		if err := checkVersion(s.Version, e.Key()); err != nil {
			return ch, err
		}
		if s.ID != id {
			return ch, fmt.Errorf("natsjs: %s holds service %q: %w", e.Key(), s.ID, directory.ErrInvalid)
		}
		ch.Service = &s
	}
	return ch, nil
}

// cas writes value at key: a create when expected is 0, else an update
// that succeeds only if the key's revision is expected.
func (s *DirectoryStore) cas(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	var rev uint64
	var err error
	if expected == 0 {
		rev, err = s.kv.Create(ctx, key, value)
	} else {
		rev, err = s.kv.Update(ctx, key, value, expected)
	}
	return rev, translate(err, key)
}

// PutOrganisation writes o: it creates the record when expectedRevision is
// 0 and otherwise replaces it only if its current revision is
// expectedRevision. It returns the new revision. Errors: a
// *directory.ValidationError (directory.ErrInvalid) for an invalid o, an
// error wrapping directory.ErrConflict when the record exists (create) or
// has another revision (update).
func (s *DirectoryStore) PutOrganisation(ctx context.Context, o *directory.Organisation, expectedRevision uint64) (uint64, error) {
	if err := directory.ValidateOrganisation(o); err != nil {
		return 0, err
	}
	val, err := encodeOrganisation(*o)
	if err != nil {
		return 0, fmt.Errorf("natsjs: encode organisation %s: %w", o.ID, err)
	}
	rev, err := s.cas(ctx, directory.OrgKey(o.ID), val, expectedRevision)
	if err != nil {
		return 0, err
	}
	s.emit(SubjectDirectoryOrganisation+o.ID, o.ID, &events.OrganisationUpdated{Organisation: o.ID, Revision: rev})
	return rev, nil
}

// PutService writes sv with the same compare-and-set rule as
// PutOrganisation. Its organisation must exist. Errors: a
// *directory.ValidationError for an invalid sv or a missing organisation
// (code unknown_reference), directory.ErrConflict as PutOrganisation.
func (s *DirectoryStore) PutService(ctx context.Context, sv *directory.Service, expectedRevision uint64) (uint64, error) {
	if err := directory.ValidateService(sv); err != nil {
		return 0, err
	}
	if _, _, err := s.GetOrganisation(ctx, sv.Organisation); errors.Is(err, directory.ErrNotFound) {
		return 0, &directory.ValidationError{Problems: []directory.Problem{{
			Pointer: "/organisation", Code: directory.CodeUnknownReference,
			Message: fmt.Sprintf("organisation %q is not in the directory", sv.Organisation),
		}}}
	} else if err != nil {
		return 0, err
	}
	return s.putService(ctx, sv, expectedRevision)
}

func (s *DirectoryStore) putService(ctx context.Context, sv *directory.Service, expectedRevision uint64) (uint64, error) {
	val, err := encodeService(*sv)
	if err != nil {
		return 0, fmt.Errorf("natsjs: encode service %s: %w", sv.ID, err)
	}
	rev, err := s.cas(ctx, directory.ServiceKey(sv.ID), val, expectedRevision)
	if err != nil {
		return 0, err
	}
	s.emit(SubjectDirectoryService+sv.ID, sv.ID, &events.ServiceUpdated{Service: sv.ID, Revision: rev})
	return rev, nil
}

// get reads the current entry of key.
func (s *DirectoryStore) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, translate(err, key)
	}
	return e, nil
}

// GetOrganisation returns the organisation with the id and its revision,
// or an error wrapping directory.ErrNotFound.
func (s *DirectoryStore) GetOrganisation(ctx context.Context, id string) (*directory.Organisation, uint64, error) {
	e, err := s.get(ctx, directory.OrgKey(id))
	if err != nil {
		return nil, 0, err
	}
	ch, err := decodeEntry(e)
	if err != nil || ch.Org == nil {
		return nil, 0, fmt.Errorf("natsjs: organisation %s: %w", id, errors.Join(err, directory.ErrInvalid))
	}
	return ch.Org, e.Revision(), nil
}

// GetService returns the service with the id and its revision, or an error
// wrapping directory.ErrNotFound.
func (s *DirectoryStore) GetService(ctx context.Context, id string) (*directory.Service, uint64, error) {
	e, err := s.get(ctx, directory.ServiceKey(id))
	if err != nil {
		return nil, 0, err
	}
	ch, err := decodeEntry(e)
	if err != nil || ch.Service == nil {
		return nil, 0, fmt.Errorf("natsjs: service %s: %w", id, errors.Join(err, directory.ErrInvalid))
	}
	return ch.Service, e.Revision(), nil
}

// del deletes key if its revision is expected.
func (s *DirectoryStore) del(ctx context.Context, key string, expected uint64) error {
	if expected == 0 {
		return fmt.Errorf("natsjs: delete %s: the expected revision is required: %w", key, directory.ErrInvalid)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	return translate(s.kv.Delete(ctx, key, jetstream.LastRevision(expected)), key)
}

// DeleteService deletes the service if its current revision is
// expectedRevision (required, non-zero). Errors: directory.ErrConflict for
// another revision, directory.ErrInvalid for a zero revision.
func (s *DirectoryStore) DeleteService(ctx context.Context, id string, expectedRevision uint64) error {
	if err := s.del(ctx, directory.ServiceKey(id), expectedRevision); err != nil {
		return err
	}
	s.emit(SubjectDirectoryService+id, id, &events.ServiceUpdated{Service: id, Deleted: true})
	return nil
}

// DeleteOrganisation deletes the organisation if its current revision is
// expectedRevision, after deleting its services (each at its current
// revision). It checks the organisation's revision first, so a stale call
// deletes nothing; a service changed concurrently makes it stop with
// directory.ErrConflict.
func (s *DirectoryStore) DeleteOrganisation(ctx context.Context, id string, expectedRevision uint64) error {
	key := directory.OrgKey(id)
	e, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	if e.Revision() != expectedRevision {
		return fmt.Errorf("natsjs: %s is at revision %d, not %d: %w", key, e.Revision(), expectedRevision, directory.ErrConflict)
	}
	svcs, err := s.ServiceRevisions(ctx, id)
	if err != nil {
		return err
	}
	for sid, rev := range svcs {
		if err := s.DeleteService(ctx, sid, rev); err != nil {
			return err
		}
	}
	if err := s.del(ctx, key, expectedRevision); err != nil {
		return err
	}
	s.emit(SubjectDirectoryOrganisation+id, id, &events.OrganisationUpdated{Organisation: id, Deleted: true})
	return nil
}

// ServiceRevisions returns the current revision of every stored service of
// the organisation, by service id (empty when it has none).
func (s *DirectoryStore) ServiceRevisions(ctx context.Context, orgID string) (map[string]uint64, error) {
	all, err := s.entries(ctx, directory.ServiceKey(orgID)+".*")
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(all))
	for _, e := range all {
		if _, id, ok := directory.ParseKey(e.Key()); ok {
			out[id] = e.Revision()
		}
	}
	return out, nil
}

// SetCapacity sets the capacity status (accepting, waitlist or full) of a
// service and its timestamp, reading the record and writing it back with
// compare-and-set; when another writer wins in between it reads again, at
// most CASRetries times. It returns the new revision. Errors:
// directory.ErrInvalid for an unknown status, directory.ErrNotFound, and
// directory.ErrConflict when every attempt lost.
func (s *DirectoryStore) SetCapacity(ctx context.Context, serviceID, status string) (uint64, error) {
	if !slices.Contains(events.CapacityStatuses, status) {
		return 0, fmt.Errorf("natsjs: capacity %q is not one of %v: %w", status, events.CapacityStatuses, directory.ErrInvalid)
	}
	var lastErr error
	for range s.cfg.CASRetries {
		sv, rev, err := s.GetService(ctx, serviceID)
		if err != nil {
			return 0, err
		}
		now := s.cfg.Now().UTC()
		sv.Capacity.Status = status
		sv.Capacity.UpdatedAt = now
		sv.UpdatedAt = now
		val, err := encodeService(*sv)
		if err != nil {
			return 0, fmt.Errorf("natsjs: encode service %s: %w", serviceID, err)
		}
		newRev, err := s.cas(ctx, directory.ServiceKey(serviceID), val, rev)
		if err == nil {
			s.emit(SubjectDirectoryCapacity+serviceID, serviceID, &events.CapacityUpdated{Service: serviceID, Status: status, Revision: newRev})
			return newRev, nil
		}
		if !errors.Is(err, directory.ErrConflict) {
			return 0, err
		}
		lastErr = err
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("natsjs: set capacity of %s: %w", serviceID, err)
		}
	}
	return 0, fmt.Errorf("natsjs: set capacity of %s: gave up after %d attempts: %w", serviceID, s.cfg.CASRetries, lastErr)
}

// emit publishes a change event on core NATS. A failure is logged, not
// returned: the write it reports has succeeded and the bucket's watchers
// see it anyway.
func (s *DirectoryStore) emit(subject, id string, p events.Payload) {
	e, err := events.New(s.cfg.Source, id, p)
	if err == nil {
		var m events.Message
		if m, err = events.ToNATS(subject, e); err == nil {
			err = s.nc.PublishMsg(&nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data})
		}
	}
	if err != nil {
		s.cfg.Logger.Warn("directory event not published", slog.String("subject", subject), slog.String("error", err.Error()))
	}
}

// entries returns the current (not deleted) entries whose keys match the
// filter, read with a watcher that stops after the initial values.
func (s *DirectoryStore) entries(ctx context.Context, filter string) ([]jetstream.KeyValueEntry, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	w, err := s.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("natsjs: watch %s: %w", filter, err)
	}
	defer stopWatcher(w)
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("natsjs: watch %s: the watcher closed", filter)
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, fmt.Errorf("natsjs: read %s: %w", filter, ctx.Err())
		}
	}
}

// stopWatcher stops w and drains its channel in the background, so that a
// delivery blocked on the full channel can finish and the subscription
// close.
func stopWatcher(w jetstream.KeyWatcher) {
	go func() {
		for range w.Updates() {
		}
	}()
	_ = w.Stop()
}

// Load reads the whole directory and returns it sorted by id, with the
// bucket revision it reflects (the largest revision read; 0 when empty).
// A value that cannot be decoded makes it fail with directory.ErrInvalid.
func (s *DirectoryStore) Load(ctx context.Context) (*directory.Directory, uint64, error) {
	all, err := s.entries(ctx, ">")
	if err != nil {
		return nil, 0, err
	}
	d := &directory.Directory{}
	var rev uint64
	for _, e := range all {
		rev = max(rev, e.Revision())
		ch, err := decodeEntry(e)
		if err != nil {
			return nil, 0, err
		}
		switch {
		case ch.Org != nil:
			d.Organisations = append(d.Organisations, *ch.Org)
		case ch.Service != nil:
			d.Services = append(d.Services, *ch.Service)
		}
	}
	d.Sort()
	return d, rev, nil
}

// ImportResult counts what ImportDirectory did.
type ImportResult struct {
	Created   int    `json:"created"`
	Updated   int    `json:"updated"`
	Unchanged int    `json:"unchanged"`
	Revision  uint64 `json:"revision"` // the largest revision written (0 if none)
}

// ImportDirectory writes every organisation, then every service of d:
// records that are new are created, records that differ are updated with
// compare-and-set on the revision read at the start, equal records are
// left alone. Records of the bucket that d does not hold are kept. d is
// validated as a whole first and nothing is written if it is invalid (a
// *directory.ValidationError). progress, if not nil, is called after each
// record with the number done and the total, from one goroutine at a
// time. A record changed by someone else during the import stops it with
// an error wrapping directory.ErrConflict; what was written stays.
func (s *DirectoryStore) ImportDirectory(ctx context.Context, d *directory.Directory, progress func(done, total int)) (ImportResult, error) {
	var res ImportResult
	if err := d.Validate(); err != nil {
		return res, err
	}
	current, err := s.entries(ctx, ">")
	if err != nil {
		return res, err
	}
	type cur struct {
		rev uint64
		val []byte
	}
	have := make(map[string]cur, len(current))
	for _, e := range current {
		have[e.Key()] = cur{e.Revision(), e.Value()}
	}

	total := len(d.Organisations) + len(d.Services)
	var mu sync.Mutex
	done := 0
	record := func(created, updated bool, rev uint64) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case created:
			res.Created++
		case updated:
			res.Updated++
		default:
			res.Unchanged++
		}
		res.Revision = max(res.Revision, rev)
		done++
		if progress != nil {
			progress(done, total)
		}
	}
	put := func(ctx context.Context, key string, val []byte, emit func(rev uint64)) error {
		c, exists := have[key]
		if exists && bytes.Equal(c.val, val) {
			record(false, false, 0)
			return nil
		}
		rev, err := s.cas(ctx, key, val, c.rev)
		if err != nil {
			return err
		}
		emit(rev)
		record(!exists, exists, rev)
		return nil
	}

	var orgJobs []func(context.Context) error
	for i := range d.Organisations {
		o := &d.Organisations[i]
		val, err := encodeOrganisation(*o)
		if err != nil {
			return res, fmt.Errorf("natsjs: encode organisation %s: %w", o.ID, err)
		}
		orgJobs = append(orgJobs, func(ctx context.Context) error {
			return put(ctx, directory.OrgKey(o.ID), val, func(rev uint64) {
				s.emit(SubjectDirectoryOrganisation+o.ID, o.ID, &events.OrganisationUpdated{Organisation: o.ID, Revision: rev})
			})
		})
	}
	if err := s.runJobs(ctx, orgJobs); err != nil {
		return res, err
	}
	var svcJobs []func(context.Context) error
	for i := range d.Services {
		sv := &d.Services[i]
		val, err := encodeService(*sv)
		if err != nil {
			return res, fmt.Errorf("natsjs: encode service %s: %w", sv.ID, err)
		}
		svcJobs = append(svcJobs, func(ctx context.Context) error {
			return put(ctx, directory.ServiceKey(sv.ID), val, func(rev uint64) {
				s.emit(SubjectDirectoryService+sv.ID, sv.ID, &events.ServiceUpdated{Service: sv.ID, Revision: rev})
			})
		})
	}
	err = s.runJobs(ctx, svcJobs)
	return res, err
}

// runJobs runs jobs on ImportWorkers goroutines and returns the first
// error; after an error no new job starts.
func (s *DirectoryStore) runJobs(ctx context.Context, jobs []func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan func(context.Context) error)
	var wg sync.WaitGroup
	for range min(s.cfg.ImportWorkers, len(jobs)) {
		wg.Go(func() {
			for job := range next {
				if err := job(ctx); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, job := range jobs {
		select {
		case next <- job:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// DirectoryFollower keeps a directory.View current with the bucket: it
// loads every record at start, then applies every change as the bucket's
// watcher reports it, in revision order, within milliseconds. Create one
// with [NewDirectoryFollower] and call Run.
type DirectoryFollower struct {
	kv     jetstream.KeyValue
	view   *directory.View
	logger *slog.Logger
	ready  chan struct{}
}

// NewDirectoryFollower returns a follower that keeps view current with kv
// (the [BucketDirectory] bucket). logger receives decode failures (keys,
// never values); nil discards them.
func NewDirectoryFollower(kv jetstream.KeyValue, view *directory.View, logger *slog.Logger) *DirectoryFollower {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DirectoryFollower{kv: kv, view: view, logger: logger, ready: make(chan struct{})}
}

// Ready is closed once the initial content of the bucket is in the view.
func (f *DirectoryFollower) Ready() <-chan struct{} { return f.ready }

// WatchDirectory keeps view current with kv until ctx ends; it is
// NewDirectoryFollower(kv, view, nil).Run(ctx).
func WatchDirectory(ctx context.Context, kv jetstream.KeyValue, view *directory.View) error {
	return NewDirectoryFollower(kv, view, nil).Run(ctx)
}

// Run watches the bucket until ctx ends, then returns nil. It first loads
// the latest value of every key into the view (directory.View.Load, then
// Ready is closed), then applies each later change (directory.View.Apply),
// several at once when they arrive faster than they are applied, and
// compacts the view's index once the bucket has been quiet for
// [FollowerCompactAfter]. A value that cannot be decoded is logged and
// skipped. It returns an error if the watch cannot start or the watcher
// closes (the connection closed).
func (f *DirectoryFollower) Run(ctx context.Context) error {
	w, err := f.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("natsjs: watch bucket %s: %w", BucketDirectory, err)
	}
	defer stopWatcher(w)

	initial := &directory.Directory{}
	var initialRev uint64
	loading := true
	compact := time.NewTimer(FollowerCompactAfter)
	compact.Stop()
	defer compact.Stop()
	batch := make([]directory.Change, 0, 64)

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-compact.C:
			f.view.Compact()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("natsjs: watch bucket %s: the watcher closed", BucketDirectory)
			}
			if loading {
				if e == nil {
					f.view.Load(initial, initialRev)
					initial, loading = nil, false
					close(f.ready)
					continue
				}
				initialRev = max(initialRev, e.Revision())
				ch, ok := f.decode(e)
				switch {
				case !ok || ch.Deleted:
				case ch.Org != nil:
					initial.Organisations = append(initial.Organisations, *ch.Org)
				case ch.Service != nil:
					initial.Services = append(initial.Services, *ch.Service)
				}
				continue
			}
			batch = batch[:0]
			batch = f.appendChange(batch, e)
		drain:
			for len(batch) < followerBatchMax {
				select {
				case e, ok := <-w.Updates():
					if !ok {
						break drain
					}
					batch = f.appendChange(batch, e)
				default:
					break drain
				}
			}
			f.view.Apply(batch...)
			if f.view.Snapshot().Pending() > 0 {
				compact.Reset(FollowerCompactAfter)
			}
		}
	}
}

// appendChange decodes e and appends it to batch; an undecodable value is
// logged and becomes a deletion of its key, so the view never keeps a value
// the bucket no longer holds.
func (f *DirectoryFollower) appendChange(batch []directory.Change, e jetstream.KeyValueEntry) []directory.Change {
	if e == nil {
		return batch
	}
	ch, ok := f.decode(e)
	if !ok {
		ch = directory.Change{Key: e.Key(), Revision: e.Revision(), Deleted: true}
	}
	return append(batch, ch)
}

func (f *DirectoryFollower) decode(e jetstream.KeyValueEntry) (directory.Change, bool) {
	ch, err := decodeEntry(e)
	if err != nil {
		f.logger.Error("directory record skipped", slog.String("key", e.Key()), slog.Uint64("revision", e.Revision()), slog.String("error", err.Error()))
		return ch, false
	}
	return ch, true
}
