package web

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/schemas"
)

// Defaults and limits of [Config].
const (
	// ExitURLDefault is where the quick-exit button leads: a neutral
	// page that says nothing about this site.
	ExitURLDefault = "https://www.google.com/"
	// PerPageDefault is the number of services on one page of results.
	PerPageDefault = 20
	// NearRadiusKmDefault is how far "near me" and a city search look
	// for services with a place, beyond those whose area covers the place.
	NearRadiusKmDefault = 50.0
	// MaxFormBytes bounds the body of a posted search form.
	MaxFormBytes = 16 << 10
)

// Config configures a [Server]. The zero value of every field means its
// default.
type Config struct {
	// ExitURL is where the quick-exit button leads. Default
	// [ExitURLDefault]; it must be an absolute http(s) URL.
	ExitURL string
	// PerPage is the number of results on a page. Default [PerPageDefault].
	PerPage int
	// NearRadiusKm is the search radius around a point. Default
	// [NearRadiusKmDefault].
	NearRadiusKm float64
	// Logger receives the errors of rendering (never a path, a query or
	// an address). Default discards.
	Logger *slog.Logger
	// Now is the clock of "open now". Default time.Now.
	Now func() time.Time
	// SearchRate and SearchBurst bound the searches (find, map) of one
	// client address: per second on average, and at once. Defaults
	// [SearchRateDefault], [SearchBurstDefault].
	SearchRate  float64
	SearchBurst int
	// AskRate and AskBurst bound the requests to be contacted of one
	// client address. Defaults [AskRateDefault], [AskBurstDefault].
	AskRate  float64
	AskBurst int
	// Registerer receives the pages' metrics (rate-limited requests,
	// requests to be contacted). Default: none registered.
	Registerer prometheus.Registerer
	// WorkKey signs the proof-of-work challenges of the self-referral
	// form: at least [WorkKeySize] bytes, the same on every node serving
	// the same pages. Default: random, for this process only.
	WorkKey []byte
	// WorkBits is the difficulty of the proof of work (leading zero bits
	// of a SHA-256). Default [WorkBitsDefault].
	WorkBits int
	// WorkTTL is how long a challenge can be solved and sent. Default
	// [WorkTTLDefault].
	WorkTTL time.Duration
	// WorkMemory is how many used challenges are remembered to refuse a
	// second use. Default [WorkMemoryDefault].
	WorkMemory int
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.ExitURL == "" {
		c.ExitURL = ExitURLDefault
	}
	if c.PerPage == 0 {
		c.PerPage = PerPageDefault
	}
	if c.NearRadiusKm == 0 {
		c.NearRadiusKm = NearRadiusKmDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SearchRate == 0 {
		c.SearchRate = SearchRateDefault
	}
	if c.SearchBurst == 0 {
		c.SearchBurst = SearchBurstDefault
	}
	if c.AskRate == 0 {
		c.AskRate = AskRateDefault
	}
	if c.AskBurst == 0 {
		c.AskBurst = AskBurstDefault
	}
	if c.WorkKey == nil {
		c.WorkKey = make([]byte, WorkKeySize)
		_, _ = rand.Read(c.WorkKey) // never fails (crypto/rand)
	}
	if c.WorkBits == 0 {
		c.WorkBits = WorkBitsDefault
	}
	if c.WorkTTL == 0 {
		c.WorkTTL = WorkTTLDefault
	}
	if c.WorkMemory == 0 {
		c.WorkMemory = WorkMemoryDefault
	}
	return c
}

// Validate reports the first invalid field of c, naming it. Call it on
// the result of [Config.WithDefaults].
func (c Config) Validate() error {
	u, err := url.Parse(c.ExitURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("web: Config.ExitURL %q must be an absolute http(s) URL", c.ExitURL)
	case c.PerPage < 1 || c.PerPage > 200:
		return fmt.Errorf("web: Config.PerPage %d must be from 1 to 200", c.PerPage)
	case c.NearRadiusKm <= 0 || c.NearRadiusKm > 500:
		return fmt.Errorf("web: Config.NearRadiusKm %g must be above 0 and at most 500", c.NearRadiusKm)
	case c.SearchRate < 0 || c.SearchBurst < 1:
		return fmt.Errorf("web: Config.SearchRate %g and SearchBurst %d must be positive", c.SearchRate, c.SearchBurst)
	case c.AskRate < 0 || c.AskBurst < 1:
		return fmt.Errorf("web: Config.AskRate %g and AskBurst %d must be positive", c.AskRate, c.AskBurst)
	case len(c.WorkKey) < WorkKeySize:
		return fmt.Errorf("web: Config.WorkKey of %d bytes, want at least %d", len(c.WorkKey), WorkKeySize)
	case c.WorkBits < 1 || c.WorkBits > WorkBitsMax:
		return fmt.Errorf("web: Config.WorkBits %d must be from 1 to %d", c.WorkBits, WorkBitsMax)
	case c.WorkTTL < time.Minute:
		return fmt.Errorf("web: Config.WorkTTL %s must be at least a minute", c.WorkTTL)
	case c.WorkMemory < 1:
		return fmt.Errorf("web: Config.WorkMemory %d must be positive", c.WorkMemory)
	}
	return nil
}

// Directory gives the current directory snapshot; *directory.View is one.
// It is the same port the HTTP API reads the directory through.
type Directory interface {
	Snapshot() *directory.Index
}

// Deps are the ports the pages use. Directory is required; without
// Intake the self-referral page explains that this node does not take
// requests to be contacted.
type Deps struct {
	Directory Directory
	Intake    Intake
}

// Server serves the public pages: an http.Handler, safe for concurrent
// use. It keeps nothing about a visitor: no cookie, no session, no log
// line per request.
type Server struct {
	deps     Deps
	cfg      Config
	log      *slog.Logger
	cat      *Catalog
	tax      *schemas.Taxonomy
	tmpl     *engine
	static   map[string]*staticFile
	rights   map[string]*rightsDoc
	geo      *geography
	places   *places
	mux      *http.ServeMux
	exitURL  template.URL
	metrics  *metrics
	searches *limiters
	asks     *limiters
	work     *Work

	cmu   sync.Mutex // guards cache
	cache *snapData
}

// New returns the pages over deps. It returns an error naming an invalid
// Config field or a missing dependency, or the error of parsing an
// embedded file (templates, catalogs, rights texts, map outlines).
func New(deps Deps, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Directory == nil {
		return nil, errors.New("web: Deps.Directory is required")
	}
	s := &Server{deps: deps, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), exitURL: template.URL(cfg.ExitURL)}
	var err error
	if s.cat, err = LoadCatalog(); err != nil {
		return nil, err
	}
	if s.tax, err = schemas.LoadTaxonomy(); err != nil {
		return nil, err
	}
	if s.static, err = loadStatic(); err != nil {
		return nil, err
	}
	if s.rights, err = loadRights(); err != nil {
		return nil, err
	}
	if s.geo, err = loadGeography(); err != nil {
		return nil, err
	}
	s.places = newPlaces()
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	s.searches = newLimiters(cfg.SearchRate, cfg.SearchBurst, cfg.Now)
	s.asks = newLimiters(cfg.AskRate, cfg.AskBurst, cfg.Now)
	if s.work, err = NewWork(cfg.WorkKey, cfg.WorkBits, cfg.WorkTTL, cfg.WorkMemory, cfg.Now); err != nil {
		return nil, err
	}
	if s.tmpl, err = newEngine(s.funcs); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// routes registers the pages of every language under its prefix (/pt/...)
// so that the language is remembered by the address, not by a cookie.
func (s *Server) routes() {
	for _, lang := range Languages {
		p := "/" + lang
		s.mux.HandleFunc("GET "+p+"/{$}", s.page(lang, s.home))
		s.mux.HandleFunc(p+"/find", s.limited(lang, limitFind, s.searches, s.page(lang, s.find)))
		s.mux.HandleFunc(p+"/map", s.limited(lang, limitMap, s.searches, s.page(lang, s.mapPage)))
		s.mux.HandleFunc("GET "+p+"/ask", s.page(lang, s.ask))
		s.mux.HandleFunc("POST "+p+"/ask", s.limited(lang, limitAsk, s.asks, s.page(lang, s.ask)))
		s.mux.HandleFunc("GET "+p+"/open", s.page(lang, s.open))
		s.mux.HandleFunc("GET "+p+"/rights", s.page(lang, s.rightsIndex))
		s.mux.HandleFunc("GET "+p+"/rights/{slug}", s.page(lang, s.right))
		s.mux.HandleFunc("GET "+p+"/safety", s.page(lang, s.safety))
	}
	s.mux.HandleFunc("GET /static/{file}", s.serveStatic)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Language")
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/"+Negotiate(r.Header.Get("Accept-Language"))+"/", http.StatusFound)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		lang := Negotiate(r.Header.Get("Accept-Language"))
		s.page(lang, s.notFound)(w, r)
	})
}

