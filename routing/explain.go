package routing

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/invictus-network/invictus/events"
)

// Reason codes: the codes of [Reason], each the key of its label, in
// every language of the taxonomy, in the "explanations"/"reasons" section
// of schemas/taxonomy.json. What a service meets and what it does not
// meet are both reasons.
const (
	ReasonCovers               = "covers"                // the needs of the group (Terms)
	ReasonAlsoOffers           = "also_offers"           // more of the profile's needs (Terms)
	ReasonNotOffered           = "not_offered"           // needs of the profile it does not offer (Terms)
	ReasonPreferred            = "preferred"             // of the organisation the victim prefers
	ReasonSpecialised          = "specialised"           // in the victim's crimes and flags (Terms)
	ReasonOtherCrimes          = "other_crimes"          // a specialist in other crimes only (Terms: the victim's)
	ReasonSpeaks               = "speaks"                // the victim's languages it speaks (Terms)
	ReasonNotFirstLanguage     = "not_first_language"    // not the victim's first language (Terms)
	ReasonInterpreterProvided  = "interpreter_provided"  // no shared language; it brings the interpreter
	ReasonInterpreterArranged  = "interpreter_arranged"  // no shared language; one must be arranged
	ReasonDistance             = "distance"              // Km to its nearest location
	ReasonAcrossWater          = "across_water"          // its nearest location is across the sea
	ReasonAcrossBorder         = "across_border"         // its nearest location is in another country
	ReasonRemote               = "remote"                // the remote channels the victim accepts (Terms)
	ReasonNoLocation           = "no_location"           // no location listed
	ReasonChannels             = "channels"              // the channels shared with the victim (Terms)
	ReasonNotFirstChannel      = "not_first_channel"     // not the victim's preferred channel (Terms)
	ReasonMeetsAccessibility   = "meets_accessibility"   // (Terms)
	ReasonAccessibilityWaived  = "accessibility_waived"  // needs of the place that do not arise (Terms)
	ReasonAccepting            = "accepting"             // capacity status
	ReasonWaitingList          = "waiting_list"          // capacity status
	ReasonOpenOffers           = "open_offers"           // N offers await its answer
	ReasonAlwaysOpen           = "always_open"           // 24/7
	ReasonOpenNow              = "open_now"              // open now (an emergency)
	ReasonOnlyFor              = "only_for"              // its eligible age bands and genders (Terms)
	ReasonServesResidence      = "serves_residence"      // the residence country (Terms)
	ReasonAcceptedOf           = "accepted_of"           // accepted N of M offers
	ReasonAnswersInMinutes     = "answers_in_minutes"    // observed time to answer, N minutes
	ReasonAnswersInHours       = "answers_in_hours"      // N hours
	ReasonAnswersInDays        = "answers_in_days"       // N days
	ReasonPromisesHours        = "promises_hours"        // its stated answer time, N hours
	ReasonRelaxedAccessibility = "relaxed_accessibility" // relaxed: does not meet (Terms)
	ReasonRelaxedChannel       = "relaxed_channel"       // relaxed: only these channels (Terms)
	ReasonRelaxedOpenNow       = "relaxed_open_now"      // relaxed: closed at this hour
)

// UnmatchedNowhere labels an unmatched need that no service of the whole
// directory offers (events.UnmatchedNeed.Nowhere); it is a label, not a
// value of UnmatchedNeed.Reason.
const UnmatchedNowhere = "nowhere"

// Term is a taxonomy code named by a reason: Section is its section of
// schemas/taxonomy.json ("needs", "crimes", "flags", "channels",
// "accessibility", "age_bands", "genders") or "languages" (ISO 639-1) or
// "countries".
type Term struct {
	Section string `json:"section"`
	Code    string `json:"code"`
}

