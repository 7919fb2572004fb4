package routing

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/invictus-network/invictus/internal/clip"
)

// TestCodeTexts checks the reasons in codes and English that a candidate
// carries: each is its template with its terms and numbers put in, and
// one longer than the planned event allows is cut at a character
// boundary, with a mark, exactly as clip.Mark cuts the whole text,
// however the reasons share their buffer.
func TestCodeTexts(t *testing.T) {
	t.Parallel()
	long := make([]Term, 40)
	for i := range long {
		long[i] = Term{"needs", "suppé.emotional"} // the cut falls inside an é
	}
	why := []Reason{
		{Code: ReasonCovers, Terms: []Term{{"needs", "info.rights"}}},
		{Code: ReasonChannels, Terms: []Term{{"channels", "phone"}, {"channels", "chat"}}},
		{Code: ReasonSpeaks, Terms: []Term{{"languages", "pt"}, {"languages", "en"}, {"languages", "fr"}}},
		{Code: ReasonAlsoOffers, Terms: long},
		{Code: ReasonDistance, Km: 3.44},
		{Code: ReasonAcceptedOf, N: 3, M: 12},
		{Code: ReasonAccepting},
	}
	want := []string{
		"covers info.rights",
		"channels: phone, chat",
		"speaks pt, en and fr",
		"", // below
		"3.4 km",
		"accepted 3 of 12 offers",
		"accepting",
	}
	codes := make([]string, len(long))
	for i, l := range long {
		codes[i] = l.Code
	}
	whole := "also offers " + strings.Join(codes[:len(codes)-1], ", ") + " and " + codes[len(codes)-1]
	want[3] = clip.Mark(whole, maxReasonLen, "...")
	if len(want[3]) > maxReasonLen || !strings.HasSuffix(want[3], "...") {
		t.Fatalf("the long reason is not cut: %q", want[3])
	}
	got := codeTexts(why)
	if len(got) != len(want) {
		t.Fatalf("%d texts for %d reasons", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reason %d: %q, want %q", i, got[i], want[i])
		}
		if !utf8.ValidString(got[i]) {
			t.Errorf("reason %d: %q is not valid UTF-8", i, got[i])
		}
	}
}
