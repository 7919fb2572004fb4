package bench_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/invictus-network/invictus/internal/bench"
	"github.com/invictus-network/invictus/internal/testenv"
	"github.com/invictus-network/invictus/routing"
)

// The SQL of the match benchmark selects exactly the services the matcher
// ranks, for every kind of profile: the comparison of their speed is fair.
func TestBenchMatchSelectsWhatTheMatcherSelects(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	b, err := bench.NewSQLMatch(pool, "bench_test_"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Drop(context.Background()) }) // when the test stops early
	demo, err := directory.Demo(1)
	if err != nil {
		t.Fatal(err)
	}
	d := directory.Generate(3000, 3)
	d.Organisations = append(d.Organisations, demo.Organisations...)
	d.Services = append(d.Services, demo.Services...)
	// Some places offer easy-read material or hearing loops.
	for i := range d.Services {
		if l := d.Services[i].Locations; len(l) > 0 && i%3 == 0 {
			l[0].Accessibility = append(slices.Clone(l[0].Accessibility), []string{"easy_read", "hearing_loop", "wheelchair"}[i%9/3])
		}
	}
	ctx := testCtx(t)
	if _, _, err := b.Load(ctx, d); err != nil {
		t.Fatal(err)
	}
	snap := directory.NewIndex(d, 1)
	m := routing.NewMatcher(routing.Config{})
	profiles := routing.SampleProfiles(400, 11)
	// Make the rarer constraints common.
	for i := range profiles {
		p := &profiles[i]
		switch i % 8 {
		case 0:
			p.Urgency = events.UrgencyEmergency
		case 1:
			p.Accessibility = [][]string{{"wheelchair"}, {"easy_read"}, {"hearing_loop", "step_free"}, {"sign_language"}}[i/8%4]
		case 2:
			p.Location.ResidenceCountry = "fi"
		case 3:
			p.Location.Lat, p.Location.Lon = nil, nil
		}
	}
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	nonEmpty, emergencies := 0, 0
	for i, p := range profiles {
		now := start.Add(time.Duration(i) * 37 * time.Minute)
		want, err := m.Eligible(snap, p, routing.At(now))
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Eligible(ctx, p, now)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("profile %d %+v at %v:\nSQL     %v\nmatcher %v", i, p, now, got, want)
		}
		if len(want) > 0 {
			nonEmpty++
			if p.Urgency == events.UrgencyEmergency {
				emergencies++
			}
		}
	}
	if nonEmpty < len(profiles)/2 || emergencies == 0 {
		t.Errorf("only %d profiles with eligible services, %d emergencies: the comparison proves little", nonEmpty, emergencies)
	}
	if err := b.Drop(ctx); err != nil {
		t.Fatal(err)
	}
}

// testCtx bounds a test's calls to the database by the test binary's
// timeout (see testenv.ContextFrom), not a clock a loaded machine can miss.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	return testenv.ContextFrom(t, context.Background())
}

// testPool is a pool on the test database, closed when the test ends.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(testCtx(t), testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
