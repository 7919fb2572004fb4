package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/invictus-network/invictus/adapters/natsjs"
	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/schemas"
)

// matchDemoSeedDefault is the seed of the demo directory of `match --demo`,
// the one `serve --demo` loads.
const matchDemoSeedDefault = 1

// matchOptions are the flags of `invictus match`.
type matchOptions struct {
	asJSON    bool
	demo      bool
	demoSeed  int64
	dirFile   string
	at        string
	fallbacks int
	prefer    string
	lang      string
}

func newMatchCmd(out, errOut io.Writer) *cobra.Command {
	var o matchOptions
	cmd := &cobra.Command{
		Use:   "match PROFILE",
		Short: "Preview the plan for a needs profile: the services that match, ranked and explained",
		Long: "Match reads a needs profile (the JSON or YAML of a referral.requested payload, or\n" +
			"of its profile alone; \"-\" reads standard input) and prints the plan the routing\n" +
			"service would make: need groups with a primary and ranked fallbacks, each with its\n" +
			"score and the reasons for it, the needs nothing covers and how many services each\n" +
			"hard constraint excluded, in the words of --lang (the taxonomy's languages; the\n" +
			"labels of languages other than English are drafts). Nothing is sent.\n\n" +
			"The directory is a running server's (--nats-url), a stopped server's data\n" +
			"directory (--data), a directory file (--directory, any format 'directory import'\n" +
			"reads) or the demo directory in memory (--demo: no server needed).",
		Example: "  invictus match profile.json --demo\n" +
			"  invictus match profile.json --demo --lang pt\n" +
			"  invictus match profile.yaml --json --data ./data\n" +
			"  cat requested.json | invictus match - --nats-url nats://127.0.0.1:4222 --fallbacks 5",
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.BoolVar(&o.asJSON, "json", false, "print the referral.planned payload as JSON")
	f.BoolVar(&o.demo, "demo", false, "match against the demo directory in memory")
	f.Int64Var(&o.demoSeed, "demo-seed", matchDemoSeedDefault, "seed of the demo directory (with --demo)")
	f.StringVar(&o.dirFile, "directory", "", "match against a directory file instead of a server")
	f.StringVar(&o.at, "at", "", "judge opening hours at this RFC 3339 time instead of now (emergencies)")
	f.IntVar(&o.fallbacks, "fallbacks", routing.FallbacksDefault, fmt.Sprintf("ranked fallbacks per placement, 0 to %d", routing.FallbacksMax))
	f.StringVar(&o.lang, "lang", "en", "language of the table: "+strings.Join(schemasLanguages(), ", "))
	f.StringVar(&o.prefer, "prefer", "", "organisation to rank first (default: the profile's preferred_organisation)")
	sf := addStoreFlags(cmd)

	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		sources := 0
		for _, set := range []bool{o.demo, o.dirFile != "", f.Changed("data"), f.Changed("nats-url")} {
			if set {
				sources++
			}
		}
		if sources > 1 {
			return usageError{errors.New("--demo, --directory, --data and --nats-url: choose one directory")}
		}
		if !slices.Contains(schemasLanguages(), o.lang) {
			return usageError{fmt.Errorf("--lang %q: want one of %s", o.lang, strings.Join(schemasLanguages(), ", "))}
		}
		if o.fallbacks < 0 || o.fallbacks > routing.FallbacksMax {
			return usageError{fmt.Errorf("--fallbacks %d: want 0 to %d", o.fallbacks, routing.FallbacksMax)}
		}
		opts := []routing.MatchOption{routing.WithFallbacks(o.fallbacks)}
		if o.at != "" {
			at, err := time.Parse(time.RFC3339, o.at)
			if err != nil {
				return usageError{fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-11-27T03:00:00+01:00", o.at)}
			}
			opts = append(opts, routing.At(at))
		}
		req, err := readProfile(args[0], cmd.InOrStdin(), false)
		if err != nil {
			return err
		}
		// The one validation of a profile, as refer, POST /v1/match and
		// the routing service apply it.
		if err := events.ValidateProfile(req.Profile); err != nil {
			return fmt.Errorf("profile %s: %w", args[0], err)
		}
		if prefer := firstNonEmpty(o.prefer, req.PreferredOrganisation); prefer != "" {
			opts = append(opts, routing.WithPreferredOrganisation(prefer))
		}
		snap, err := o.snapshot(cmd, sf, errOut)
		if err != nil {
			return err
		}
		plan, err := routing.NewMatcher(routing.Config{}).Match(snap, req.Profile, opts...)
		if err != nil {
			return err
		}
		if o.asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(plan.Event())
		}
		tax, err := schemas.LoadTaxonomy()
		if err != nil {
			return err
		}
		return writePlanTable(out, plan, snap, tax, o.lang)
	}
	return cmd
}

