package console

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
)

// identityKeyPrefix is where the HTTP API's PUT /v1/keys/identity keeps an
// organisation's wrapped identity in the keys bucket: "identity.<org>",
// a JSON object with "wrapped_identity".
const identityKeyPrefix = "identity."

// identity serves GET /console/keys/identity: the signed-in caseworker's
// organisation's age identity, wrapped by the organisation's passphrase
// (the server cannot open it), for her browser to unlock and open the
// case files handed over to the organisation. The answer is JSON, as the
// API's: {"wrapped_identity": "..."} or {"error": code, "message": ...}.
func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
	}
	ss, u, err := s.loadSession(r)
	if err != nil || ss.Stage != StageFull || !u.Role.Refers() {
		fail(http.StatusUnauthorized, "unauthorized", "sign in to the console first")
		return
	}
	if s.deps.Keys == nil {
		fail(http.StatusServiceUnavailable, "unavailable", "this node keeps no keys")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
	defer cancel()
	b, err := s.deps.Keys.Get(ctx, identityKeyPrefix+u.Org)
	if errors.Is(err, fs.ErrNotExist) {
		fail(http.StatusNotFound, "not_found", "no wrapped identity is stored for organisation "+u.Org)
		return
	}
	var wi struct {
		WrappedIdentity string `json:"wrapped_identity"`
	}
	if err == nil {
		err = json.Unmarshal(b, &wi)
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "console: reading the wrapped identity", "error", err)
		fail(http.StatusServiceUnavailable, "unavailable", "the key store cannot be read now")
		return
	}
	s.auditLine(r.Context(), u, "key_fetched", "", "")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"wrapped_identity": wi.WrappedIdentity})
}
