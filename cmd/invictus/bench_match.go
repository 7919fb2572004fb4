package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/internal/bench"
	"github.com/invictus-network/invictus/routing"
)

// Defaults of `invictus bench match`.
const (
	benchProfilesDefault = 1000
	benchMatchesDefault  = 20000
	benchQueriesDefault  = 1000
	benchCheckDefault    = 200
	benchSeedDefault     = 1
	benchRunsDefault     = 3
	benchTimeoutDefault  = 30 * time.Minute
)

// benchSizesDefault are the directory sizes measured by default.
var benchSizesDefault = []int{1000, 10000, 100000}

// benchAt is the time the benchmark judges opening hours at: a Friday noon,
// so that the emergencies among the profiles find offices open.
var benchAt = time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)

type benchMatchOptions struct {
	postgres string
	sizes    []int
	profiles int
	matches  int
	queries  int
	check    int
	runs     int
	seed     int64
	asJSON   bool
	timeout  time.Duration
}

// benchMatchResult is what `bench match` measures at one directory size.
// Durations are in nanoseconds in JSON.
type benchMatchResult struct {
	Services int `json:"services"`
	// IndexBuild is the time to build the search index; FirstMatch the
	// first match, which derives the matcher's per-snapshot tables.
	IndexBuild time.Duration `json:"index_build_ns"`
	FirstMatch time.Duration `json:"first_match_ns"`
	Matches    int           `json:"matches"` // per run
	MatchP50   time.Duration `json:"match_p50_ns"`
	MatchP99   time.Duration `json:"match_p99_ns"`
	MatchMean  time.Duration `json:"match_mean_ns"`
	// MatchCPUP50 and MatchCPUP99 are percentiles of the CPU time of
	// one match on its thread (Linux only): the latency without the time
	// spent waiting for a CPU on a busy machine.
	MatchCPUP50 time.Duration `json:"match_cpu_p50_ns,omitempty"`
	MatchCPUP99 time.Duration `json:"match_cpu_p99_ns,omitempty"`
	AllocsOp    float64       `json:"allocs_per_match"`
	BytesOp     float64       `json:"bytes_per_match"`
	// CandidatesP50 and CandidatesP99 are the numbers of candidates the
	// index returned per profile.
	CandidatesP50 int               `json:"candidates_p50"`
	CandidatesP99 int               `json:"candidates_p99"`
	Postgres      *benchPostgresFig `json:"postgres,omitempty"`
}

// benchPostgresFig are the figures of the SQL half at one size.
type benchPostgresFig struct {
	// Schema is the schema the directory was loaded into, dropped since.
	Schema   string        `json:"schema"`
	Load     time.Duration `json:"load_ns"`
	Index    time.Duration `json:"index_ns"`
	Checked  int           `json:"checked_profiles"`
	Queries  int           `json:"queries"` // per run
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Mean     time.Duration `json:"mean_ns"`
	RatioP50 float64       `json:"ratio_p50"`
	RatioP99 float64       `json:"ratio_p99"`
}

// benchMatchReport is the whole output of `bench match --json`.
type benchMatchReport struct {
	CPUs       int                `json:"cpus"`
	Runs       int                `json:"runs"`
	GOMAXPROCS int                `json:"gomaxprocs"`
	LoadAvg    string             `json:"load_average,omitempty"`
	Profiles   int                `json:"profiles"`
	Postgres   string             `json:"postgres"`
	Results    []benchMatchResult `json:"results"`
}

