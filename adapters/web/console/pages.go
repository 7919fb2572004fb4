package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/invictus-network/invictus/adapters/web"
)

// request is what a page handler gets.
type request struct {
	lang string
	p    web.Printer
	pg   *pageData
	ss   *session
	user *User
}

// pageData is what every template gets.
type pageData struct {
	Lang    string
	Nonce   string
	Title   string
	Section string
	Draft   bool
	ExitURL template.URL
	Langs   []web.LangLink
	// User is the signed-in person (nil on the sign-in pages); CSRF the
	// token of her forms.
	User    *User
	OrgName string
	CSRF    string
	Flash   string
	Live    bool
	// Seal loads the scripts that seal and open case files in the
	// browser (the referral page).
	Seal bool
	Data any
}

// handler is a page: it fills rq.pg and returns the view and status; a
// redirect returns the view "" after writing it.
type handler func(w http.ResponseWriter, r *http.Request, rq *request) (view string, status int, err error)

// access says who may open a page.
type access int

const (
	anyone   access = iota // sign-in pages
	signedIn               // any role, second factor done
	refers                 // caseworkers and organisation administrators
	orgAdmin               // organisation administrators
	dirAdmin               // directory administrators
)

// routes registers the pages of every language under /console/<lang>/.
func (s *Server) routes() {
	for _, lang := range web.Languages {
		p := Prefix + lang
		s.mux.HandleFunc(p+"/signin", s.page(lang, anyone, s.signIn))
		s.mux.HandleFunc(p+"/code", s.page(lang, anyone, s.code))
		s.mux.HandleFunc(p+"/enrol", s.page(lang, anyone, s.enrol))
		s.mux.HandleFunc(p+"/invite/{secret}", s.page(lang, anyone, s.invite))
		s.mux.HandleFunc("POST "+p+"/signout", s.page(lang, signedIn, s.signOut))
		s.mux.HandleFunc("GET "+p+"/{$}", s.page(lang, signedIn, s.home))
		s.mux.HandleFunc(p+"/assess", s.page(lang, refers, s.assess))
		s.mux.HandleFunc("POST "+p+"/send", s.page(lang, refers, s.send))
		s.mux.HandleFunc("GET "+p+"/referrals/{id}", s.page(lang, refers, s.referral))
		s.mux.HandleFunc("POST "+p+"/referrals/{id}", s.page(lang, refers, s.act))
		s.mux.HandleFunc(p+"/people", s.page(lang, orgAdmin, s.people))
		s.mux.HandleFunc("GET "+p+"/audit", s.page(lang, orgAdmin, s.audit))
		s.reportRoutes(p, lang)
		s.mux.HandleFunc(p+"/feedback", s.page(lang, anyone, s.survey))
		s.mux.HandleFunc("POST "+p+"/referrals/{id}/feedback-link", s.page(lang, refers, s.feedbackLink))
		s.mux.HandleFunc(p+"/listing", s.page(lang, orgAdmin, s.listing))
		s.mux.HandleFunc(p+"/listing/edit", s.page(lang, orgAdmin, s.listingEdit))
		s.mux.HandleFunc(p+"/key", s.page(lang, orgAdmin, s.keyPage))
		s.mux.HandleFunc(p+"/organisations", s.page(lang, dirAdmin, s.approvals))
		s.failureRoutes(p, lang)
	}
	s.mux.HandleFunc("GET "+Prefix+"events", s.events)
	s.mux.HandleFunc("GET "+Prefix+"keys/identity", s.identity)
	s.mux.HandleFunc("GET "+Prefix+"static/{file}", s.serveStatic)
	s.mux.HandleFunc("GET "+Prefix+"enrol.png", s.enrolImage)
	s.mux.HandleFunc("GET "+Prefix+"invite/{secret}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+web.Negotiate(r.Header.Get("Accept-Language"))+"/invite/"+r.PathValue("secret"), http.StatusFound)
	})
	s.mux.HandleFunc(Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		lang := web.Negotiate(r.Header.Get("Accept-Language"))
		if _, u, err := s.loadSession(r); err == nil && u.Lang != "" {
			lang = u.Lang
		}
		w.Header().Set("Vary", "Accept-Language, Cookie")
		http.Redirect(w, r, Prefix+lang+"/", http.StatusFound)
	})
	s.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		s.page(web.Negotiate(r.Header.Get("Accept-Language")), anyone, func(_ http.ResponseWriter, _ *http.Request, rq *request) (string, int, error) {
			rq.pg.Title = rq.p.T("notfound.title")
			return "message", http.StatusNotFound, nil
		})(w, r)
	})
}

