package console

import (
	"bytes"
	"errors"
	"image/png"
	"net/http"
	"strings"

	"github.com/pquerna/otp"
)

// signInData is what the sign-in pages show.
type signInData struct {
	Username string
	Error    string
	Notice   string
	Secret   string // enrolment: the key to type into an app
	Invite   *Invite
	OrgName  string
	Errors   fieldErrors
}

// signIn shows the sign-in form and checks a name and password.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("signin.title")
	rq.pg.CSRF = s.preToken(w, r)
	d := &signInData{}
	rq.pg.Data = d
	if r.URL.Query().Get("expired") == "1" {
		d.Notice = rq.p.T("signin.expired")
	}
	if r.URL.Query().Get("out") == "1" {
		d.Notice = rq.p.T("signin.out")
	}
	if r.Method != http.MethodPost {
		return "signin", http.StatusOK, nil
	}
	if !checkCSRF(r, rq.pg.CSRF) {
		d.Error = rq.p.T("error.csrf")
		return "signin", http.StatusForbidden, nil
	}
	d.Username = r.PostFormValue("username")
	if !s.allow(r) {
		d.Error = rq.p.T("signin.slow_down")
		w.Header().Set("Retry-After", "60")
		return "signin", http.StatusTooManyRequests, nil
	}
	u, err := s.accts.CheckPassword(r.Context(), d.Username, r.PostFormValue("password"))
	switch {
	case errors.Is(err, ErrLocked):
		d.Error = rq.p.T("signin.locked")
		return "signin", http.StatusForbidden, nil
	case errors.Is(err, ErrBadCredentials):
		d.Error = rq.p.T("signin.wrong")
		return "signin", http.StatusUnauthorized, nil
	case err != nil:
		return "signin", 0, err
	}
	stage := StageFull
	switch {
	case u.Enrolled():
		stage = StageCode
	case u.Role.CaseData() || u.Role == RoleDirectoryAdmin:
		// A directory administrator sees no case data, but the
		// organisations she approves receive it: her account is guarded
		// as well.
		stage = StageEnrol
	}
	if _, err := s.newSession(w, r, u, stage); err != nil {
		return "signin", 0, err
	}
	lang := rq.lang
	next := map[string]string{StageCode: "/code", StageEnrol: "/enrol", StageFull: "/"}[stage]
	http.Redirect(w, r, Prefix+lang+next, http.StatusSeeOther)
	return "", 0, nil
}

// halfSession returns the session of a person between password and code.
func (s *Server) halfSession(w http.ResponseWriter, r *http.Request, rq *request, stage string) (*session, *User, bool) {
	ss, u, err := s.loadSession(r)
	if err != nil || ss.Stage != stage {
		http.Redirect(w, r, Prefix+rq.lang+"/signin?expired=1", http.StatusSeeOther)
		return nil, nil, false
	}
	rq.pg.CSRF = ss.CSRF
	return ss, u, true
}

// code asks for the second factor.
func (s *Server) code(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("code.title")
	ss, u, ok := s.halfSession(w, r, rq, StageCode)
	if !ok {
		return "", 0, nil
	}
	d := &signInData{}
	rq.pg.Data = d
	if r.Method != http.MethodPost {
		return "code", http.StatusOK, nil
	}
	if !checkCSRF(r, ss.CSRF) {
		d.Error = rq.p.T("error.csrf")
		return "code", http.StatusForbidden, nil
	}
	if !s.allow(r) {
		d.Error = rq.p.T("signin.slow_down")
		return "code", http.StatusTooManyRequests, nil
	}
	if _, err := s.accts.CheckCode(r.Context(), u.Username, "", r.PostFormValue("code")); err != nil {
		if errors.Is(err, ErrLocked) {
			s.endSession(w, r, ss)
			d.Error = rq.p.T("signin.locked")
			return "code", http.StatusForbidden, nil
		}
		if errors.Is(err, ErrBadCredentials) {
			d.Error = rq.p.T("code.wrong")
			return "code", http.StatusUnauthorized, nil
		}
		return "code", 0, err
	}
	return s.upgrade(w, r, rq, ss, u)
}

// upgrade replaces a half session by a full one (a new id: the old one
// may have been seen before the second factor).
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, rq *request, ss *session, u *User) (string, int, error) {
	s.endSession(w, r, ss)
	u, err := s.accts.Get(r.Context(), u.Username)
	if err != nil {
		return "", 0, err
	}
	if _, err := s.newSession(w, r, u, StageFull); err != nil {
		return "", 0, err
	}
	s.auditLine(r.Context(), u, "signin", "", "")
	lang := rq.lang
	if u.Lang != "" {
		lang = u.Lang
	}
	http.Redirect(w, r, Prefix+lang+"/", http.StatusSeeOther)
	return "", 0, nil
}

