package console

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/invictus-network/invictus/events"
)

// keyData is the page where an organisation administrator stores the
// organisation's passphrase-wrapped age identity.
type keyData struct {
	// Recipient is the organisation's age recipient in the directory.
	Recipient string
	// StoredAt is when a wrapped identity was last stored; zero when none.
	StoredAt    time.Time
	Stored      bool
	Unavailable bool
	Errors      fieldErrors
	Done        string
}

// storedIdentity is the keys bucket's value, as the HTTP API's PUT
// /v1/keys/identity writes it.
type storedIdentity struct {
	WrappedIdentity string    `json:"wrapped_identity"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// keyPage shows whether the organisation's wrapped identity is stored and
// stores a new one. The browser wraps the identity with the passphrase
// (static/casefile.js, with the vendored age) before the form is posted:
// the identity and the passphrase fields have no name, only the wrapped
// file travels, and the node refuses anything it could open
// ([events.CheckWrappedIdentity]). Every store is audited.
func (s *Server) keyPage(_ http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("key.title")
	rq.pg.Section = "key"
	rq.pg.Seal = true
	org := rq.user.Org
	d := &keyData{Errors: fieldErrors{}, Unavailable: s.deps.Keys == nil}
	rq.pg.Data = d
	if o := s.deps.Directory.Snapshot().Organisation(org); o != nil {
		d.Recipient = o.AgeRecipient
	}
	if d.Unavailable {
		return "key", http.StatusOK, nil
	}
	status := http.StatusOK
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	if r.Method == http.MethodPost {
		status = s.storeKey(ctx, r, rq, d)
	}
	b, err := s.deps.Keys.Get(ctx, identityKeyPrefix+org)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "key", 0, err
	default:
		var si storedIdentity
		if err := json.Unmarshal(b, &si); err == nil {
			d.Stored, d.StoredAt = true, si.UpdatedAt
		}
	}
	return "key", status, nil
}

// storeKey checks and stores the posted wrapped identity; it returns the
// page's status.
func (s *Server) storeKey(ctx context.Context, r *http.Request, rq *request, d *keyData) int {
	wrapped := r.PostFormValue("wrapped")
	if wrapped == "" {
		d.Errors["key-identity"] = []string{rq.p.T("key.nojs")}
		return http.StatusUnprocessableEntity
	}
	if err := events.CheckWrappedIdentity(wrapped); err != nil {
		s.auditLine(r.Context(), rq.user, "key_refused", "", "")
		d.Errors["key-identity"] = []string{rq.p.T("key.refused", err.Error())}
		return http.StatusUnprocessableEntity
	}
	b, err := json.Marshal(storedIdentity{WrappedIdentity: wrapped, UpdatedAt: s.cfg.Now().UTC().Truncate(time.Second)})
	if err == nil {
		err = s.deps.Keys.Put(ctx, identityKeyPrefix+rq.user.Org, b)
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "console: storing the wrapped identity", "error", err)
		d.Errors["key"] = []string{rq.p.T("key.failed")}
		return http.StatusServiceUnavailable
	}
	s.auditLine(r.Context(), rq.user, "key_stored", "", "")
	d.Done = rq.p.T("key.stored")
	return http.StatusOK
}