// ServeHTTP serves the pages, with the security headers on every response.
// The pages may ask for the visitor's position (the map's "near me").
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SetSecurityHeaders(w.Header(), "geolocation=(self)")
	s.mux.ServeHTTP(w, r)
}

// SetSecurityHeaders sets the headers every response of the public pages
// and the console carries: no sniffing, no referrer, no framing, opener
// and resources same-origin only, no powerful feature but geolocation as
// given ("geolocation=()" or "geolocation=(self)"), and a policy that
// loads nothing (a page replaces it with its own [CSP]).
func SetSecurityHeaders(h http.Header, geolocation string) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", geolocation+", camera=(), microphone=(), payment=(), usb=(), interest-cohort=()")
	h.Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
}

// CSP returns the Content-Security-Policy of a page whose scripts carry
// the nonce: nothing but this node's style sheet and the scripts the page
// names with the nonce (and the modules they import, which inherit it);
// no eval, no inline style, no third party, no framing.
func CSP(nonce string) string { return csp(nonce, false) }

// CSPConnect is [CSP] for a page that fetches from this node (the opener
// reads the wrapped identity): it may connect to 'self' and nowhere else.
func CSPConnect(nonce string) string { return csp(nonce, true) }

func csp(nonce string, connect bool) string {
	c := ""
	if connect {
		c = "connect-src 'self'; "
	}
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'self'; img-src 'self'; " + c +
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}

