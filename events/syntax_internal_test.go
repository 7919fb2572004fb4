package events

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// syntaxes pairs each byte-by-byte matcher of syntax.go with the regular
// expression it replaces.
var syntaxes = []struct {
	name  string
	match func(string) bool
	re    *regexp.Regexp
	// alphabet is what random candidates are drawn from: the pattern's
	// own bytes and a few outside it.
	alphabet string
	// samples are valid values that random candidates are mutated from.
	samples []string
}{
	{"slug", isSlug, regexp.MustCompile(`^[a-z0-9-]{1,48}$`), "az09-A_. ", []string{"apav", "a-b-c1", strings.Repeat("a", 48)}},
	{"eventid", isEventIDSyntax, regexp.MustCompile(EventIDPattern), "aZ09._:-/ *>", []string{"a", "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5", "01HX:1.2_3", strings.Repeat("x", 128)}},
	{"placement", isPlacementSyntax, regexp.MustCompile(`^[a-z0-9-]{1,16}$`), "az09-A_", []string{"p1", "g0-1", strings.Repeat("p", 16)}},
	{"staffref", isStaffRefSyntax, regexp.MustCompile(StaffRefPattern), "az09-A.", []string{"apav-lx0412", "staff-s017", "ab-1234", "abcdefgh-" + strings.Repeat("a1", 16)}},
	{"component", isComponent, regexp.MustCompile(`^[a-z_]{1,32}$`), "az_-A0", []string{"need_fit", "a", strings.Repeat("_", 32)}},
	{"nuts", isNUTSSyntax, regexp.MustCompile(`^[A-Z]{2}[0-9A-Z]{1,3}$`), "AZ09a-", []string{"PT1", "PT17", "EL301", "DE9Z"}},
	{"lau", isLAU, regexp.MustCompile(`^[A-Z0-9_-]{1,20}$`), "AZ09_-a.", []string{"1106", "PT_1106-A"}},
	{"agerecipient", isAgeRecipientSyntax, regexp.MustCompile(`^age1[02-9ac-hj-np-z]{58}$`), "0123456789abchijnopqz", []string{"age1" + strings.Repeat("qpzry9x8gf2tvdw0s3jn54khce6mua7l", 2)[:58]}},
	{"invictussource", isInvictusSource, regexp.MustCompile(`^/invictus/[a-z0-9-]{1,48}$`), "/invictusaz09-A", []string{"/invictus/routing", "/invictus/directory-1"}},
	{"extname", isExtName, regexp.MustCompile(`^[a-z0-9]{1,20}$`), "az09-A_", []string{"correlationid", "traceparent", "a1"}},
	{"traceparent", isTraceParentSyntax, regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`), "09af-AFg", []string{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
	{"rfc3339", isRFC3339, regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`),
		"0123456789-+:.TZtz ,", []string{"2026-03-01T10:30:00Z", "2026-03-01T10:30:00.123456789+01:00", "2026-03-01T10:30:00-23:59", "2026-03-01T10:30:00.5+19:05"}},
}

// TestSyntaxMatchesRegexp checks every matcher against its regular
// expression on edge cases and on random mutations of valid values
// (inserted, deleted and replaced bytes, truncations): changing a bound
// or a byte class of a matcher fails it.
func TestSyntaxMatchesRegexp(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sx := range syntaxes {
		cands := []string{"", " ", "\n", "\x00", "é"}
		for _, s := range sx.samples {
			cands = append(cands, s, s+"\n", s+"x", "x"+s, s[:len(s)-1], s[1:], strings.ToUpper(s), s+s)
			for range 3000 {
				b := []byte(s)
				for range 1 + rng.IntN(3) {
					c := sx.alphabet[rng.IntN(len(sx.alphabet))]
					switch i := rng.IntN(len(b) + 1); rng.IntN(4) {
					case 0:
						b = append(b[:i], append([]byte{c}, b[i:]...)...)
					case 1:
						if i < len(b) {
							b = append(b[:i], b[i+1:]...)
						}
					case 2:
						if i < len(b) {
							b[i] = c
						}
					default:
						b = b[:i]
					}
				}
				cands = append(cands, string(b))
			}
		}
		for _, c := range cands {
			if got, want := sx.match(c), sx.re.MatchString(c); got != want {
				t.Errorf("%s(%q) = %v; the regular expression says %v", sx.name, c, got, want)
			}
		}
	}
}

// FuzzSyntax checks the matchers against their regular expressions on
// any input.
func FuzzSyntax(f *testing.F) {
	for _, sx := range syntaxes {
		for _, s := range sx.samples {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, sx := range syntaxes {
			if got, want := sx.match(s), sx.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v; the regular expression says %v", sx.name, s, got, want)
			}
		}
	})
}
