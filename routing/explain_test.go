package routing_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/invictus-network/invictus/events"
	"github.com/invictus-network/invictus/routing"
	"github.com/invictus-network/invictus/schemas"
)

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

// Every code a plan explains itself with (its reasons, the constraints
// that exclude services, why a need is not covered, the score components)
// has a label in every language of the taxonomy, with the placeholders of
// the English one, and the taxonomy lists no code the matcher does not use.
func TestEveryReasonCodeHasALabelInEachLanguage(t *testing.T) {
	t.Parallel()
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		t.Fatal(err)
	}
	sections := tax.Explanations.Sections()
	for section, codes := range map[string][]string{
		"reasons":           routing.ReasonCodes,
		"constraints":       routing.ConstraintCodes,
		"unmatched_reasons": routing.UnmatchedCodes,
		"components":        routing.ComponentCodes,
	} {
		var listed []string
		for _, term := range sections[section] {
			listed = append(listed, term.Code)
		}
		if !slices.Equal(listed, codes) {
			t.Errorf("taxonomy.json explanations %s = %v, want the matcher's %v", section, listed, codes)
		}
		for _, code := range codes {
			term, ok := tax.Term(section, code)
			if !ok {
				continue // reported above
			}
			want := placeholder.FindAllString(term.Labels["en"], -1)
			slices.Sort(want)
			for _, lang := range tax.Languages {
				label := term.Labels[lang]
				if strings.TrimSpace(label) == "" {
					t.Errorf("%s %s: no %s label", section, code, lang)
					continue
				}
				got := placeholder.FindAllString(label, -1)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s [%s] %q: placeholders %v, want %v as in English", section, code, lang, label, got, want)
				}
			}
		}
	}
	for _, w := range []string{"and", "decimal_point"} {
		for _, lang := range tax.Languages {
			if term, ok := tax.Term("words", w); !ok || term.Labels[lang] == "" {
				t.Errorf("words %s: no %s label", w, lang)
			}
		}
	}
}

// A plan's reasons use only the listed codes, and put in French they
// name the services' needs, languages and distance in French.
func TestReasonsInWords(t *testing.T) {
	t.Parallel()
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		t.Fatal(err)
	}
	s := baseService("pt.org.svc")
	s.Needs = []string{events.NeedSafetyShelter, events.NeedSupportEmotional}
	s.Languages = []string{"en"}
	s.Crimes = []string{"robbery"}
	s.Channels = []string{events.ChannelInPerson}
	s.Locations[0].Lat += 0.03
	p := baseProfile()
	p.Needs = []string{events.NeedSafetyShelter, events.NeedJusticeLegalAid}
	p.Languages = []string{"pt", "en"}
	p.Crimes = []string{"domestic_violence"}
	p.Channels = []string{events.ChannelPhone, events.ChannelInPerson}
	m := routing.NewMatcher(routing.Config{Stats: stats{s.ID: {Answered: 10, Accepted: 9, ResponseTime: 3 * 24 * time.Hour, OpenOffers: 2}}})
	plan, err := m.Match(index(s), p)
	if err != nil {
		t.Fatal(err)
	}
	c := plan.Groups[0].Primary()
	if len(c.Why) != len(c.Reasons) {
		t.Fatalf("why %v and reasons %q differ in length", c.Why, c.Reasons)
	}
	var fr []string
	for _, r := range c.Why {
		if !slices.Contains(routing.ReasonCodes, r.Code) {
			t.Errorf("reason %q is not in ReasonCodes", r.Code)
		}
		fr = append(fr, r.Words(tax, "fr"))
	}
	got := strings.Join(fr, "; ")
	for _, want := range []string{
		"Couvre hébergement", "Ne propose pas aide juridictionnelle", "Spécialisé uniquement dans d'autres infractions : violence domestique",
		"Parle anglais", "Ne parle pas portugais, la première langue de la victime", "À 3,3 km",
		"Ne propose pas téléphone, le canal préféré de la victime", "Propositions en attente de réponse : 2",
		"A accepté 9 propositions sur 10", "Répond en 3 jours environ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("French reasons lack %q:\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "{}") || strings.Contains(got, "safety.shelter") {
		t.Errorf("French reasons show a placeholder or a code: %s", got)
	}
	// The same in codes, as the planned event carries them.
	for _, want := range []string{"does not offer justice.legal_aid", "not specialised in domestic_violence", "does not speak pt", "3.3 km", "answers in about 3 days"} {
		if !slices.Contains(c.Reasons, want) {
			t.Errorf("reasons %q lack %q", c.Reasons, want)
		}
	}
}

// Why a need is not covered, in words: the constraints that removed the
// services offering it, with their counts.
func TestUnmatchedInWords(t *testing.T) {
	t.Parallel()
	tax, err := schemas.LoadTaxonomy()
	if err != nil {
		t.Fatal(err)
	}
	u := events.UnmatchedNeed{Need: events.NeedSafetyShelter, Reason: routing.UnmatchedExcluded, Offered: 3,
		Excluded: map[string]int{routing.ConstraintLanguage: 2, routing.ConstraintCapacity: 1}}
	if got, want := routing.UnmatchedWords(u, tax, "pt"), "Serviços que o oferecem: 3; nenhum cumpre todas as condições (Sem vagas: 1; Sem língua comum e a vítima não quer intérprete: 2)"; got != want {
		t.Errorf("pt:\n%s\nwant\n%s", got, want)
	}
	u = events.UnmatchedNeed{Need: events.NeedSafetyShelter, Reason: routing.UnmatchedNoService, Nowhere: true}
	if got := routing.UnmatchedWords(u, tax, "nl"); got != "Geen enkele dienst in de gids biedt het aan" {
		t.Errorf("nl nowhere: %q", got)
	}
	u.Nowhere = false
	if got := routing.UnmatchedWords(u, tax, "bg"); got != "Никоя услуга не го предлага тук" {
		t.Errorf("bg no service: %q", got)
	}
}
