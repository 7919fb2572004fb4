package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// SQLMatch is the PostgreSQL half of `invictus bench match`: what an
// HSDS-style API would do to find the services for a needs profile. It
// holds a directory in three tables of one schema (services with their
// codes as text[] arrays, locations, opening hours), indexed as such an
// API would be: GIN on the need, region and country arrays, GiST on the
// location points for a bounding-box search, B-trees on the service ids of
// locations and hours. [SQLMatch.Eligible] runs the matcher's candidate
// selection and every hard constraint as one SQL query.
//
// It is a benchmark, not a store: nothing else in the system reads these
// tables.
type SQLMatch struct {
	db        *pgxpool.Pool
	schema    string
	query     string
	maxRadius float64 // the largest area radius, for the bounding box
}

// NewSQLMatch returns a SQLMatch working in schema, which must not
// exist yet (see postgres.ValidateSchema for the names allowed).
func NewSQLMatch(db *pgxpool.Pool, schema string) (*SQLMatch, error) {
	if err := postgres.ValidateSchema(schema); err != nil {
		return nil, err
	}
	b := &SQLMatch{db: db, schema: schema}
	b.query = strings.ReplaceAll(benchMatchQuery, "S.", quoteIdent(schema)+".")
	return b, nil
}

// Schema returns the schema's name.
func (b *SQLMatch) Schema() string { return b.schema }

// Load creates the schema and its tables, copies d into them, then builds
// the indexes and the planner statistics. It returns the time the copy and
// the indexing took.
func (b *SQLMatch) Load(ctx context.Context, d *directory.Directory) (copyTime, indexTime time.Duration, err error) {
	s := quoteIdent(b.schema)
	ddl := strings.ReplaceAll(`
CREATE SCHEMA {S};
CREATE TABLE {S}.svc (
  id text PRIMARY KEY, active boolean NOT NULL,
  needs text[] NOT NULL, languages text[] NOT NULL, interpreter boolean NOT NULL,
  channels text[] NOT NULL, accessibility text[] NOT NULL, loc_accessibility text[] NOT NULL,
  age_bands text[] NOT NULL, genders text[] NOT NULL,
  countries text[] NOT NULL, regions text[] NOT NULL, radius_km double precision NOT NULL, remote boolean NOT NULL,
  capacity text NOT NULL, always_open boolean NOT NULL, time_zone text NOT NULL);
CREATE TABLE {S}.loc (svc_id text NOT NULL, lat double precision NOT NULL, lon double precision NOT NULL, accessibility text[] NOT NULL);
CREATE TABLE {S}.hours (svc_id text NOT NULL, dow int NOT NULL, opens int NOT NULL, closes int NOT NULL);`, "{S}", s)
	if _, err := b.db.Exec(ctx, ddl); err != nil {
		return 0, 0, fmt.Errorf("bench match: create schema %s: %w", b.schema, err)
	}
	start := time.Now()
	var svcRows, locRows, hourRows [][]any
	b.maxRadius = 0
	for i := range d.Services {
		sv := &d.Services[i]
		var locAcc []string
		for _, l := range sv.Locations {
			locRows = append(locRows, []any{sv.ID, l.Lat, l.Lon, benchList(l.Accessibility)})
			for _, a := range l.Accessibility {
				if !slices.Contains(locAcc, a) {
					locAcc = append(locAcc, a)
				}
			}
		}
		if !sv.Hours.Always && sv.Hours.TimeZone != "" {
			for _, h := range sv.Hours.Weekly {
				day := slices.Index(directory.Days, h.Day)
				o, ok1 := directory.ParseClock(h.Opens)
				c, ok2 := directory.ParseClock(h.Closes)
				if day >= 0 && ok1 && ok2 && c > o {
					hourRows = append(hourRows, []any{sv.ID, day, o, c})
				}
			}
		}
		b.maxRadius = max(b.maxRadius, sv.Area.RadiusKm)
		svcRows = append(svcRows, []any{
			sv.ID, sv.Active(), benchList(sv.Needs), benchList(sv.Languages), sv.InterpreterAvailable,
			benchList(sv.Channels), benchList(sv.Accessibility), benchList(locAcc),
			benchList(sv.Eligibility.AgeBands), benchList(sv.Eligibility.Genders),
			benchList(sv.Area.Countries), benchList(sv.Area.Regions), sv.Area.RadiusKm, sv.Area.Remote,
			sv.Capacity.Status, sv.Hours.Always, sv.Hours.TimeZone,
		})
	}
	for _, t := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"svc", []string{"id", "active", "needs", "languages", "interpreter", "channels", "accessibility", "loc_accessibility",
			"age_bands", "genders", "countries", "regions", "radius_km", "remote", "capacity", "always_open", "time_zone"}, svcRows},
		{"loc", []string{"svc_id", "lat", "lon", "accessibility"}, locRows},
		{"hours", []string{"svc_id", "dow", "opens", "closes"}, hourRows},
	} {
		if _, err := b.db.CopyFrom(ctx, pgx.Identifier{b.schema, t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return 0, 0, fmt.Errorf("bench match: copy %s: %w", t.table, err)
		}
	}
	copyTime = time.Since(start)
	start = time.Now()
	idx := strings.ReplaceAll(`
CREATE INDEX svc_needs ON S.svc USING gin (needs);
CREATE INDEX svc_regions ON S.svc USING gin (regions);
CREATE INDEX svc_countries ON S.svc USING gin (countries);
CREATE INDEX svc_remote ON S.svc USING gin (needs, countries) WHERE remote;
CREATE INDEX loc_point ON S.loc USING gist (point(lon, lat));
CREATE INDEX loc_svc ON S.loc (svc_id);
CREATE INDEX hours_svc ON S.hours (svc_id);
ANALYZE S.svc; ANALYZE S.loc; ANALYZE S.hours;`, "S.", s+".")
	if _, err := b.db.Exec(ctx, idx); err != nil {
		return copyTime, 0, fmt.Errorf("bench match: indexes: %w", err)
	}
	return copyTime, time.Since(start), nil
}