// Reason is one reason of a candidate's explanation, in codes, so that it
// can be put in the words of any language of the taxonomy
// ([Reason.Words]). Candidate.Reasons are the same reasons in codes
// and English.
type Reason struct {
	// Code is one of the Reason* constants.
	Code string `json:"code"`
	// Terms are the codes the reason names, in order.
	Terms []Term `json:"terms,omitempty"`
	// N and M are its counts, Km its distance.
	N  int     `json:"n,omitempty"`
	M  int     `json:"m,omitempty"`
	Km float64 `json:"km,omitempty"`
}

// Labeler gives the label of a code of a section in a language, as
// (*schemas.Taxonomy).Label does: the sections of taxonomy.json and of its
// explanations, "languages" and "countries".
type Labeler interface {
	Label(section, code, lang string) string
}

// ReasonCodes lists every Reason* code, the codes a plan's reasons use.
var ReasonCodes = []string{
	ReasonCovers, ReasonAlsoOffers, ReasonNotOffered, ReasonPreferred, ReasonSpecialised, ReasonOtherCrimes,
	ReasonSpeaks, ReasonNotFirstLanguage, ReasonInterpreterProvided, ReasonInterpreterArranged,
	ReasonDistance, ReasonAcrossWater, ReasonAcrossBorder, ReasonRemote, ReasonNoLocation, ReasonChannels, ReasonNotFirstChannel,
	ReasonMeetsAccessibility, ReasonAccessibilityWaived, ReasonAccepting, ReasonWaitingList, ReasonOpenOffers,
	ReasonAlwaysOpen, ReasonOpenNow, ReasonOnlyFor, ReasonServesResidence, ReasonAcceptedOf,
	ReasonAnswersInMinutes, ReasonAnswersInHours, ReasonAnswersInDays, ReasonPromisesHours,
	ReasonRelaxedAccessibility, ReasonRelaxedChannel, ReasonRelaxedOpenNow,
}

// ConstraintCodes lists every Constraint* name, in the order they are
// checked.
var ConstraintCodes = constraintNames[1:]

// UnmatchedCodes lists the labels of the reasons a need is not covered.
var UnmatchedCodes = []string{UnmatchedNoService, UnmatchedNowhere, UnmatchedExcluded}

// ComponentCodes lists every Component* name.
var ComponentCodes = componentNames[:]

// reasonCodeText is the English of each reason in codes: the text of
// Candidate.Reasons and of the referral.planned event.
var reasonCodeText = map[string]string{
	ReasonCovers:               "covers {terms}",
	ReasonAlsoOffers:           "also offers {terms}",
	ReasonNotOffered:           "does not offer {terms}",
	ReasonPreferred:            "organisation preferred by the victim",
	ReasonSpecialised:          "specialised in {terms}",
	ReasonOtherCrimes:          "not specialised in {terms}",
	ReasonSpeaks:               "speaks {terms}",
	ReasonNotFirstLanguage:     "does not speak {terms}",
	ReasonInterpreterProvided:  "no shared language: the service provides an interpreter",
	ReasonInterpreterArranged:  "no shared language: an interpreter must be arranged",
	ReasonDistance:             "{km} km",
	ReasonAcrossWater:          "across the sea",
	ReasonAcrossBorder:         "across a border",
	ReasonRemote:               "remote: {list}",
	ReasonNoLocation:           "no location listed",
	ReasonChannels:             "channels: {list}",
	ReasonNotFirstChannel:      "preferred channel {terms} not offered",
	ReasonMeetsAccessibility:   "meets {terms}",
	ReasonAccessibilityWaived:  "no visit needed, so {terms} does not arise",
	ReasonAccepting:            "accepting",
	ReasonWaitingList:          "waiting list",
	ReasonOpenOffers:           "{n} open offers",
	ReasonAlwaysOpen:           "24/7",
	ReasonOpenNow:              "open now",
	ReasonOnlyFor:              "only for {terms}",
	ReasonServesResidence:      "serves {terms}, where the victim lives",
	ReasonAcceptedOf:           "accepted {n} of {m} offers",
	ReasonAnswersInMinutes:     "answers in about {n} min",
	ReasonAnswersInHours:       "answers in about {n} h",
	ReasonAnswersInDays:        "answers in about {n} days",
	ReasonPromisesHours:        "promises an answer within {n} h",
	ReasonRelaxedAccessibility: "relaxed accessibility: does not meet {terms}",
	ReasonRelaxedChannel:       "relaxed channel: only {list}",
	ReasonRelaxedOpenNow:       "relaxed open now: closed at this hour",
}