// schemasLanguages are the languages of the taxonomy's labels.
func schemasLanguages() []string {
	if t, err := schemas.LoadTaxonomy(); err == nil {
		return t.Languages
	}
	return []string{"en"}
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// snapshot loads the directory the flags name into an index.
func (o *matchOptions) snapshot(cmd *cobra.Command, sf *storeFlags, errOut io.Writer) (*directory.Index, error) {
	switch {
	case o.demo:
		d, err := directory.Demo(o.demoSeed)
		if err != nil {
			return nil, err
		}
		return directory.NewIndex(d, 1), nil
	case o.dirFile != "":
		d, err := readDirectoryFile(o.dirFile, "", cmd.InOrStdin())
		if err != nil {
			return nil, printProblems(errOut, o.dirFile, err)
		}
		return directory.NewIndex(d, 1), nil
	}
	var snap *directory.Index
	err := sf.withStore(cmd, errOut, func(ctx context.Context, s *natsjs.DirectoryStore) error {
		d, rev, err := s.Load(ctx)
		if err != nil {
			return err
		}
		snap = directory.NewIndex(d, rev)
		return nil
	})
	return snap, err
}

// readProfile reads a referral.requested payload or a bare profile, JSON or
// YAML, from the file ("-" is stdin). A payload with consent is validated
// as referral.requested; a bare profile is checked by the matcher.
func readProfile(name string, stdin io.Reader, needConsent bool) (*events.Requested, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] != '{' {
		// YAML: the same fields, converted to JSON for the strict decoder.
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("profile %s: not JSON nor YAML: %w", name, err)
		}
		if data, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	// The same checks as the HTTP API and the routing service, every
	// problem at once. Without needConsent, a profile without "consent"
	// is enough (a preview: 'invictus match').
	p, err := events.DecodePayload(events.TypeReferralRequested, data)
	var ve *events.ValidationError
	switch {
	case err == nil:
		return p.(*events.Requested), nil
	case !errors.As(err, &ve):
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	ps := ve.Problems
	if _, ok := raw["consent"]; !ok && !needConsent {
		ps = slices.DeleteFunc(slices.Clone(ps), func(p events.Problem) bool {
			return p.Pointer == "/consent" || strings.HasPrefix(p.Pointer, "/consent/")
		})
	}
	if len(ps) > 0 {
		return nil, &profileError{name: name, problems: ps}
	}
	var req events.Requested
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	return &req, nil
}

// writePlanTable prints the plan for a person in the words of lang: a
// line per candidate with its service's and organisation's names and the
// reasons for it, then the needs nothing covers and why, the options that
// fail only one constraint and the exclusions.
func writePlanTable(w io.Writer, p *routing.Plan, snap *directory.Index, tax *schemas.Taxonomy, lang string) error {
	word := func(code string, pairs ...string) string {
		return strings.NewReplacer(pairs...).Replace(tax.Label("words", code, lang))
	}
	needs := func(codes []string) string {
		labels := make([]string, len(codes))
		for i, c := range codes {
			labels[i] = tax.Label("needs", c, lang)
		}
		return strings.Join(labels, ", ")
	}
	reasons := func(c routing.Candidate) string {
		out := make([]string, len(c.Why))
		for i, r := range c.Why {
			out[i] = r.Words(tax, lang)
		}
		return strings.Join(out, "; ")
	}
	name := func(c routing.Candidate) string {
		org := c.Organisation
		if o := snap.Organisation(c.Organisation); o != nil && o.Name != "" {
			org = o.Name
		}
		return fmt.Sprintf("%s — %s (%s)", c.Name, org, c.Service)
	}
	var b strings.Builder
	b.WriteString(word("plan", "{n}", fmt.Sprint(p.Revision), "{m}", fmt.Sprint(len(p.Groups)),
		"{k}", fmt.Sprint(p.Considered), "{e}", fmt.Sprint(p.Eligible)) + "\n")
	if p.Urgency == events.UrgencyEmergency {
		b.WriteString(word("emergency") + "\n")
	}
	if len(p.Groups) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(word("placement")), strings.ToUpper(word("needs")),
			strings.ToUpper(word("rank")), strings.ToUpper(word("service")), strings.ToUpper(word("score")), strings.ToUpper(word("reasons")))
		for _, g := range p.Groups {
			for i, c := range g.Candidates {
				group, ns := "", ""
				if i == 0 {
					group, ns = g.Placement, needs(g.Needs)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.3f\t%s\n", group, ns, i+1, name(c), c.Score, reasons(c))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(p.Unmatched) > 0 {
		b.WriteString("\n" + word("not_covered") + ":\n")
		for _, u := range p.Unmatched {
			fmt.Fprintf(&b, "  %s [%s]: %s\n", tax.Label("needs", u.Need, lang), u.Need, routing.UnmatchedWords(u, tax, lang))
		}
	}
	for _, r := range p.Relaxed {
		b.WriteString("\n" + word("relaxed", "{terms}", tax.Label("constraints", r.Constraint, lang), "{need}", tax.Label("needs", r.Need, lang)) + ":\n")
		for i, c := range r.Candidates {
			fmt.Fprintf(&b, "  %d. %s %.3f: %s\n", i+1, name(c), c.Score, reasons(c))
		}
	}
	if len(p.Excluded) > 0 {
		b.WriteString("\n" + word("excluded_by") + ":")
		for _, k := range routing.ConstraintCodes {
			if n := p.Excluded[k]; n > 0 {
				fmt.Fprintf(&b, " %s [%s] %d;", tax.Label("constraints", k, lang), k, n)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
