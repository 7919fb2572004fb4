package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// ProximityMaxKm bounds the radius of ?proximity=.
const ProximityMaxKm = 500.0

// HSDSPage is a page of the directory endpoints, shaped as the HSDS 3.0
// API's paginated responses.
type HSDSPage struct {
	TotalItems int               `json:"total_items"`
	TotalPages int               `json:"total_pages"`
	PageNumber int               `json:"page_number"`
	Size       int               `json:"size"`
	FirstPage  bool              `json:"first_page"`
	LastPage   bool              `json:"last_page"`
	Empty      bool              `json:"empty"`
	Contents   []json.RawMessage `json:"contents"`
}

// dirCache holds what the directory endpoints derive from one snapshot:
// the organisations in id order, each organisation's services, the HSDS
// ids of services and the bulk HSDS export. It is rebuilt when the
// snapshot changes.
type dirCache struct {
	mu    sync.Mutex
	snap  *directory.Index
	orgs  []directory.Organisation
	byOrg map[string][]string
	hsds  map[string]string // HSDS service id -> service id
	bulk  []byte
}

// get returns the derived data of snap.
func (c *dirCache) get(snap *directory.Index) *dirCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == snap {
		return c
	}
	d := snap.Directory()
	c.snap, c.orgs, c.hsds, c.bulk = snap, d.Organisations, nil, nil
	c.byOrg = make(map[string][]string, len(d.Organisations))
	for i := range d.Services {
		s := &d.Services[i]
		c.byOrg[s.Organisation] = append(c.byOrg[s.Organisation], s.ID)
	}
	return c
}

// serviceByHSDSID returns the id of the service whose HSDS id is hid.
func (c *dirCache) serviceByHSDSID(hid string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hsds == nil {
		c.hsds = map[string]string{}
		for _, ids := range c.byOrg {
			for _, id := range ids {
				c.hsds[directory.HSDSID("service", id)] = id
			}
		}
	}
	id, ok := c.hsds[hid]
	return id, ok
}

// export returns the HSDS 3.0 export of the whole snapshot, made once.
func (c *dirCache) export() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bulk != nil {
		return c.bulk, nil
	}
	b, err := directory.ExportHSDS(c.snap.Directory())
	if err != nil {
		return nil, fmt.Errorf("httpapi: export directory: %w", err)
	}
	c.bulk = b
	return b, nil
}

// The query parameters of the open-data endpoints. Any other parameter is
// an error naming it, so that a misspelt filter (?need= for
// ?taxonomy_term=) is not silently ignored.
var (
	serviceParams      = []string{"taxonomy_term", "country", "region", "language", "organization_id", "proximity", "page", "per_page"}
	organizationParams = []string{"country", "page", "per_page"}
)

// checkParams returns a 400 naming every query parameter of q that is not
// in allowed.
func checkParams(q url.Values, allowed []string) *Error {
	var unknown []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	accepts := "none"
	if len(allowed) > 0 {
		accepts = strings.Join(allowed, ", ")
	}
	e := &Error{Status: http.StatusBadRequest}
	for _, k := range unknown {
		e.Problems = append(e.Problems, Problem{Parameter: k, Code: CodeUnknownParameter,
			Message: fmt.Sprintf("unknown query parameter %q; this endpoint accepts: %s", k, accepts)})
	}
	return e
}

// DirectoryMaxAge is how long a client or proxy may reuse a directory
// response without asking again; after that, If-None-Match makes the
// question cheap.
const DirectoryMaxAge = 60

