package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/invictus-network/invictus/adapters/httpapi"
	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/schemas"
)

// newOpenAPICmd is `invictus openapi`: the OpenAPI document the node serves
// at /v1/openapi.json, for generators and linters that work offline.
func newOpenAPICmd(out io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "openapi",
		Short: "Print the OpenAPI 3.1 document of the HTTP API, bundled (what /v1/openapi.json serves)",
		Long: "Openapi prints the OpenAPI 3.1 document of the HTTP API as JSON, exactly as a node\n" +
			"serves it at /v1/openapi.json: self-contained, with every payload schema under\n" +
			"components.schemas, so that a saved copy works with code generators and linters.",
		Example: "  invictus openapi > openapi.json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			doc, err := httpapi.OpenAPIDocument()
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, doc, "", "  "); err != nil {
				return err
			}
			buf.WriteByte('\n')
			_, err = out.Write(buf.Bytes())
			return err
		},
	}
}

// taxonomySections are the code lists `invictus taxonomy` prints, in order.
var taxonomySections = []string{
	"needs", "crimes", "flags", "urgencies", "age_bands", "genders", "channels", "accessibility",
	"consent_methods", "decline_reasons", "outcomes", "withdraw_reasons", "capacity_statuses",
}

// taxonomyTerm is one code of `invictus taxonomy --json`.
type taxonomyTerm struct {
	Code     string   `json:"code"`
	Label    string   `json:"label"`
	Articles []string `json:"directive_articles,omitempty"`
}

// newTaxonomyCmd is `invictus taxonomy [SECTION...] [--lang xx]`: every code
// a profile or a command may carry, with its label.
func newTaxonomyCmd(out io.Writer) *cobra.Command {
	var lang string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "taxonomy [SECTION...]",
		Short: "List the codes of needs, crimes, flags and the other code lists, with their labels",
		Long: "Taxonomy lists the stable codes of the contract (schemas/taxonomy.json) with their\n" +
			"labels in one language: needs with the articles of Directive 2012/29/EU they\n" +
			"come from, crimes, flags, and the other code lists. Name sections to list only\n" +
			"those (" + strings.Join(taxonomySections, ", ") + ").\n" +
			"Labels other than English are drafts until native speakers review them.",
		Example: "  invictus taxonomy needs\n" +
			"  invictus taxonomy --lang pt needs crimes\n" +
			"  invictus taxonomy --json | jq -r '.needs[].code'",
		ValidArgs: taxonomySections,
		Args:      cobra.OnlyValidArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			t, err := schemas.LoadTaxonomy()
			if err != nil {
				return err
			}
			if !slices.Contains(t.Languages, lang) {
				return usageError{fmt.Errorf("--lang %q: want one of %s", lang, strings.Join(t.Languages, ", "))}
			}
			if len(args) == 0 {
				args = taxonomySections
			}
			all := t.Sections()
			if asJSON {
				doc := map[string]any{"language": lang, "review_status": t.ReviewStatus[lang]}
				for _, sec := range args {
					terms := make([]taxonomyTerm, 0, len(all[sec]))
					for _, term := range all[sec] {
						terms = append(terms, taxonomyTerm{Code: term.Code, Label: term.Labels[lang], Articles: term.DirectiveArticles})
					}
					doc[sec] = terms
				}
				return printJSON(out, doc)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			for i, sec := range args {
				if i > 0 {
					fmt.Fprintln(tw)
				}
				fmt.Fprintf(tw, "%s\n", strings.ToUpper(strings.ReplaceAll(sec, "_", " ")))
				for _, term := range all[sec] {
					line := term.Code + "\t" + term.Labels[lang]
					if len(term.DirectiveArticles) > 0 {
						line += "\t(art. " + strings.Join(term.DirectiveArticles, ", ") + ")"
					}
					fmt.Fprintln(tw, line)
				}
			}
			if st := t.ReviewStatus[lang]; st == schemas.ReviewDraft {
				fmt.Fprintf(tw, "\nThe %s labels are drafts awaiting review by native speakers.\n", lang)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "en", "language of the labels: en, bg, hr, fi, fr, it, nl or pt")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {section: [{code, label, directive_articles}]}")
	_ = cmd.RegisterFlagCompletionFunc("lang", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		t, err := schemas.LoadTaxonomy()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return t.Languages, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// newProfileCmd is `invictus profile template|check`.
func newProfileCmd(out io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Write a needs profile template, or check a profile without sending it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newProfileTemplateCmd(out), newProfileCheckCmd(out))
	return cmd
}

// profileTemplate is the YAML `invictus profile template` prints; %s is
// the time of the consent record.
const profileTemplate = `# A needs profile for 'invictus refer' and 'invictus match': the payload of
# invictus.referral.requested.v1 (schema: urn:invictus:schema:referral.requested.v1).
# Codes only: nothing here may identify the victim. 'invictus taxonomy' lists
# every code with its label. Lines starting with '#' are optional fields.
needs: [support.emotional, safety.shelter]   # at least one need code
crimes: [domestic_violence]                  # crime codes
flags: [close_relationship_offender]         # individual assessment flags (Art. 22)
urgency: soon                                # routine, soon, urgent or emergency
location:
  country: pt                                # ISO 3166-1 alpha-2, lower case
  region: PT170                              # NUTS code inside the country
  # municipality: "1106"                     # LAU code
  # lat: 38.72                               # WGS84, rounded to 0.01 (the node rounds)
  # lon: -9.14
  # residence_country: fi                    # when the victim lives elsewhere
languages: [pt, en]                          # in order of preference
interpreter_ok: true
age_band: adult                              # child, youth, adult or older
# gender: female
channels: [in_person, phone]                 # acceptable channels
# accessibility: [wheelchair]
consent:
  referral: true                             # the victim consents to be referred
  share_data: true                           # and to share data with the receiver
  given_at: %s
  method: verbal                             # verbal, written or digital
  recorded_by: staff-s0001                   # a pseudonymous staff reference, not a name
# preferred_organisation: pt.amcv
# response_hours: 48                         # ask for an answer within this many hours
`

func newProfileTemplateCmd(out io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "template",
		Short: "Print a needs profile to fill in (YAML, with comments), valid as it is",
		Example: "  invictus profile template > profile.yaml\n" +
			"  invictus profile check profile.yaml && invictus refer profile.yaml",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(out, profileTemplate, time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339))
			return err
		},
	}
}