func newBenchMatchCmd(out, errOut io.Writer) *cobra.Command {
	o := benchMatchOptions{sizes: benchSizesDefault}
	cmd := &cobra.Command{
		Use:   "match",
		Short: "Measure the matcher on generated directories, side by side with the same query on PostgreSQL",
		Long: "Bench match generates directories of each size, draws realistic needs profiles\n" +
			"(victims in the demo countries' cities, weighted by population) and measures\n" +
			"one match per profile: the median and 99th percentile latency and allocations.\n\n" +
			"With --postgres it loads the same directory into a schema of its own in that\n" +
			"database (GIN indexes on the code arrays, GiST on the location points, as an\n" +
			"HSDS-style API would have), checks that one SQL query selects exactly the\n" +
			"services the matcher ranks, times that query for the same profiles and prints\n" +
			"both and their ratio. The schema is dropped at the end. Without --postgres the\n" +
			"PostgreSQL half is skipped.\n\n" +
			"The SQL side only selects the eligible ids; the matcher also scores, groups and\n" +
			"explains them, so the ratio understates the matcher's advantage.",
		Example: "  invictus bench match\n" +
			"  invictus bench match --postgres postgres://postgres@127.0.0.1:5432/test?sslmode=disable\n" +
			"  invictus bench match --sizes 1000,10000 --matches 5000 --json",
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&o.postgres, "postgres", "", "PostgreSQL URL for the SQL side (a schema bench_<random> is created and dropped)")
	f.IntSliceVar(&o.sizes, "sizes", benchSizesDefault, "directory sizes (services)")
	f.IntVar(&o.profiles, "profiles", benchProfilesDefault, "distinct needs profiles")
	f.IntVar(&o.matches, "matches", benchMatchesDefault, "matches timed per size")
	f.IntVar(&o.queries, "queries", benchQueriesDefault, "SQL queries timed per size")
	f.IntVar(&o.check, "check", benchCheckDefault, "profiles whose SQL and matcher selections are compared per size")
	f.IntVar(&o.runs, "runs", benchRunsDefault, "timed runs per size and side; each figure is the median of the runs")
	f.Int64Var(&o.seed, "seed", benchSeedDefault, "seed of the directories and profiles")
	f.BoolVar(&o.asJSON, "json", false, "print the figures as JSON")
	f.DurationVar(&o.timeout, "timeout", benchTimeoutDefault, "how long the whole run may take")

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, v := range []struct {
			name string
			n    int
		}{{"profiles", o.profiles}, {"matches", o.matches}, {"queries", o.queries}, {"runs", o.runs}} {
			if v.n < 1 {
				return usageError{fmt.Errorf("--%s %d: must be at least 1", v.name, v.n)}
			}
		}
		if o.check < 0 {
			return usageError{fmt.Errorf("--check %d: must not be negative", o.check)}
		}
		if len(o.sizes) == 0 || slices.ContainsFunc(o.sizes, func(n int) bool { return n < 1 }) {
			return usageError{fmt.Errorf("--sizes %v: want positive numbers of services", o.sizes)}
		}
		if o.timeout <= 0 {
			return usageError{fmt.Errorf("--timeout %s: must be positive", o.timeout)}
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		defer cancel()
		progress := errOut
		if o.asJSON {
			progress = io.Discard
		}
		rep, err := runBenchMatch(ctx, o, progress)
		if err != nil {
			return err
		}
		if o.asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		return writeBenchMatch(out, rep)
	}
	return cmd
}

// runBenchMatch measures every size; progress gets a line per step.
func runBenchMatch(ctx context.Context, o benchMatchOptions, progress io.Writer) (*benchMatchReport, error) {
	rep := &benchMatchReport{CPUs: runtime.NumCPU(), Runs: o.runs, GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvg: loadAverage(), Profiles: o.profiles}
	profiles := routing.SampleProfiles(o.profiles, o.seed)
	var pool *pgxpool.Pool
	if o.postgres == "" {
		rep.Postgres = "skipped: no --postgres URL given (e.g. --postgres postgres://postgres@127.0.0.1:5432/test?sslmode=disable)"
		fmt.Fprintln(progress, "PostgreSQL half", rep.Postgres)
	} else {
		cfg, err := pgxpool.ParseConfig(o.postgres)
		if err != nil {
			return nil, &flagError{flag: "postgres", value: "(url)", err: err}
		}
		cfg.MaxConns = 2
		cfg.ConnConfig.RuntimeParams["application_name"] = "invictus bench match"
		// Plans made for each query's values: PostgreSQL's best for array
		// parameters (a generic plan is about twice as slow here).
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err == nil {
			err = pool.Ping(ctx)
		}
		if err != nil {
			if pool != nil {
				pool.Close()
			}
			return nil, &flagError{flag: "postgres", value: cfg.ConnConfig.Host, err: err}
		}
		defer pool.Close()
		rep.Postgres = fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	}
	// The matcher at every size first, then PostgreSQL: the database's
	// background work after a load must not run during the matcher's
	// timing.
	for _, n := range o.sizes {
		r, err := benchMatchSize(ctx, o, n, profiles, progress)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r)
	}
	if pool == nil {
		return rep, nil
	}
	for k := range rep.Results {
		r := &rep.Results[k]
		d := directory.Generate(r.Services, o.seed)
		snap := directory.NewIndex(d, 1)
		fig, err := benchPostgres(ctx, o, d, snap, routing.NewMatcher(routing.Config{}), profiles, pool, progress)
		if err != nil {
			return nil, err
		}
		fig.RatioP50 = float64(fig.P50) / float64(max(r.MatchP50, 1))
		fig.RatioP99 = float64(fig.P99) / float64(max(r.MatchP99, 1))
		r.Postgres = fig
	}
	return rep, nil
}

