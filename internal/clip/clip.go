// Package clip shortens text for logs, headers, problem messages and
// reasons, one way everywhere: at most n bytes, never splitting a UTF-8
// sequence. It imports only the standard library, so the domain packages
// may use it.
package clip

import (
	"strings"
	"unicode/utf8"
)

// To returns s cut to at most n bytes on a rune boundary.
func To(s string, n int) string { return Mark(s, n, "") }

// Mark returns s when it fits in n bytes, and otherwise s cut on a rune
// boundary and followed by mark ("…", "..."), the whole at most n bytes.
func Mark(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Line returns s as one line (carriage returns and line feeds become
// spaces) of at most n bytes: what fits in a NATS header value.
func Line(s string, n int) string {
	return To(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s), n)
}
