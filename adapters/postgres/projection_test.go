package postgres_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/invictus-network/invictus/adapters/postgres"
	"github.com/invictus-network/invictus/events"
)

// projBundle is what the projection tests need.
type projBundle struct {
	pg      *pgEnv
	ns      *natsEnv
	js      jetstream.JetStream
	metrics *postgres.Metrics
	lastSeq uint64
}

func newProjBundle(t *testing.T) *projBundle {
	t.Helper()
	pg := newPG(t)
	pg.migrate()
	ns := newNATS(t)
	m, _ := postgres.NewMetrics(nil, pg.schema)
	return &projBundle{pg: pg, ns: ns, js: ns.js(), metrics: m}
}

// publish appends evs to REFERRALS, in order.
func (b *projBundle) publish(t *testing.T, evs []genEvent) {
	t.Helper()
	ctx := testCtx(t)
	for _, g := range evs {
		m, err := events.ToNATS(g.subject, g.ev)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Header: nats.Header(m.Header), Data: m.Data},
			jetstream.WithMsgID(g.ev.ID()), jetstream.WithExpectStream(postgres.StreamReferrals))
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		b.lastSeq = ack.Sequence
	}
}

func (b *projBundle) newProjection(t *testing.T, app string) *postgres.Projection {
	t.Helper()
	pool := b.pg.pool
	if app != "" {
		pool = b.pg.newPool(app, nil)
	}
	p, err := postgres.NewProjection(pool, b.ns.connect("projection"), postgres.ProjectionConfig{
		Schema: b.pg.schema, BatchSize: 64, Metrics: b.metrics,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewProjection: %v", err)
	}
	return p
}

// checkpoint reads the stored checkpoint through the test's own pool
// (the projection's connections may be terminated by the test).
func (b *projBundle) checkpoint(t *testing.T, _ *postgres.Projection) uint64 {
	t.Helper()
	return uint64(b.pg.count(`SELECT coalesce(max(last_seq), 0) FROM ` + b.pg.q() + `.projection_checkpoint`))
}

func (b *projBundle) waitCaughtUp(t *testing.T, p *postgres.Projection) {
	t.Helper()
	eventually(t, fmt.Sprintf("projection did not reach sequence %d", b.lastSeq), func() bool {
		return b.checkpoint(t, p) == b.lastSeq
	})
}

func TestProjectionMatchesTheEvents(t *testing.T) {
	t.Parallel()
	b := newProjBundle(t)
	run := generate(t, 1, 300)
	b.publish(t, run.log)
	p := b.newProjection(t, "")
	start(t, p.Run)
	b.waitCaughtUp(t, p)
	if seq, err := p.Checkpoint(testCtx(t)); err != nil || seq != b.lastSeq {
		t.Errorf("Checkpoint = %d, %v; want %d", seq, err, b.lastSeq)
	}
	checkProjection(t, b, run)
	if got := metricValue(t, b.metrics.ProjectionEvents); got != float64(len(run.log)) {
		t.Errorf("projection_events_total = %v, want %d", got, len(run.log))
	}
	if err := p.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
}

// TestProjectionResumesExactlyOnce interrupts the projection again and
// again (stopping it, or terminating its database connections) while
// events keep coming; every event must be applied once.
func TestProjectionResumesExactlyOnce(t *testing.T) {
	t.Parallel()
	b := newProjBundle(t)
	run := generate(t, 2, 240)
	third := len(run.log) / 3
	b.publish(t, run.log[:third])
	app := b.pg.appName + "-proj"
	var last uint64
	for round := 0; ; round++ {
		p := b.newProjection(t, app)
		r := start(t, p.Run)
		switch {
		case round == 1:
			b.publish(t, run.log[third:2*third])
		case round == 3:
			b.publish(t, run.log[2*third:])
		}
		if round >= 5 {
			b.waitCaughtUp(t, p)
			_ = r.stop(t)
			break
		}
		eventually(t, "the projection made no progress after a restart", func() bool {
			return b.checkpoint(t, p) > last || b.checkpoint(t, p) == b.lastSeq
		})
		if round%2 == 0 {
			if _, err := b.pg.terminate(testCtx(t), app); err != nil {
				t.Fatal(err)
			}
			eventually(t, "no progress after the connections were terminated", func() bool {
				return b.checkpoint(t, p) > last+10 || b.checkpoint(t, p) == b.lastSeq
			})
		}
		last = b.checkpoint(t, p)
		_ = r.stop(t)
	}
	checkProjection(t, b, run)
	if got := metricValue(t, b.metrics.ProjectionEvents); got != float64(len(run.log)) {
		t.Errorf("events applied %v times in all, want %d (each once)", got, len(run.log))
	}
}

func TestTwoProjectionsApplyEachEventOnce(t *testing.T) {
	t.Parallel()
	b := newProjBundle(t)
	run := generate(t, 3, 150)
	b.publish(t, run.log)
	p1, p2 := b.newProjection(t, ""), b.newProjection(t, "")
	start(t, p1.Run)
	start(t, p2.Run)
	b.waitCaughtUp(t, p1)
	checkProjection(t, b, run)
	if got := metricValue(t, b.metrics.ProjectionEvents); got != float64(len(run.log)) {
		t.Errorf("events applied %v times by two projections, want %d (each once)", got, len(run.log))
	}
}

// offerKey identifies one offer.
type offerKey struct {
	ref, placement string
	attempt        int
}

type expOffer struct {
	org, referrer, week, status string
	offeredAt, answeredAt       time.Time
	deadline                    time.Time
}

type expUnmatched struct {
	ref, country, region, need, reason, week string
}

// expected computes, from the generated events alone and without SQL,
// what the projection's tables and views must say.
type expected struct {
	offers    map[offerKey]*expOffer
	unmatched []expUnmatched
	erased    int
}

func computeExpected(run *genRun) expected {
	x := expected{offers: map[offerKey]*expOffer{}}
	week := func(t time.Time) string { y, w := t.UTC().ISOWeek(); return fmt.Sprintf("%04d-W%02d", y, w) }
	for _, g := range run.referrals {
		if g.erased != nil {
			x.erased++
			continue
		}
		open := map[string]offerKey{}
		for _, e := range g.events {
			at := e.ev.Time()
			switch v := e.env.Payload.(type) {
			case *events.Offered:
				k := offerKey{g.id, v.Placement, v.Attempt}
				x.offers[k] = &expOffer{org: v.Organisation, referrer: v.Referrer, week: week(at), status: "open", offeredAt: at, deadline: v.Deadline}
				open[v.Placement] = k
			case *events.Accepted:
				o := x.offers[open[v.Placement]]
				o.status, o.answeredAt = "accepted", at
			case *events.Declined:
				x.offers[open[v.Placement]].status = "declined"
			case *events.Expired:
				x.offers[open[v.Placement]].status = "expired"
			case *events.Withdrawn:
				for _, k := range open {
					if x.offers[k].status == "open" {
						x.offers[k].status = "cancelled"
					}
				}
			case *events.Unmatched:
				for _, n := range v.Needs {
					x.unmatched = append(x.unmatched, expUnmatched{g.id, v.Profile.Location.Country, v.Profile.Location.Region, n, v.Reason, week(at)})
				}
			}
		}
	}
	return x
}

func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return &m
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func cc(org string) string { return org[:2] }

// queryMap runs sql and returns each row as "col=val ..." keyed by the
// first n columns.
func queryMap(t *testing.T, b *projBundle, sql string, n int) map[string]string {
	t.Helper()
	rows, err := b.pg.pool.Query(testCtx(t), strings.ReplaceAll(sql, "S.", b.pg.q()+"."))
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	out := map[string]string{}
	names := []string{}
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var key, val []string
		for i, v := range vals {
			s := formatValue(v)
			if i < n {
				key = append(key, s)
			} else {
				val = append(val, names[i]+"="+s)
			}
		}
		out[strings.Join(key, "|")] = strings.Join(val, " ")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case float64:
		return fmt.Sprintf("%.4f", v)
	case *float64:
		if v == nil {
			return "NULL"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	return fmt.Sprint(v)
}

func compareMaps(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing row %s (want %s)", what, k, w)
		} else if g != w {
			t.Errorf("%s row %s:\n got  %s\n want %s", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected row %s: %s", what, k, g)
		}
	}
}

func fmtRate(num, den int) string {
	if den == 0 {
		return "NULL"
	}
	return fmt.Sprintf("%.4f", round4(float64(num)/float64(den)))
}

func fmtF(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%.4f", *p)
}

// checkProjection compares the projection with what the run's events say.
func checkProjection(t *testing.T, b *projBundle, run *genRun) {
	t.Helper()
	x := computeExpected(run)

	// Flows between countries and between organisations.
	type flow struct {
		refs                                map[string]bool
		offers, accepted, declined, expired int
	}
	countries, orgs := map[string]*flow{}, map[string]*flow{}
	add := func(m map[string]*flow, key string, k offerKey, o *expOffer) {
		f := m[key]
		if f == nil {
			f = &flow{refs: map[string]bool{}}
			m[key] = f
		}
		f.refs[k.ref] = true
		f.offers++
		switch o.status {
		case "accepted":
			f.accepted++
		case "declined":
			f.declined++
		case "expired":
			f.expired++
		}
	}
	for k, o := range x.offers {
		add(countries, cc(o.referrer)+"|"+cc(o.org)+"|"+o.week, k, o)
		add(orgs, o.referrer+"|"+cc(o.referrer)+"|"+o.org+"|"+cc(o.org)+"|"+o.week, k, o)
	}
	render := func(m map[string]*flow) map[string]string {
		out := map[string]string{}
		for k, f := range m {
			out[k] = fmt.Sprintf("referrals=%d offers=%d accepted=%d declined=%d expired=%d", len(f.refs), f.offers, f.accepted, f.declined, f.expired)
		}
		return out
	}
	compareMaps(t, "flows_between_countries",
		queryMap(t, b, `SELECT from_country, to_country, iso_week, referrals, offers, accepted, declined, expired FROM S.flows_between_countries`, 3),
		render(countries))
	compareMaps(t, "flows_between_organisations",
		queryMap(t, b, `SELECT from_organisation, from_country, to_organisation, to_country, iso_week, referrals, offers, accepted, declined, expired
			FROM S.flows_between_organisations`, 5),
		render(orgs))

	// Acceptance by organisation, and deadlines missed by organisation and
	// week.
	type acc struct {
		offers, accepted, declined, expired, open int
		overdue                                   int
		toAccept                                  []float64
	}
	byOrg, byOrgWeek := map[string]*acc{}, map[string]*acc{}
	now := time.Now()
	for _, o := range x.offers {
		for _, a := range []struct {
			m   map[string]*acc
			key string
		}{{byOrg, o.org + "|" + cc(o.org)}, {byOrgWeek, o.org + "|" + cc(o.org) + "|" + o.week}} {
			s := a.m[a.key]
			if s == nil {
				s = &acc{}
				a.m[a.key] = s
			}
			s.offers++
			switch o.status {
			case "accepted":
				s.accepted++
				s.toAccept = append(s.toAccept, o.answeredAt.Sub(o.offeredAt).Seconds())
			case "declined":
				s.declined++
			case "expired":
				s.expired++
			case "open":
				s.open++
				if o.deadline.Before(now) {
					s.overdue++
				}
			}
		}
	}
	wantAcc, wantMissed := map[string]string{}, map[string]string{}
	for k, s := range byOrg {
		answered := s.accepted + s.declined + s.expired
		wantAcc[k] = fmt.Sprintf("offers=%d answered=%d accepted=%d declined=%d expired=%d acceptance_rate=%s median_seconds_to_accept=%s",
			s.offers, answered, s.accepted, s.declined, s.expired, fmtRate(s.accepted, answered), fmtF(median(s.toAccept)))
	}
	for k, s := range byOrgWeek {
		wantMissed[k] = fmt.Sprintf("offers=%d missed=%d overdue=%d missed_rate=%s", s.offers, s.expired, s.overdue, fmtRate(s.expired, s.offers))
	}
	compareMaps(t, "acceptance_by_organisation",
		queryMap(t, b, `SELECT organisation, country, offers, answered, accepted, declined, expired, acceptance_rate::float8, median_seconds_to_accept
			FROM S.acceptance_by_organisation`, 2),
		wantAcc)
	compareMaps(t, "deadlines_missed",
		queryMap(t, b, `SELECT organisation, country, iso_week, offers, missed, overdue, missed_rate::float8 FROM S.deadlines_missed`, 3),
		wantMissed)

	// The gaps.
	type gap struct {
		n    int
		refs map[string]bool
	}
	gaps := map[string]*gap{}
	for _, u := range x.unmatched {
		region := u.region
		if region == "" {
			region = "NULL"
		}
		k := strings.Join([]string{u.country, region, u.need, u.reason, u.week}, "|")
		if gaps[k] == nil {
			gaps[k] = &gap{refs: map[string]bool{}}
		}
		gaps[k].n++
		gaps[k].refs[u.ref] = true
	}
	wantGaps := map[string]string{}
	for k, g := range gaps {
		wantGaps[k] = fmt.Sprintf("unmatched=%d referrals=%d", g.n, len(g.refs))
	}
	compareMaps(t, "unmatched_needs_by_region",
		queryMap(t, b, `SELECT country, region, need, reason, iso_week, unmatched, referrals FROM S.unmatched_needs_by_region`, 5),
		wantGaps)

	// Every referral's status is what folding its events gives; erased
	// referrals leave nothing but their statistics.
	wantStatus := map[string]string{}
	wantTransitions := 0
	var erasedIDs []string
	for _, g := range run.referrals {
		if g.erased != nil {
			erasedIDs = append(erasedIDs, g.id)
			continue
		}
		wantStatus[g.id] = "status=" + string(g.state.Status)
		wantTransitions += len(g.events)
	}
	compareMaps(t, "referrals", queryMap(t, b, `SELECT referral_id, status FROM S.referrals`, 1), wantStatus)
	if n := b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.transitions`); n != wantTransitions {
		t.Errorf("%d transitions, want %d", n, wantTransitions)
	}
	for _, table := range []string{"referrals", "referral_needs", "referral_crimes", "placements", "offers", "transitions", "unmatched_needs"} {
		if n := b.pg.count(`SELECT count(*) FROM `+b.pg.q()+`.`+table+` WHERE referral_id = ANY($1)`, erasedIDs); n != 0 {
			t.Errorf("%d rows of erased referrals left in %s", n, table)
		}
	}
	wantErasures := map[string]string{}
	for _, g := range run.referrals {
		if e := g.erased; e != nil {
			k := strings.Join([]string{e.Country, e.Region, strings.Join(e.Needs, ","), e.Outcome, e.RequestedOn, e.ErasedOn}, "|")
			wantErasures[k] = ""
		}
	}
	if x.erased == 0 {
		t.Fatal("the generated run erased no referral")
	}
	compareMaps(t, "erasures", queryMap(t, b, `SELECT country, region, array_to_string(needs, ','), outcome, requested_on::text, erased_on::text FROM S.erasures`, 6), wantErasures)
	if n := b.pg.count(`SELECT count(*) FROM ` + b.pg.q() + `.erasures e JOIN ` + b.pg.q() + `.transitions t ON t.event_id = e.event_id`); n != 0 {
		t.Errorf("%d erasures linked to a transition", n)
	}
}