func benchMatchSize(ctx context.Context, o benchMatchOptions, n int, profiles []events.Profile, progress io.Writer) (benchMatchResult, error) {
	r := benchMatchResult{Services: n, Matches: o.matches}
	fmt.Fprintf(progress, "services=%d: generating the directory\n", n)
	d := directory.Generate(n, o.seed)
	start := time.Now()
	snap := directory.NewIndex(d, 1)
	r.IndexBuild = time.Since(start)
	m := routing.NewMatcher(routing.Config{})
	at := routing.At(benchAt)
	start = time.Now()
	if _, err := m.Match(snap, profiles[0], at); err != nil {
		return r, err
	}
	r.FirstMatch = time.Since(start)

	cands := make([]int, 0, len(profiles))
	for _, p := range profiles {
		plan, err := m.Match(snap, p, at)
		if err != nil {
			return r, fmt.Errorf("match: %w", err)
		}
		cands = append(cands, plan.Considered)
	}
	slices.Sort(cands)
	r.CandidatesP50, r.CandidatesP99 = cands[len(cands)/2], cands[len(cands)*99/100]

	fmt.Fprintf(progress, "services=%d: %d runs of %d matches\n", n, o.runs, o.matches)
	lat := make([]time.Duration, o.matches)
	var runs [3][]time.Duration // p50, p99, mean of each run
	var mallocs, bytes uint64
	for range o.runs {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range lat {
			if i%1024 == 0 && ctx.Err() != nil {
				return r, ctx.Err()
			}
			t0 := time.Now()
			if _, err := m.Match(snap, profiles[i%len(profiles)], at); err != nil {
				return r, err
			}
			lat[i] = time.Since(t0)
		}
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		bytes += after.TotalAlloc - before.TotalAlloc
		p50, p99, mean := percentiles(lat)
		runs[0], runs[1], runs[2] = append(runs[0], p50), append(runs[1], p99), append(runs[2], mean)
	}
	r.AllocsOp = float64(mallocs) / float64(o.matches*o.runs)
	r.BytesOp = float64(bytes) / float64(o.matches*o.runs)
	r.MatchP50, r.MatchP99, r.MatchMean = median(runs[0]), median(runs[1]), median(runs[2])

	// One more run for the CPU time of each match, on a locked thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := range lat {
		c0, ok := threadCPU()
		if !ok {
			return r, nil
		}
		if _, err := m.Match(snap, profiles[i%len(profiles)], at); err != nil {
			return r, err
		}
		c1, _ := threadCPU()
		lat[i] = c1 - c0
	}
	r.MatchCPUP50, r.MatchCPUP99, _ = percentiles(lat)
	return r, nil
}