// notModified sets the caching headers of a directory response, whose
// ETag is the directory revision it was made from, and answers 304 when
// the client's If-None-Match already names it.
func notModified(w http.ResponseWriter, r *http.Request, snap *directory.Index) bool {
	etag := fmt.Sprintf(`"dir-%d"`, snap.Revision())
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", DirectoryMaxAge))
	for tag := range strings.SplitSeq(r.Header.Get("If-None-Match"), ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// serviceFilter is the query of GET /v1/services.
type serviceFilter struct {
	needs, crimes, flags []string
	country, region      string
	language             string
	org                  string
	lat, lon, km         float64
	hasPoint             bool
}

// parseServiceFilter reads the filters of GET /v1/services.
func parseServiceFilter(q url.Values) (serviceFilter, *Error) {
	var f serviceFilter
	for _, v := range q["taxonomy_term"] {
		for term := range strings.SplitSeq(v, ",") {
			term = strings.TrimSpace(term)
			kind, code, hasKind := strings.Cut(term, ":")
			if !hasKind {
				kind, code = "", term
			}
			switch {
			case (kind == "" || kind == "need") && events.IsNeed(code):
				f.needs = append(f.needs, code)
			case (kind == "" || kind == "crime") && events.IsCrime(code):
				f.crimes = append(f.crimes, code)
			case (kind == "" || kind == "flag") && events.IsFlag(code):
				f.flags = append(f.flags, code)
			default:
				return f, paramError("taxonomy_term", events.CodeInvalidCode, "%q is not a need, crime or flag code of the taxonomy (/schemas/taxonomy.json)", term)
			}
		}
	}
	if f.country = q.Get("country"); f.country != "" && !events.IsCountry(f.country) {
		return f, paramError("country", events.CodeInvalidCode, "%q is not a country code (ISO 3166-1 alpha-2, lower case)", f.country)
	}
	if f.region = q.Get("region"); f.region != "" {
		cc := f.country
		if cc == "" {
			for _, c := range events.Countries {
				if strings.HasPrefix(f.region, events.NUTSCountry(c)) {
					cc = c
					break
				}
			}
		}
		if cc == "" || len(f.region) < 2 || len(f.region) > 5 || !strings.HasPrefix(f.region, events.NUTSCountry(cc)) {
			return f, paramError("region", events.CodeRegionCountry, "%q is not a NUTS region (of the country given)", f.region)
		}
		f.country = cc
	}
	if f.language = q.Get("language"); f.language != "" && !events.IsLanguage(f.language) {
		return f, paramError("language", events.CodeInvalidCode, "%q is not a language code (ISO 639-1)", f.language)
	}
	if f.org = q.Get("organization_id"); f.org != "" && !events.IsOrgID(f.org) {
		return f, paramError("organization_id", events.CodeFormat, "%q is not an organisation id (<country>.<slug>)", f.org)
	}
	if v := q.Get("proximity"); v != "" {
		parts := strings.Split(v, ",")
		var nums [3]float64
		ok := len(parts) == 3
		for i := 0; ok && i < 3; i++ {
			n, err := strconv.ParseFloat(strings.TrimSpace(parts[i]), 64)
			ok = err == nil && !math.IsNaN(n) && !math.IsInf(n, 0)
			nums[i] = n
		}
		if !ok {
			return f, paramError("proximity", events.CodeFormat, "proximity is lat,lon,km, e.g. 38.72,-9.14,25")
		}
		f.lat, f.lon, f.km, f.hasPoint = nums[0], nums[1], nums[2], true
		if f.lat < -90 || f.lat > 90 || f.lon < -180 || f.lon > 180 || f.km <= 0 || f.km > ProximityMaxKm {
			return f, paramError("proximity", events.CodeOutOfRange, "latitude -90 to 90, longitude -180 to 180, radius above 0 and at most %g km", ProximityMaxKm)
		}
	}
	return f, nil
}

// candidates returns the service numbers to test, read from the index:
// the candidates of a location query when a region or a point is given,
// else the posting lists of the needs or the language, else every
// service (only the country or organisation filter, or none).
func (f *serviceFilter) candidates(snap *directory.Index) []int32 {
	needs := f.needs
	if len(needs) == 0 {
		needs = events.Needs
	}
	switch {
	case f.hasPoint:
		lat, lon := f.lat, f.lon
		return snap.Candidates(directory.Query{Needs: needs, Lat: &lat, Lon: &lon, RadiusKm: f.km}, nil)
	case f.region != "":
		return snap.Candidates(directory.Query{Needs: needs, Country: f.country, Region: f.region}, nil)
	case len(f.needs) > 0:
		out := snap.ByNeed(f.needs[0])
		for _, n := range f.needs[1:] {
			out = directory.Intersect(out, snap.ByNeed(n))
		}
		return out
	case f.language != "":
		return snap.ByLanguage(f.language)
	}
	out := make([]int32, snap.Len())
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// matches applies every filter to one service.
func (f *serviceFilter) matches(s *directory.Service) bool {
	if s == nil || !s.Active() {
		return false
	}
	for _, n := range f.needs {
		if !slices.Contains(s.Needs, n) {
			return false
		}
	}
	for _, c := range f.crimes {
		if !slices.Contains(s.Crimes, c) {
			return false
		}
	}
	for _, fl := range f.flags {
		if !slices.Contains(s.Flags, fl) {
			return false
		}
	}
	switch {
	case f.language != "" && !slices.Contains(s.Languages, f.language):
		return false
	case f.org != "" && s.Organisation != f.org:
		return false
	case f.country != "" && !slices.Contains(s.Area.Countries, f.country):
		return false
	case f.region != "" && !s.Covers(f.country, f.region, 0, 0, false):
		return false
	case f.hasPoint && f.nearest(s) > f.km:
		return false
	}
	return true
}

// nearest returns the distance from the filter's point to the service's
// nearest location.
func (f *serviceFilter) nearest(s *directory.Service) float64 {
	best := math.Inf(1)
	for _, l := range s.Locations {
		best = min(best, directory.DistanceKm(f.lat, f.lon, l.Lat, l.Lon))
	}
	return best
}

// pageParams reads ?page= (from 1) and ?per_page=.
func pageParams(q url.Values) (page, perPage int, e *Error) {
	p, e := uintParam(q.Get("page"), "page", 1)
	if e != nil {
		return 0, 0, e
	}
	pp, e := uintParam(q.Get("per_page"), "per_page", PerPageDefault)
	if e != nil {
		return 0, 0, e
	}
	if p < 1 || p > math.MaxInt32 {
		return 0, 0, paramError("page", events.CodeOutOfRange, "page starts at 1")
	}
	if pp < 1 || pp > PerPageMax {
		return 0, 0, paramError("per_page", events.CodeOutOfRange, "per_page must be from 1 to %d", PerPageMax)
	}
	return int(p), int(pp), nil
}

// newPage returns the page of total items numbered page, and the bounds
// of its items.
func newPage(total, page, perPage int) (HSDSPage, int, int) {
	pages := (total + perPage - 1) / perPage
	lo := min((page-1)*perPage, total)
	hi := min(lo+perPage, total)
	return HSDSPage{
		TotalItems: total, TotalPages: pages, PageNumber: page, Size: hi - lo,
		FirstPage: page == 1, LastPage: page >= pages, Empty: hi == lo, Contents: []json.RawMessage{},
	}, lo, hi
}

// listServices serves GET /v1/services.
func (s *Server) listServices(w http.ResponseWriter, r *http.Request, _ Token) error {
	if s.deps.Directory == nil {
		return unavailable("the directory")
	}
	q := r.URL.Query()
	if e := checkParams(q, serviceParams); e != nil {
		return e
	}
	f, e := parseServiceFilter(q)
	if e != nil {
		return e
	}
	page, perPage, e := pageParams(q)
	if e != nil {
		return e
	}
	snap := s.deps.Directory.Snapshot()
	if notModified(w, r, snap) {
		return nil
	}
	var found []*directory.Service
	for _, i := range f.candidates(snap) {
		if sv := snap.Service(i); snap.Listed(sv) && f.matches(sv) {
			found = append(found, sv)
		}
	}
	if f.hasPoint {
		dist := make(map[*directory.Service]float64, len(found))
		for _, sv := range found {
			dist[sv] = f.nearest(sv)
		}
		slices.SortFunc(found, func(a, b *directory.Service) int {
			if c := cmpFloat(dist[a], dist[b]); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	} else {
		slices.SortFunc(found, func(a, b *directory.Service) int { return strings.Compare(a.ID, b.ID) })
	}
	out, lo, hi := newPage(len(found), page, perPage)
	items, err := hsdsServices(snap, found[lo:hi])
	if err != nil {
		return err
	}
	out.Contents = items
	writeJSON(w, http.StatusOK, out)
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// getService serves GET /v1/services/{id}; id is the service id
// (pt.apav.gav-lisboa) or its HSDS id (a UUID).
func (s *Server) getService(w http.ResponseWriter, r *http.Request, _ Token) error {
	if s.deps.Directory == nil {
		return unavailable("the directory")
	}
	if e := checkParams(r.URL.Query(), nil); e != nil {
		return e
	}
	id := r.PathValue("id")
	snap := s.deps.Directory.Snapshot()
	sv := snap.ServiceByID(id)
	if sv == nil && len(id) == 36 {
		if sid, ok := s.dir.get(snap).serviceByHSDSID(id); ok {
			sv = snap.ServiceByID(sid)
		}
	}
	if sv == nil {
		return errorf(http.StatusNotFound, CodeNotFound, "no service %q", id)
	}
	if notModified(w, r, snap) {
		return nil
	}
	items, err := hsdsServices(snap, []*directory.Service{sv})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items[0])
	return nil
}

// listOrganizations serves GET /v1/organizations (?country=, ?page=,
// ?per_page=): HSDS organizations without their services.
func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request, _ Token) error {
	if s.deps.Directory == nil {
		return unavailable("the directory")
	}
	q := r.URL.Query()
	if e := checkParams(q, organizationParams); e != nil {
		return e
	}
	cc := q.Get("country")
	if cc != "" && !events.IsCountry(cc) {
		return paramError("country", events.CodeInvalidCode, "%q is not a country code (ISO 3166-1 alpha-2, lower case)", cc)
	}
	page, perPage, e := pageParams(q)
	if e != nil {
		return e
	}
	snap := s.deps.Directory.Snapshot()
	if notModified(w, r, snap) {
		return nil
	}
	c := s.dir.get(snap)
	orgs := c.orgs
	if cc != "" {
		orgs = nil
		for _, o := range c.orgs {
			if o.Country == cc {
				orgs = append(orgs, o)
			}
		}
	}
	out, lo, hi := newPage(len(orgs), page, perPage)
	b, err := directory.ExportHSDS(&directory.Directory{Organisations: orgs[lo:hi]})
	if err != nil {
		return fmt.Errorf("httpapi: export organizations: %w", err)
	}
	if err := json.Unmarshal(b, &out.Contents); err != nil {
		return fmt.Errorf("httpapi: export organizations: %w", err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getOrganization serves GET /v1/organizations/{id}: the HSDS
// organization with its services.
func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request, _ Token) error {
	if s.deps.Directory == nil {
		return unavailable("the directory")
	}
	if e := checkParams(r.URL.Query(), nil); e != nil {
		return e
	}
	id := r.PathValue("id")
	snap := s.deps.Directory.Snapshot()
	o := snap.Organisation(id)
	if o == nil {
		return errorf(http.StatusNotFound, CodeNotFound, "no organisation %q", id)
	}
	if notModified(w, r, snap) {
		return nil
	}
	d := &directory.Directory{Organisations: []directory.Organisation{*o}}
	for _, sid := range s.dir.get(snap).byOrg[id] {
		if sv := snap.ServiceByID(sid); sv != nil {
			d.Services = append(d.Services, *sv)
		}
	}
	b, err := directory.ExportHSDS(d)
	if err != nil {
		return fmt.Errorf("httpapi: export organization: %w", err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 {
		return fmt.Errorf("httpapi: export organization %s: %w", id, err)
	}
	writeJSON(w, http.StatusOK, list[0])
	return nil
}

// exportDirectory serves GET /v1/directory/hsds.json: the whole directory
// as one HSDS 3.0 document (an array of organization objects with their
// services), for bulk download.
func (s *Server) exportDirectory(w http.ResponseWriter, r *http.Request, _ Token) error {
	if s.deps.Directory == nil {
		return unavailable("the directory")
	}
	if e := checkParams(r.URL.Query(), nil); e != nil {
		return e
	}
	snap := s.deps.Directory.Snapshot()
	if notModified(w, r, snap) {
		return nil
	}
	b, err := s.dir.get(snap).export()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="invictus-directory-%d.hsds.json"`, snap.Revision()))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

// hsdsServices returns the HSDS service objects of svcs, in their order.
func hsdsServices(snap *directory.Index, svcs []*directory.Service) ([]json.RawMessage, error) {
	d := &directory.Directory{}
	seen := map[string]bool{}
	for _, sv := range svcs {
		d.Services = append(d.Services, *sv)
		if seen[sv.Organisation] {
			continue
		}
		seen[sv.Organisation] = true
		if o := snap.Organisation(sv.Organisation); o != nil {
			d.Organisations = append(d.Organisations, *o)
		} else {
			d.Organisations = append(d.Organisations, directory.Organisation{ID: sv.Organisation, Name: sv.Organisation})
		}
	}
	b, err := directory.ExportHSDS(d)
	if err != nil {
		return nil, fmt.Errorf("httpapi: export services: %w", err)
	}
	var orgs []struct {
		Services []json.RawMessage `json:"services"`
	}
	if err := json.Unmarshal(b, &orgs); err != nil {
		return nil, fmt.Errorf("httpapi: export services: %w", err)
	}
	byID := map[string]json.RawMessage{}
	for _, o := range orgs {
		for _, raw := range o.Services {
			var head struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				return nil, fmt.Errorf("httpapi: export services: %w", err)
			}
			byID[head.ID] = raw
		}
	}
	out := make([]json.RawMessage, 0, len(svcs))
	for _, sv := range svcs {
		raw, ok := byID[directory.HSDSID("service", sv.ID)]
		if !ok {
			return nil, fmt.Errorf("httpapi: export services: %s missing", sv.ID)
		}
		out = append(out, raw)
	}
	return out, nil
}
