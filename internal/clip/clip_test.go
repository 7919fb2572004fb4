package clip

import (
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{To("abc", 3), "abc"},
		{To("abcd", 3), "abc"},
		{To("aé", 2), "a"}, // é is two bytes: never half of it
		{To("abc", 0), ""},
		{Mark("abcdef", 5, "…"), "ab…"},
		{Mark("abc", 5, "…"), "abc"},
		{Mark("abcdef", 5, "..."), "ab..."},
		{Mark("aééé", 5, "..."), "a..."},
		{Line("a\r\nb", 10), "a  b"},
		{Line("a\nbcdef", 4), "a bc"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
		if !utf8.ValidString(c.got) {
			t.Errorf("%q is not valid UTF-8", c.got)
		}
	}
}