// enrol sets up the second factor at the first sign-in.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("enrol.title")
	ss, u, ok := s.halfSession(w, r, rq, StageEnrol)
	if !ok {
		return "", 0, nil
	}
	if ss.Enrol == "" {
		key, err := NewTOTPKey(u.Username)
		if err != nil {
			return "enrol", 0, err
		}
		ss.Enrol = key.Secret()
		if err := s.saveSession(r.Context(), ss); err != nil {
			return "enrol", 0, err
		}
	}
	d := &signInData{Secret: groupsOf4(ss.Enrol)}
	rq.pg.Data = d
	if r.Method != http.MethodPost {
		return "enrol", http.StatusOK, nil
	}
	if !checkCSRF(r, ss.CSRF) {
		d.Error = rq.p.T("error.csrf")
		return "enrol", http.StatusForbidden, nil
	}
	if _, err := s.accts.CheckCode(r.Context(), u.Username, ss.Enrol, r.PostFormValue("code")); err != nil {
		if errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrLocked) {
			d.Error = rq.p.T("code.wrong")
			return "enrol", http.StatusUnauthorized, nil
		}
		return "enrol", 0, err
	}
	return s.upgrade(w, r, rq, ss, u)
}

// groupsOf4 spaces a key for reading aloud or typing.
func groupsOf4(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// enrolImage serves the enrolment key as a QR code, to the session that
// enrols only.
func (s *Server) enrolImage(w http.ResponseWriter, r *http.Request) {
	ss, u, err := s.loadSession(r)
	if err != nil || ss.Stage != StageEnrol || ss.Enrol == "" {
		http.NotFound(w, r)
		return
	}
	key, err := otp.NewKeyFromURL("otpauth://totp/INVICTUS:" + u.Username + "?secret=" + ss.Enrol + "&issuer=INVICTUS")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	img, err := key.Image(240, 240)
	if err != nil {
		s.fail(w, r, "enrol.png", err)
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		s.fail(w, r, "enrol.png", err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// signOut ends this session, or every session of the person.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	if r.PostFormValue("everywhere") == "yes" {
		if err := s.accts.EndSessions(r.Context(), rq.user.Username); err != nil {
			return "", 0, err
		}
		s.auditLine(r.Context(), rq.user, "signout_everywhere", "", "")
	}
	s.endSession(w, r, rq.ss)
	http.Redirect(w, r, Prefix+rq.lang+"/signin?out=1", http.StatusSeeOther)
	return "", 0, nil
}

// invite lets an invited person choose her name and password.
func (s *Server) invite(w http.ResponseWriter, r *http.Request, rq *request) (string, int, error) {
	rq.pg.Title = rq.p.T("invite.title")
	rq.pg.CSRF = s.preToken(w, r)
	secret := r.PathValue("secret")
	inv, err := s.accts.PeekInvite(r.Context(), secret)
	if errors.Is(err, ErrInviteInvalid) {
		rq.pg.Data = messageData{Text: rq.p.T("invite.invalid")}
		return "message", http.StatusNotFound, nil
	}
	if err != nil {
		return "message", 0, err
	}
	d := &signInData{Invite: inv, OrgName: s.orgName(inv.Org), Username: inv.Username, Errors: fieldErrors{}}
	rq.pg.Data = d
	if r.Method != http.MethodPost {
		return "invite", http.StatusOK, nil
	}
	if !checkCSRF(r, rq.pg.CSRF) {
		d.Error = rq.p.T("error.csrf")
		return "invite", http.StatusForbidden, nil
	}
	if inv.Username == "" {
		d.Username = r.PostFormValue("username")
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		d.Errors["password2"] = []string{rq.p.T("invite.mismatch")}
		return "invite", http.StatusUnprocessableEntity, nil
	}
	_, err = s.accts.RedeemInvite(r.Context(), secret, d.Username, pw)
	switch {
	case errors.Is(err, ErrWeakPassword):
		d.Errors["password"] = []string{rq.p.T("invite.weak", MinPasswordLength)}
	case errors.Is(err, ErrBadUsername):
		d.Errors["username"] = []string{rq.p.T("invite.bad_name")}
	case errors.Is(err, ErrUserExists):
		d.Errors["username"] = []string{rq.p.T("invite.taken")}
	case err != nil:
		return "invite", 0, err
	default:
		http.Redirect(w, r, Prefix+rq.lang+"/signin?created=1", http.StatusSeeOther)
		return "", 0, nil
	}
	return "invite", http.StatusUnprocessableEntity, nil
}
