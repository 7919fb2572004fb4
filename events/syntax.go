package events

// The syntaxes of ids, codes and timestamps that every decoded event is
// checked against, matched byte by byte: as the regular expressions they
// were written as (kept in syntax_internal_test.go, which checks that both
// agree), they cost a tenth of decoding an event.

// byteSet is a set of bytes.
type byteSet [256]bool

// newByteSet returns the set of the bytes of ranges, read in pairs
// ("az09" is a-z and 0-9), and of the single bytes of singles.
func newByteSet(ranges, singles string) *byteSet {
	var s byteSet
	for i := 0; i+1 < len(ranges); i += 2 {
		for c := int(ranges[i]); c <= int(ranges[i+1]); c++ {
			s[c] = true
		}
	}
	for i := 0; i < len(singles); i++ {
		s[singles[i]] = true
	}
	return &s
}

// span reports whether s is lo to hi bytes long, all in set.
func (set *byteSet) span(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

var (
	setDigit     = newByteSet("09", "")
	setHexLower  = newByteSet("09af", "")
	setAlnum     = newByteSet("AZaz09", "")
	setLowerNum  = newByteSet("az09", "")
	setLower     = newByteSet("az", "")
	setUpper     = newByteSet("AZ", "")
	setUpperNum  = newByteSet("AZ09", "")
	setSlug      = newByteSet("az09", "-")
	setIDRest    = newByteSet("AZaz09", "._:-")
	setComponent = newByteSet("az", "_")
	setLAU       = newByteSet("AZ09", "_-")
	setBech32    = newByteSet("29chjnpz", "0a") // [02-9ac-hj-np-z]
)

// isSlug matches ^[a-z0-9-]{1,48}$ (the slug of an organisation or
// service id).
func isSlug(s string) bool { return setSlug.span(s, 1, 48) }

// isEventIDSyntax matches EventIDPattern,
// ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$.
func isEventIDSyntax(s string) bool {
	return len(s) > 0 && setAlnum[s[0]] && setIDRest.span(s[1:], 0, MaxIDLength-1)
}

// isPlacementSyntax matches ^[a-z0-9-]{1,16}$.
func isPlacementSyntax(s string) bool { return setSlug.span(s, 1, 16) }

// isStaffRefSyntax matches StaffRefPattern, ^[a-z]{2,8}-[a-z0-9]{4,32}$:
// the prefix holds no hyphen, so the first one ends it.
func isStaffRefSyntax(s string) bool {
	for i := 0; i < len(s) && i <= 8; i++ {
		if s[i] == '-' {
			return i >= 2 && setLower.span(s[:i], 2, 8) && setLowerNum.span(s[i+1:], 4, 32)
		}
	}
	return false
}

// isComponent matches ^[a-z_]{1,32}$.
func isComponent(s string) bool { return setComponent.span(s, 1, 32) }

// isNUTSSyntax matches ^[A-Z]{2}[0-9A-Z]{1,3}$.
func isNUTSSyntax(s string) bool {
	return len(s) >= 3 && setUpper.span(s[:2], 2, 2) && setUpperNum.span(s[2:], 1, 3)
}

// isLAU matches ^[A-Z0-9_-]{1,20}$.
func isLAU(s string) bool { return setLAU.span(s, 1, 20) }

// isAgeRecipientSyntax matches ^age1[02-9ac-hj-np-z]{58}$.
func isAgeRecipientSyntax(s string) bool {
	return len(s) == 62 && s[:4] == "age1" && setBech32.span(s[4:], 58, 58)
}

// isInvictusSource matches ^/invictus/[a-z0-9-]{1,48}$.
func isInvictusSource(s string) bool {
	const prefix = "/invictus/"
	return len(s) > len(prefix) && s[:len(prefix)] == prefix && isSlug(s[len(prefix):])
}

// isExtName matches ^[a-z0-9]{1,20}$.
func isExtName(s string) bool { return setLowerNum.span(s, 1, 20) }

// isTraceParentSyntax matches
// ^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$.
func isTraceParentSyntax(s string) bool {
	return len(s) == 55 && s[2] == '-' && s[35] == '-' && s[52] == '-' &&
		setHexLower.span(s[:2], 2, 2) && setHexLower.span(s[3:35], 32, 32) &&
		setHexLower.span(s[36:52], 16, 16) && setHexLower.span(s[53:], 2, 2)
}

// isRFC3339 matches the RFC 3339 date-time syntax (upper-case T and Z, as
// Go parses it; time.Time alone also accepts one-digit hours, offsets of
// 24 hours and decimal commas):
// ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$
func isRFC3339(s string) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(layout)+1 {
		return false
	}
	for i := 0; i < len(layout); i++ {
		if layout[i] == 'd' {
			if !setDigit[s[i]] {
				return false
			}
		} else if s[i] != layout[i] {
			return false
		}
	}
	rest := s[len(layout):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && setDigit[rest[n]] {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return true
	case len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':':
		return false
	}
	h1, h2, m1, m2 := rest[1], rest[2], rest[4], rest[5]
	hourOK := (h1 == '0' || h1 == '1') && setDigit[h2] || h1 == '2' && '0' <= h2 && h2 <= '3'
	return hourOK && '0' <= m1 && m1 <= '5' && setDigit[m2]
}