// request is what a page handler gets: the language's printer and the
// page being built.
type request struct {
	lang string
	p    Printer
	pg   *pageData
}

// pageData is what every template gets.
type pageData struct {
	Lang    string
	Nonce   string
	Title   string
	Section string
	Draft   bool
	ExitURL template.URL
	Langs   []LangLink
	Robots  string
	Data    any
	// Scripts are the page's own ES modules (static/<name>), loaded
	// with the nonce.
	Scripts []string
	// Connect lets the page fetch from this node (CSP connect-src 'self').
	Connect bool
}

// handler is a page: it fills rq.pg and returns the view to draw and the
// status, or an error (logged; the visitor gets a plain error page).
type handler func(w http.ResponseWriter, r *http.Request, rq *request) (view string, status int, err error)

// page wraps a handler with what every page does: parse the form, make
// the nonce, draw the view in the layout, set the headers.
func (s *Server) page(lang string, h handler) http.HandlerFunc {
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
		nonce := newNonce()
		rq := &request{lang: lang, p: s.cat.Printer(lang), pg: &pageData{
			Lang: lang, Nonce: nonce, Draft: s.cat.Draft(lang), ExitURL: s.exitURL,
		}}
		rq.pg.Langs = s.langLinks(r, lang)
		view, status, err := h(w, r, rq)
		if err != nil {
			s.log.ErrorContext(r.Context(), "web: page failed", slog.String("view", view), slog.Any("error", err))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		body, err := s.tmpl.render(lang, view, rq.pg)
		if err != nil {
			s.log.ErrorContext(r.Context(), "web: render failed", slog.String("view", view), slog.Any("error", err))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp(nonce, rq.pg.Connect))
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Language", lang)
		// Pages are never stored: on a shared device a cached page is a
		// trace of the visit.
		h.Set("Cache-Control", "no-store")
		WriteBody(w, r, status, body)
	}
}

// langLinks returns the current page in every language. A page reached by
// a posted form links to the same page without the form: the search stays
// out of the address.
func (s *Server) langLinks(r *http.Request, lang string) []LangLink {
	q := ""
	if r.Method != http.MethodPost && r.URL.RawQuery != "" {
		q = "?" + r.URL.RawQuery
	}
	return LangLinks("/", lang, r.URL.Path, q)
}

// newNonce returns 128 random bits, base64: the nonce of one response.
func newNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// WriteBody writes body with status, gzip-compressed when it is larger
// than 512 bytes and the client accepts gzip (not with q=0), with its
// Content-Length, and without it to a HEAD request. The console writes
// its pages with it too.
func WriteBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) && len(body) > 512 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

//go:embed static
var staticFiles embed.FS

// StaticFile returns an embedded static file by name (such as "age.js"
// and "seal.js", which the console serves too), or fs.ErrNotExist.
func StaticFile(name string) ([]byte, error) { return staticFiles.ReadFile("static/" + name) }

// staticFile is one embedded static file with its gzip form and a hash of
// its content, which versions its address (/static/style.css?v=<hash>).
type staticFile struct {
	body, gz []byte
	ctype    string
	hash     string
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
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		out[path.Base(p)] = &staticFile{body: b, gz: gz.Bytes(), ctype: ctype, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	return out, nil
}

// staticURL returns the versioned address of a static file.
func (s *Server) staticURL(name string) (string, error) {
	f, ok := s.static[name]
	if !ok {
		return "", fmt.Errorf("web: no static file %q", name)
	}
	return "/static/" + name + "?v=" + f.hash, nil
}

// serveStatic serves an embedded file; the versioned address is cached
// for a year, since its content never changes.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := s.static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	etag := `"` + f.hash + `"`
	h.Set("ETag", etag)
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Add("Vary", "Accept-Encoding")
	body := f.body
	if acceptsGzip(r) {
		body = f.gz
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