func newProfileCheckCmd(out io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check PROFILE",
		Short: "Check a needs profile (JSON or YAML) and list every problem, with JSON pointers",
		Long: "Check reads a profile as 'invictus refer' does (\"-\" reads standard input) and\n" +
			"reports every problem at once, each with the JSON pointer of the field, the\n" +
			"code and a message: the same errors as the HTTP API and the routing service.\n" +
			"It sends nothing. The exit code is 1 when there is a problem.",
		Example: "  invictus profile check profile.yaml\n  invictus profile check --json profile.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := readProfile(args[0], cmd.InOrStdin(), true)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(out, map[string]any{"valid": true, "needs": req.Needs})
			}
			_, err = fmt.Fprintf(out, "%s: a valid profile (%d need(s): %s)\n", args[0], len(req.Needs), strings.Join(req.Needs, ", "))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON; problems go to standard error as JSON")
	return cmd
}

// profileError lists every problem of a profile file, with pointers into
// the file's document ("/needs/1").
type profileError struct {
	name     string
	problems []events.Problem
}

func (e *profileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s: %d problem(s):", e.name, len(e.problems))
	for _, p := range e.problems {
		ptr := p.Pointer
		if ptr == "" {
			ptr = "/"
		}
		fmt.Fprintf(&b, "\n  %s %s: %s", ptr, p.Code, p.Message)
	}
	return b.String()
}

// jsonProblem is one error of `--json` output on standard error: the
// shape of the HTTP API's errors.
type jsonProblem struct {
	Pointer   string `json:"pointer"`
	Parameter string `json:"parameter,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// jsonErrorBody is what a command run with --json writes to standard
// error when it fails: {"errors": [...], "exit_code": n}.
type jsonErrorBody struct {
	Errors   []jsonProblem `json:"errors"`
	ExitCode int           `json:"exit_code"`
}

// wantsJSON reports whether the command that ran was asked for JSON.
func wantsJSON(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// writeJSONError writes err as a jsonErrorBody line to w.
func writeJSONError(w io.Writer, err error, exit int) {
	body := jsonErrorBody{ExitCode: exit}
	var pe *profileError
	var ve *events.ValidationError
	var fe *flagError
	switch {
	case errors.As(err, &pe):
		for _, p := range pe.problems {
			body.Errors = append(body.Errors, jsonProblem{Pointer: p.Pointer, Code: p.Code, Message: p.Message})
		}
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			body.Errors = append(body.Errors, jsonProblem{Pointer: p.Pointer, Code: p.Code, Message: p.Message})
		}
	case errors.As(err, &fe):
		body.Errors = []jsonProblem{{Parameter: "--" + fe.flag, Code: exitCodeName(exit), Message: err.Error()}}
	default:
		body.Errors = []jsonProblem{{Code: exitCodeName(exit), Message: err.Error()}}
	}
	b, jerr := json.Marshal(body)
	if jerr != nil {
		fmt.Fprintf(w, "invictus: %v\n", err)
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}

// exitCodeName is the error code of an exit code in JSON errors.
func exitCodeName(exit int) string {
	switch exit {
	case exitUsage:
		return "usage"
	case exitUnavailable:
		return "unavailable"
	}
	return "failed"
}