// page wraps a handler: method and form, session and role, CSRF on every
// post, the nonce, rendering in the layout.
func (s *Server) page(lang string, acc access, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		rq := &request{lang: lang, p: s.cat.Printer(lang), pg: &pageData{
			Lang: lang, Nonce: newToken(16), Draft: s.cat.Draft(lang), ExitURL: s.exitURL,
		}}
		rq.pg.Langs = langLinks(r, lang)
		if acc != anyone {
			ss, u, err := s.loadSession(r)
			switch {
			case errors.Is(err, errNoSession) || (err == nil && ss.Stage != StageFull):
				s.setCookie(w, r, CookieSession, "", -1)
				http.Redirect(w, r, Prefix+lang+"/signin?expired=1", http.StatusSeeOther)
				return
			case err != nil:
				s.fail(w, r, "session", err)
				return
			}
			rq.ss, rq.user = ss, u
			rq.pg.User, rq.pg.CSRF = u, ss.CSRF
			rq.pg.OrgName = s.orgName(u.Org)
			if r.Method == http.MethodPost && !checkCSRF(r, ss.CSRF) {
				s.auditLine(r.Context(), u, "csrf_refused", "", "")
				s.refuse(w, r, rq, http.StatusForbidden, "error.csrf")
				return
			}
			allowed := acc == signedIn || (acc == refers && u.Role.Refers()) || (acc == orgAdmin && u.Role == RoleOrgAdmin) ||
				(acc == dirAdmin && u.Role == RoleDirectoryAdmin)
			if !allowed {
				s.auditLine(r.Context(), u, "page_refused", "", r.URL.Path)
				s.refuse(w, r, rq, http.StatusForbidden, "error.role")
				return
			}
			if u.Lang != lang && r.Method == http.MethodGet {
				ctx, cancel := context.WithTimeout(r.Context(), StoreTimeout)
				_ = s.accts.SetLang(ctx, u.Username, lang)
				cancel()
			}
		}
		view, status, err := h(w, r, rq)
		if err != nil {
			s.fail(w, r, view, err)
			return
		}
		if view == "" {
			return // redirected
		}
		s.write(w, r, rq, view, status)
	}
}

// refuse draws the message page with a refusal.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, rq *request, status int, key string) {
	rq.pg.Title = rq.p.T("error.title")
	rq.pg.Data = messageData{Text: rq.p.T(key)}
	s.write(w, r, rq, "message", status)
}

// messageData is the message page's text.
type messageData struct{ Text string }

func (s *Server) write(w http.ResponseWriter, r *http.Request, rq *request, view string, status int) {
	body, err := s.render(rq.lang, view, rq.pg)
	if err != nil {
		s.fail(w, r, view, err)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", CSP(rq.pg.Nonce))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", rq.lang)
	web.WriteBody(w, r, status, body)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), "console: page failed", slog.String("view", what), slog.Any("error", err))
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// orgName returns the organisation's name from the directory, or its id.
func (s *Server) orgName(id string) string {
	if id == "" {
		return ""
	}
	if o := s.deps.Directory.Snapshot().Organisation(id); o != nil {
		return o.Name
	}
	return id
}

// langLinks returns the current page in every language; a posted page
// links to the same page without the form.
func langLinks(r *http.Request, lang string) []web.LangLink {
	path := r.URL.Path
	if path == Prefix+lang+"/send" {
		path = "" // only ever posted: link to the home page
	}
	return web.LangLinks(Prefix, lang, path, "")
}

// auditLine records what a person did: in the organisation's audit log
// and the node's log, with the pseudonymous staff id, never a name.
func (s *Server) auditLine(ctx context.Context, u *User, action, referral, detail string) {
	now := s.cfg.Now()
	s.log.InfoContext(ctx, "console: audit", slog.String("staff", u.StaffRef), slog.String("org", u.Org),
		slog.String("action", action), slog.String("referral", referral), slog.String("detail", detail))
	line := AuditLine{At: now.UTC(), Staff: u.StaffRef, Action: action, Referral: referral, Detail: detail}
	b, err := jsonMarshal(line)
	if err != nil {
		return
	}
	org := u.Org
	if org == "" {
		org = "node"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StoreTimeout)
	defer cancel()
	if err := s.deps.Audit.Put(ctx, auditKey(org, now), b); err != nil {
		s.log.WarnContext(ctx, "console: audit line not stored", slog.Any("error", err))
	}
}

// AuditLine is one line of an organisation's audit log.
type AuditLine struct {
	At       time.Time `json:"at"`
	Staff    string    `json:"staff"`
	Action   string    `json:"action"`
	Referral string    `json:"referral,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// staticFile is one embedded file, versioned by a hash of its content.
type staticFile struct {
	body  []byte
	ctype string
	hash  string
}

func loadStatic() (map[string]*staticFile, error) {
	out := map[string]*staticFile{}
	err := fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		out[path.Base(p)] = &staticFile{body: b, ctype: ctype, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	// The sealing scripts are the public pages' own: one copy of age.
	for _, name := range []string{"age.js", "seal.js"} {
		b, err := web.StaticFile(name)
		if err != nil {
			return nil, fmt.Errorf("console: static files: %w", err)
		}
		sum := sha256.Sum256(b)
		out[name] = &staticFile{body: b, ctype: "text/javascript; charset=utf-8", hash: hex.EncodeToString(sum[:6])}
	}
	return out, nil
}

func (s *Server) staticURL(name string) (string, error) {
	f, ok := s.static[name]
	if !ok {
		return "", fmt.Errorf("console: no static file %q", name)
	}
	return Prefix + "static/" + name + "?v=" + f.hash, nil
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := s.static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	web.WriteBody(w, r, http.StatusOK, f.body)
}