func benchList(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// Drop removes the schema and everything in it.
func (b *SQLMatch) Drop(ctx context.Context) error {
	if _, err := b.db.Exec(ctx, "DROP SCHEMA IF EXISTS "+quoteIdent(b.schema)+" CASCADE"); err != nil {
		return fmt.Errorf("bench match: drop schema %s: %w", b.schema, err)
	}
	return nil
}

// benchMatchQuery selects the eligible services of a profile: the
// candidates (a needed code and an area covering the victim: its region or
// a parent, the whole country, a radius around a location, or remote in
// the country or the residence country) that pass every hard constraint
// (active, eligibility, capacity, language, channel, accessibility, open
// now for an emergency). Each way of being a candidate is a branch that an
// index drives, with the constraints applied in the branch (faster than
// joining the candidates back to the services). "S." stands for the quoted
// schema, {C} for the constraints.
var benchMatchQuery = strings.ReplaceAll(`
SELECT id FROM (
    SELECT s.id FROM S.svc s
     WHERE s.needs && $1 AND s.regions && $3 AND $2 = ANY (s.countries) AND {C}
  UNION
    SELECT s.id FROM S.svc s
     WHERE s.remote AND s.needs && $1 AND s.countries && $4 AND {C}
  UNION
    SELECT s.id FROM S.loc l JOIN S.svc s ON s.id = l.svc_id
     WHERE $5 AND point(l.lon, l.lat) <@ box(point($8, $9), point($10, $11))
       AND s.radius_km > 0 AND s.needs && $1 AND $2 = ANY (s.countries)
       AND 2 * 6371.0088 * asin(least(1, sqrt(
             power(sin(radians(l.lat - $6) / 2), 2) +
             cos(radians($6)) * cos(radians(l.lat)) * power(sin(radians(l.lon - $7) / 2), 2)))) <= s.radius_km
       AND {C}
) c ORDER BY id COLLATE "C"`, "{C}", `s.active
   AND (cardinality(s.age_bands) = 0 OR $12 = ANY (s.age_bands))
   AND (cardinality(s.genders) = 0 OR $13 = ANY (s.genders))
   AND s.capacity <> 'full'
   AND (s.languages && $14 OR $15)
   AND s.channels && $16
   AND $17 <@ (s.accessibility || s.loc_accessibility)
   AND (cardinality($18::text[]) = 0 OR s.channels && $19 OR $18 <@ s.accessibility
        OR EXISTS (SELECT 1 FROM S.loc l2 WHERE l2.svc_id = s.id AND $18 <@ (s.accessibility || l2.accessibility)))
   AND (NOT $20 OR s.always_open OR EXISTS (
        SELECT 1 FROM S.hours h,
               LATERAL (SELECT $21::timestamptz AT TIME ZONE s.time_zone AS t) lt
         WHERE h.svc_id = s.id
           AND h.dow = extract(isodow FROM lt.t)::int - 1
           AND h.opens <= extract(hour FROM lt.t)::int * 60 + extract(minute FROM lt.t)::int
           AND h.closes > extract(hour FROM lt.t)::int * 60 + extract(minute FROM lt.t)::int))`)

// placeAccessibility are the accessibility needs of a place, which a
// service used remotely or at home need not meet (as the matcher judges).
var placeAccessibility = []string{"wheelchair", "step_free", "hearing_loop", "quiet_space", "childcare"}

// Eligible returns the ids, sorted, of the services that are candidates for
// the profile and pass every hard constraint at now, by one SQL query: the
// set the matcher's Eligible returns.
func (b *SQLMatch) Eligible(ctx context.Context, p events.Profile, now time.Time) ([]string, error) {
	rows, err := b.db.Query(ctx, b.query, b.args(p, now)...)
	if err != nil {
		return nil, fmt.Errorf("bench match: query: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("bench match: query: %w", err)
	}
	return ids, nil
}

// args are the query's parameters for the profile at now.
func (b *SQLMatch) args(p events.Profile, now time.Time) []any {
	loc := p.Location
	cc := loc.Country
	nuts := events.NUTSCountry(cc)
	prefixes := []string{nuts}
	if strings.HasPrefix(loc.Region, nuts) {
		prefixes = prefixes[:0]
		for l := 2; l <= len(loc.Region); l++ {
			prefixes = append(prefixes, loc.Region[:l])
		}
	}
	remote := []string{cc}
	if r := loc.ResidenceCountry; r != "" && r != cc {
		remote = append(remote, r)
	}
	hasPoint := loc.Lat != nil && loc.Lon != nil
	var lat, lon, lon0, lat0, lon1, lat1 float64
	if hasPoint {
		lat, lon = *loc.Lat, *loc.Lon
		const kmPerDegree = 6371.0088 * math.Pi / 180
		dLat := b.maxRadius/kmPerDegree + 1e-6
		dLon := 180.0
		if c := math.Cos(math.Min(math.Abs(lat)+dLat, 90) * math.Pi / 180); c > 1e-6 {
			dLon = dLat / c
		}
		lon0, lat0, lon1, lat1 = lon-dLon, lat-dLat, lon+dLon, lat+dLat
	}
	var comm, place []string
	for _, a := range p.Accessibility {
		if slices.Contains(placeAccessibility, a) {
			place = append(place, a)
		} else {
			comm = append(comm, a)
		}
	}
	remoteChannels := slices.DeleteFunc(slices.Clone(p.Channels), func(c string) bool { return c == events.ChannelInPerson })
	return []any{
		benchList(p.Needs), cc, prefixes, remote, hasPoint, lat, lon, lon0, lat0, lon1, lat1,
		p.AgeBand, p.Gender, benchList(p.Languages), p.InterpreterOK, benchList(p.Channels),
		benchList(comm), benchList(place), benchList(remoteChannels),
		p.Urgency == events.UrgencyEmergency, now,
	}
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }
