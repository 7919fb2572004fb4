package postgres_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/reports"
	"github.com/invictus-network/invictus/reports/reportstest"
)

// TestProjectionEqualsReadModel feeds one generated traffic to the
// REFERRALS stream, which the projection reads, and to the node's read
// model (package reports), and requires the same numbers from both: every
// count the model shows equals the SQL over the projection, every count
// it hides is one the SQL finds too, and no SQL row is missing.
func TestProjectionEqualsReadModel(t *testing.T) {
	t.Parallel()
	b := newProjBundle(t)
	// A year of traffic: the impact tables span quarters.
	tr := reportstest.GenerateSpan(11, 600, 365*24*time.Hour)
	model := reports.New(reports.Config{})
	var log []genEvent
	for i, env := range tr.Envelopes {
		log = append(log, genEvent{ev: env.Event})
		model.Apply(uint64(i+1), env)
	}
	// Every event of a referral goes on the referral's subject, named by
	// the referrer's country.
	country := map[string]string{}
	for _, x := range tr.Truths {
		country[x.ID] = x.Referrer[:2]
	}
	for i := range log {
		subj, err := events.ReferralSubject(country[log[i].ev.Subject()], log[i].ev.Subject())
		if err != nil {
			t.Fatal(err)
		}
		log[i].subject = subj
	}
	b.publish(t, log)
	p := b.newProjection(t, "")
	start(t, p.Run)
	b.waitCaughtUp(t, p)

	q := b.pg.q()
	compareBy := func(report string, f reports.Filter, sql string, dims int) {
		t.Helper()
		tb, err := model.Report(report, reports.Scope{}, f, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		rows, err := b.pg.pool.Query(testCtx(t), sql)
		if err != nil {
			t.Fatalf("%s: %v", report, err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			var key []string
			for _, v := range vals[:dims] {
				key = append(key, fmt.Sprint(v))
			}
			for j, c := range tb.Columns {
				if n := toInt(vals[dims+j]); n > 0 {
					want[strings.Join(key, "/")+"/"+c] = n
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		seen, shown := 0, 0
		for _, r := range tb.Rows {
			var key []string
			for _, d := range tb.Dims {
				key = append(key, r.Key[d])
			}
			for _, c := range tb.Columns {
				k := strings.Join(key, "/") + "/" + c
				n, ok := r.Counts[c].Value()
				switch {
				case ok && n != want[k]:
					t.Errorf("%s %s: model %d, SQL %d", report, k, n, want[k])
				case !ok && want[k] == 0:
					t.Errorf("%s %s: hidden by the model, 0 in SQL", report, k)
				}
				if ok && n > 0 {
					shown++
				}
				if want[k] > 0 {
					seen++
				}
			}
		}
		t.Logf("%s: %d cells from SQL, %d shown by the model (equal), the rest hidden", report, len(want), shown)
		if seen != len(want) || shown == 0 {
			t.Errorf("%s: the model has %d of SQL's %d cells, %d shown", report, seen, len(want), shown)
		}
	}
	compare := func(report string, sql string, dims int) {
		t.Helper()
		compareBy(report, reports.Filter{}, sql, dims)
	}
	flow := func(group string) string {
		return `SELECT ` + group + `,
			count(DISTINCT referral_id),
			count(DISTINCT referral_id) FILTER (WHERE status = 'accepted'),
			count(DISTINCT referral_id) FILTER (WHERE status = 'declined'),
			count(DISTINCT referral_id) FILTER (WHERE status = 'expired')
			FROM ` + q + `.offers GROUP BY ` + group
	}
	compare("flows/countries", flow("referrer_country, organisation_country"), 2)
	compare("flows/organisations", flow("referrer, organisation"), 2)
	compare("gaps", `SELECT country, coalesce(region, ''), need, reason, count(DISTINCT referral_id)
		FROM `+q+`.unmatched_needs GROUP BY 1, 2, 3, 4`, 4)
	compare("gaps/constraints", `SELECT need, excluded_by, referrals FROM `+q+`.gaps_by_constraint`, 2)
	compare("outcomes", `SELECT n.need, p.outcome, count(DISTINCT p.referral_id)
		FROM `+q+`.placements p, unnest(p.needs) AS n(need) WHERE p.outcome IS NOT NULL GROUP BY 1, 2`, 2)
	compare("feedback", `SELECT question, answer, referrals FROM `+q+`.feedback_by_answer`, 2)
	// The impact page's tables: by the quarter the referral was
	// requested in and the victim's country.
	quarter := `to_char(r.requested_at AT TIME ZONE 'UTC', 'YYYY"-Q"Q')`
	byQuarter := reports.Filter{By: "quarter"}
	compareBy("impact/outcomes", byQuarter, `SELECT `+quarter+`, r.country, p.outcome, count(DISTINCT (p.referral_id, n.need))
		FROM `+q+`.placements p JOIN `+q+`.referrals r USING (referral_id), unnest(p.needs) AS n(need)
		WHERE p.outcome IS NOT NULL GROUP BY 1, 2, 3`, 3)
	compareBy("impact/feedback", byQuarter, `SELECT `+quarter+`, r.country, a.question, a.value::text, count(DISTINCT a.referral_id)
			FROM `+q+`.feedback_answers a JOIN `+q+`.referrals r USING (referral_id) GROUP BY 1, 2, 3, 4
		UNION ALL SELECT `+quarter+`, r.country, 'missing', m.code, count(DISTINCT m.referral_id)
			FROM `+q+`.feedback_missing m JOIN `+q+`.referrals r USING (referral_id) GROUP BY 1, 2, 3, 4`, 4)
	compareBy("times", byQuarter, `SELECT `+quarter+`, r.country, count(*), count(*) FILTER (WHERE EXISTS (
			SELECT 1 FROM `+q+`.placements p WHERE p.referral_id = r.referral_id AND p.contacted_at IS NOT NULL))
		FROM `+q+`.referrals r GROUP BY 1, 2`, 2)
	compare("times", `SELECT r.country, count(*), count(*) FILTER (WHERE EXISTS (
			SELECT 1 FROM `+q+`.placements p WHERE p.referral_id = r.referral_id AND p.contacted_at IS NOT NULL))
		FROM `+q+`.referrals r GROUP BY 1`, 1)
	compare("groups", `WITH r AS (
			SELECT r.*, EXISTS (SELECT 1 FROM `+q+`.placements p WHERE p.referral_id = r.referral_id AND p.contacted_at IS NOT NULL) AS contacted
			FROM `+q+`.referrals r),
		d AS (
			SELECT 'crime' AS dim, c.crime AS val, r.contacted FROM r JOIN `+q+`.referral_crimes c USING (referral_id)
			UNION ALL SELECT 'need', n.need, r.contacted FROM r JOIN `+q+`.referral_needs n USING (referral_id)
			UNION ALL SELECT 'flag', f, contacted FROM r, unnest(flags) AS f
			UNION ALL SELECT 'language', l, contacted FROM r, unnest(languages) AS l
			UNION ALL SELECT 'channel', c, contacted FROM r, unnest(channels) AS c
			UNION ALL SELECT 'age_band', age_band, contacted FROM r
			UNION ALL SELECT 'gender', gender, contacted FROM r WHERE gender IS NOT NULL
			UNION ALL SELECT 'cross_border', cross_border::text, contacted FROM r)
		SELECT dim, val, count(*), count(*) FILTER (WHERE contacted) FROM d GROUP BY 1, 2`, 2)

	// Medians: the lower median of whole minutes, in SQL percentile_disc.
	tb, err := model.Report("organisations", reports.Scope{}, reports.Filter{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	medians := 0
	for _, r := range tb.Rows {
		m := r.Stats["median_minutes_to_accept"]
		if m == nil {
			continue
		}
		var want float64
		if err := b.pg.pool.QueryRow(testCtx(t), `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY floor(extract(epoch FROM answered_at - offered_at) / 60))
			FROM `+q+`.offers WHERE status = 'accepted' AND organisation = $1`, r.Key["organisation"]).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if *m != want {
			t.Errorf("%s: median to accept: model %v, SQL %v", r.Key["organisation"], *m, want)
		}
		medians++
	}
	if medians == 0 {
		t.Error("no median compared")
	}
}

func toInt(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case int32:
		return int(n)
	case int:
		return n
	}
	return 0
}
