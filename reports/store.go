package reports

import (
	"encoding/gob"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/invictus-network/invictus/events"
)

// snapshotVersion is the format of [Store.Snapshot]; a snapshot of
// another version is refused by [Store.Restore], and the model is built
// again from the log.
const snapshotVersion = 1

// snapshot is what [Store.Snapshot] writes.
type snapshot struct {
	Version int
	Seq     uint64
	Events  uint64
	Dims    []dims
	Facts   []fact
	Cells   []cell
	Syms    []string
	Refs    map[string]*open
}

// Store is a [Model] safe for concurrent use: one writer applies the log,
// readers ask for reports.
type Store struct {
	mu sync.RWMutex
	m  *Model
}

// NewStore returns a store over an empty model.
func NewStore(cfg Config) *Store { return &Store{m: New(cfg)} }

// Apply applies one event at stream sequence seq (see [Model.Apply]).
func (s *Store) Apply(seq uint64, env *events.Envelope) {
	s.mu.Lock()
	s.m.Apply(seq, env)
	s.mu.Unlock()
}

// Sequence returns the stream sequence of the last event applied.
func (s *Store) Sequence() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.seq
}

// Events returns how many events the model has applied since it was
// built, snapshots included.
func (s *Store) Events() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.events
}

// Report computes a report (see [Model.Report]).
func (s *Store) Report(name string, sc Scope, f Filter, now time.Time) (*Table, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m.Report(name, sc, f, now)
}

// Snapshot writes the model and the sequence it reached to w.
func (s *Store) Snapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.m
	return gob.NewEncoder(w).Encode(snapshot{Version: snapshotVersion, Seq: m.seq, Events: m.events,
		Dims: m.dims, Facts: m.facts, Cells: m.cells, Syms: m.syms, Refs: m.refs})
}

// Restore replaces the model with the snapshot read from r. It returns an
// error, and changes nothing, when r is not a snapshot of this version.
func (s *Store) Restore(r io.Reader) error {
	var sn snapshot
	if err := gob.NewDecoder(r).Decode(&sn); err != nil {
		return fmt.Errorf("reports: snapshot: %w", err)
	}
	if sn.Version != snapshotVersion {
		return fmt.Errorf("reports: snapshot version %d, want %d", sn.Version, snapshotVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := New(s.m.cfg)
	m.seq, m.events, m.dims, m.facts, m.cells = sn.Seq, sn.Events, sn.Dims, sn.Facts, sn.Cells
	if sn.Refs != nil {
		m.refs = sn.Refs
		for _, r := range m.refs {
			if r.Last == 0 { // a snapshot from before Last was kept
				r.Last = r.Requested
			}
		}
	}
	for i, d := range m.dims {
		m.dims[i] = dims{Day: d.Day, Referrer: m.intern(d.Referrer), Country: m.intern(d.Country), Region: m.intern(d.Region),
			Needs: d.Needs, Crimes: d.Crimes, Flags: d.Flags, Channels: d.Channels, AgeBand: m.intern(d.AgeBand),
			Gender: m.intern(d.Gender), Languages: m.intern(d.Languages), CrossBorder: d.CrossBorder}
		m.dimIdx[m.dims[i]] = uint32(i)
	}
	for _, s := range sn.Syms {
		m.sym(s)
	}
	if len(m.syms) != len(sn.Syms) {
		return fmt.Errorf("reports: snapshot symbols repeat")
	}
	for i, f := range m.facts {
		if f.A >= uint32(len(m.syms)) || f.B >= uint32(len(m.syms)) || f.C >= uint32(len(m.syms)) || f.Dims >= uint32(len(m.dims)) {
			return fmt.Errorf("reports: snapshot fact %d out of range", i)
		}
		m.factIx[f] = uint32(i)
	}
	s.m = m
	return nil
}