// Words returns the reason in the words of lang: its label from l (the
// taxonomy's "reasons") with the labels of its terms and its numbers put
// in.
func (r Reason) Words(l Labeler, lang string) string {
	labels := make([]string, len(r.Terms))
	for i, t := range r.Terms {
		labels[i] = l.Label(t.Section, t.Code, lang)
		if t.Section != "languages" && t.Section != "countries" {
			// Within a sentence: "Covers emotional support".
			labels[i] = lowerFirst(labels[i])
		}
	}
	return fill(l.Label("reasons", r.Code, lang), labels, l.Label("words", "and", lang), l.Label("words", "decimal_point", lang), r)
}

// appendCodeText appends the reason in codes and English to dst, clipped
// to maxReasonLen bytes with a mark, as clip.Mark would clip it.
func (r Reason) appendCodeText(dst []byte) []byte {
	start := len(dst)
	dst = appendFill(dst, reasonCodeText[r.Code], r.Terms, nil, "and", ".", r)
	if len(dst)-start <= maxReasonLen {
		return dst
	}
	const mark = "..."
	cut := start + max(maxReasonLen-len(mark), 0)
	for cut > start && !utf8.RuneStart(dst[cut]) {
		cut--
	}
	return append(dst[:cut], mark...)
}

// codeTexts returns the reasons in codes and English, each as
// appendCodeText writes it: one string shared by all, so that a
// candidate's dozen reasons cost one allocation, not one each.
func codeTexts(why []Reason) []string {
	var ends [maxReasons]int
	buf := make([]byte, 0, 640)
	for i, r := range why {
		buf = r.appendCodeText(buf)
		ends[i] = len(buf)
	}
	all := string(buf)
	text := make([]string, len(why))
	start := 0
	for i := range why {
		text[i] = all[start:ends[i]]
		start = ends[i]
	}
	return text
}

// fill puts the terms and numbers of r into the template.
func fill(tmpl string, terms []string, and, point string, r Reason) string {
	if strings.IndexByte(tmpl, '{') < 0 {
		return tmpl
	}
	return string(appendFill(make([]byte, 0, len(tmpl)+16*len(terms)), tmpl, nil, terms, and, point, r))
}

// appendFill appends the template to dst with the terms and numbers of r
// put in: the terms are labels, or the codes of codes when labels is nil.
// It runs for every reason of every planned candidate, so it scans the
// template once and allocates nothing but dst's growth.
func appendFill(dst []byte, tmpl string, codes []Term, labels []string, and, point string, r Reason) []byte {
	n := len(labels)
	term := func(i int) string { return labels[i] }
	if labels == nil {
		n = len(codes)
		term = func(i int) string { return codes[i].Code }
	}
	i := strings.IndexByte(tmpl, '{')
	for i >= 0 {
		dst = append(dst, tmpl[:i]...)
		tmpl = tmpl[i:]
		end := strings.IndexByte(tmpl, '}')
		if end < 0 {
			break
		}
		switch tmpl[:end+1] {
		case "{terms}":
			// "a", "a and b", "a, b and c" with the word for "and".
			for k := range n {
				switch {
				case k == n-1 && k > 0:
					dst = append(dst, ' ')
					dst = append(dst, and...)
					dst = append(dst, ' ')
				case k > 0:
					dst = append(dst, ", "...)
				}
				dst = append(dst, term(k)...)
			}
		case "{list}":
			for k := range n {
				if k > 0 {
					dst = append(dst, ", "...)
				}
				dst = append(dst, term(k)...)
			}
		case "{n}":
			dst = strconv.AppendInt(dst, int64(r.N), 10)
		case "{m}":
			dst = strconv.AppendInt(dst, int64(r.M), 10)
		case "{km}":
			if point == "." {
				dst = appendKm(dst, r.Km)
			} else {
				dst = append(dst, strings.Replace(formatKm(r.Km), ".", point, 1)...)
			}
		default:
			dst = append(dst, tmpl[:end+1]...)
		}
		tmpl = tmpl[end+1:]
		i = strings.IndexByte(tmpl, '{')
	}
	return append(dst, tmpl...)
}

