package web

import "testing"

// TestLangLinks: the switcher of a page under any prefix links to the
// same page in every language, and a path that does not go on below the
// language's prefix to each language's home.
func TestLangLinks(t *testing.T) {
	t.Parallel()
	links := LangLinks("/console/", "pt", "/console/pt/referrals/r1", "")
	if len(links) != len(Languages) {
		t.Fatalf("%d links, want %d", len(links), len(Languages))
	}
	for i, l := range links {
		want := "/console/" + Languages[i] + "/referrals/r1"
		if l.Code != Languages[i] || l.URL != want || l.Current != (l.Code == "pt") || l.Name == "" {
			t.Errorf("link %d: %+v, want %s at %s", i, l, Languages[i], want)
		}
	}
	if l := LangLinks("/", "fi", "/fi/find", "?country=fi")[0]; l.URL != "/en/find?country=fi" || l.Name != "English" {
		t.Errorf("public page: %+v", l)
	}
	for _, path := range []string{"", "/console/pt", "/console/ptx"} {
		if l := LangLinks("/console/", "pt", path, "")[1]; l.URL != "/console/bg/" {
			t.Errorf("path %q: %+v, want the home page", path, l)
		}
	}
}