// median returns the median of the durations (sorting them).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// benchPostgres loads d into a fresh schema, checks the SQL selection
// against the matcher's and times the query; the schema is dropped.
func benchPostgres(ctx context.Context, o benchMatchOptions, d *directory.Directory, snap *directory.Index, m *routing.Matcher,
	profiles []events.Profile, pool *pgxpool.Pool, progress io.Writer) (fig *benchPostgresFig, err error) {
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	b, err := bench.NewSQLMatch(pool, "bench_"+hex.EncodeToString(suffix))
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, b.Drop(dctx))
	}()
	fmt.Fprintf(progress, "services=%d: loading PostgreSQL schema %s\n", len(d.Services), b.Schema())
	fig = &benchPostgresFig{Schema: b.Schema(), Queries: o.queries}
	if fig.Load, fig.Index, err = b.Load(ctx, d); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "services=%d: checking %d profiles, then %d queries\n", len(d.Services), min(o.check, len(profiles)), o.queries)
	for i, p := range profiles[:min(o.check, len(profiles))] {
		want, err := m.Eligible(snap, p, routing.At(benchAt))
		if err != nil {
			return nil, err
		}
		got, err := b.Eligible(ctx, p, benchAt)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(got, want) {
			return nil, fmt.Errorf("bench match: profile %d: the SQL query selects %d services, the matcher %d: the comparison would be unfair", i, len(got), len(want))
		}
		fig.Checked++
	}
	lat := make([]time.Duration, o.queries)
	var runs [3][]time.Duration
	for range o.runs {
		for i := range lat {
			t0 := time.Now()
			if _, err := b.Eligible(ctx, profiles[i%len(profiles)], benchAt); err != nil {
				return nil, err
			}
			lat[i] = time.Since(t0)
		}
		p50, p99, mean := percentiles(lat)
		runs[0], runs[1], runs[2] = append(runs[0], p50), append(runs[1], p99), append(runs[2], mean)
	}
	fig.P50, fig.P99, fig.Mean = median(runs[0]), median(runs[1]), median(runs[2])
	return fig, nil
}

// percentiles sorts lat and returns its median, 99th percentile and mean.
func percentiles(lat []time.Duration) (p50, p99, mean time.Duration) {
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[min(len(lat)*99/100, len(lat)-1)], sum / time.Duration(len(lat))
}

// loadAverage returns the system's load averages, where Linux tells them.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func writeBenchMatch(w io.Writer, rep *benchMatchReport) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Matcher vs PostgreSQL: %d profiles, medians of %d runs; %d CPUs, GOMAXPROCS %d", rep.Profiles, rep.Runs, rep.CPUs, rep.GOMAXPROCS)
	if rep.LoadAvg != "" {
		fmt.Fprintf(&sb, ", load average %s", rep.LoadAvg)
	}
	fmt.Fprintf(&sb, "\nPostgreSQL: %s\n\n", rep.Postgres)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "services\tcandidates p50/p99\tmatch p50\tmatch p99\tCPU p50/p99\tallocs/op\tB/op\tSQL p50\tSQL p99\tratio p50\tratio p99\t")
	for _, r := range rep.Results {
		sqlP50, sqlP99, r50, r99 := "-", "-", "-", "-"
		if pg := r.Postgres; pg != nil {
			sqlP50, sqlP99 = fmtDur(pg.P50), fmtDur(pg.P99)
			r50, r99 = fmt.Sprintf("%.0fx", pg.RatioP50), fmt.Sprintf("%.0fx", pg.RatioP99)
		}
		cpu := "-"
		if r.MatchCPUP50 > 0 {
			cpu = fmtDur(r.MatchCPUP50) + "/" + fmtDur(r.MatchCPUP99)
		}
		fmt.Fprintf(tw, "%d\t%d/%d\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t\n", r.Services, r.CandidatesP50, r.CandidatesP99,
			fmtDur(r.MatchP50), fmtDur(r.MatchP99), cpu, r.AllocsOp, r.BytesOp, sqlP50, sqlP99, r50, r99)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sb.WriteString("\nmatch p50/p99: wall-clock latency; CPU p50/p99: CPU time of the match on its thread (without waiting for a CPU).\n" +
		"ratio: SQL latency over match latency, each at the same percentile.\n\n")
	for _, r := range rep.Results {
		fmt.Fprintf(&sb, "services=%d: index built in %s, first match %s", r.Services, fmtDur(r.IndexBuild), fmtDur(r.FirstMatch))
		if pg := r.Postgres; pg != nil {
			fmt.Fprintf(&sb, "; PostgreSQL copy %s, indexes %s, %d profiles checked: same services selected", fmtDur(pg.Load), fmtDur(pg.Index), pg.Checked)
		}
		sb.WriteString("\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}
