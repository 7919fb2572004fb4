package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/invictus-network/invictus/events"
)

// WrappedIdentityMax bounds the armored, passphrase-wrapped identity an
// organisation stores (an age key file is under 200 bytes; wrapped and
// armored, under 1 KiB).
const WrappedIdentityMax = events.WrappedIdentityMax

// keyPrefix is the key prefix of wrapped identities in the Keys store:
// "identity.<org>".
const keyPrefix = "identity."

// WrappedIdentity is the body of GET and PUT /v1/keys/identity: the
// organisation's age identity (its key file), encrypted by the browser
// with a passphrase (an age file whose only recipient stanza is scrypt),
// ASCII-armored. The server stores it and cannot open it.
type WrappedIdentity struct {
	WrappedIdentity string    `json:"wrapped_identity"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// getIdentity serves GET /v1/keys/identity: the caller's organisation's
// wrapped identity, for its caseworkers' browsers to unlock.
func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request, who Token) error {
	if s.deps.Keys == nil {
		return unavailable("the key store")
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	b, err := s.deps.Keys.Get(ctx, keyPrefix+who.Org)
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, CodeNotFound,
			"no wrapped identity is stored for organisation %s: its administrator stores one with PUT /v1/keys/identity (the opener page does it in the browser)", who.Org)
	}
	if err != nil {
		return err
	}
	var wi WrappedIdentity
	if err := json.Unmarshal(b, &wi); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, wi)
	return nil
}

// putIdentity serves PUT /v1/keys/identity: stores (or replaces) the
// caller's organisation's wrapped identity. Anything but an age file
// sealed to a passphrase alone is refused, so that a plain identity never
// reaches the server by mistake.
func (s *Server) putIdentity(w http.ResponseWriter, r *http.Request, who Token) error {
	if s.deps.Keys == nil {
		return unavailable("the key store")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, WrappedIdentityMax+1024))
	if err != nil {
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "the body may hold at most %d bytes", WrappedIdentityMax+1024)
	}
	var in WrappedIdentity
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return &Error{Status: http.StatusBadRequest, Problems: []Problem{{Pointer: "", Code: "malformed_json",
			Message: `the body must be {"wrapped_identity": "-----BEGIN AGE ENCRYPTED FILE-----..."}`}}}
	}
	if err := CheckWrappedIdentity(in.WrappedIdentity); err != nil {
		return &Error{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Pointer: "/wrapped_identity", Code: "invalid", Message: err.Error()}}}
	}
	in.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Second)
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	if err := s.deps.Keys.Put(ctx, keyPrefix+who.Org, b); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

// CheckWrappedIdentity is [events.CheckWrappedIdentity]: the console
// stores wrapped identities too, under the same rule.
func CheckWrappedIdentity(s string) error { return events.CheckWrappedIdentity(s) }