// lowerFirst lower-cases the first letter of a label (the taxonomy's
// labels begin with a capital and none with an acronym).
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// UnmatchedWords returns why the need u is not covered in the words of
// lang: the reason, and for services excluded, each constraint that
// removed some with its count, in the order they are checked.
func UnmatchedWords(u events.UnmatchedNeed, l Labeler, lang string) string {
	switch {
	case u.Reason == UnmatchedExcluded:
		s := fill(l.Label("unmatched_reasons", UnmatchedExcluded, lang), nil, "", "", Reason{N: u.Offered})
		var parts []string
		for _, c := range ConstraintCodes {
			if n := u.Excluded[c]; n > 0 {
				parts = append(parts, l.Label("constraints", c, lang)+": "+strconv.Itoa(n))
			}
		}
		if len(parts) > 0 {
			s += " (" + strings.Join(parts, "; ") + ")"
		}
		return s
	case u.Nowhere:
		return l.Label("unmatched_reasons", UnmatchedNowhere, lang)
	}
	return l.Label("unmatched_reasons", UnmatchedNoService, lang)
}

// codeTerms appends the codes of codes (numbers into names, ascending)
// whose bitset in m has the service at j, or all of them when m is nil.
func codeTerms(dst []Term, section string, names []string, codes []int, m [][chunkWords]uint64, j int32) []Term {
	for _, k := range codes {
		if m == nil || m[k][j>>6]>>(j&63)&1 != 0 {
			dst = append(dst, Term{section, names[k]})
		}
	}
	return dst
}

// restrictedTerms appends the codes (names by number) the service at j is
// restricted to by the bitsets m, none when it is unrestricted (any).
func restrictedTerms(dst []Term, section string, names []string, m [][chunkWords]uint64, any bool, j int32) []Term {
	if any {
		return dst
	}
	for k, name := range names {
		if m[k][j>>6]>>(j&63)&1 != 0 {
			dst = append(dst, Term{section, name})
		}
	}
	return dst
}

// chanTerms appends the profile's channels in mask as terms, in taxonomy
// order.
func (q *query) chanTerms(dst []Term, mask uint64) []Term {
	for n, k := range q.chanCode {
		if mask>>n&1 != 0 {
			dst = append(dst, Term{"channels", q.t.num.channels[k]})
		}
	}
	return dst
}

// accTerms appends the profile's accessibility needs in mask as terms,
// in taxonomy order.
func (q *query) accTerms(dst []Term, mask uint64) []Term {
	for n, k := range q.accCode {
		if mask>>n&1 != 0 {
			dst = append(dst, Term{"accessibility", q.t.num.accs[k]})
		}
	}
	return dst
}

// needTerms appends the profile's needs in mask as terms, in profile
// order.
func (q *query) needTerms(dst []Term, mask uint64) []Term {
	for j, b := range q.needBits {
		if mask&b != 0 {
			dst = append(dst, Term{"needs", q.needList[j]})
		}
	}
	return dst
}

// langTerms appends the languages of langs (profile order) the service
// speaks.
func langTerms(dst []Term, langs, spoken []string) []Term {
	for _, l := range langs {
		if slices.Contains(spoken, l) {
			dst = append(dst, Term{"languages", l})
		}
	}
	return dst
}
