package console

import (
	"strings"
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/invictus-network/invictus/directory"
)

// euCountries are the member states (lower-case ISO 3166-1), the
// residence countries of cross-border cases.
var euCountries = []string{"at", "be", "bg", "cy", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr", "hr", "hu", "ie",
	"it", "lt", "lu", "lv", "mt", "nl", "pl", "pt", "ro", "se", "si", "sk"}

// countryName is a country's name in lang.
func countryName(cc, lang string) string {
	reg, err := language.ParseRegion(strings.ToUpper(cc))
	if err != nil {
		return cc
	}
	if n := display.Regions(language.Make(lang)).Name(reg); n != "" {
		return n
	}
	return cc
}

// langChoices are the languages of the network (directory.Languages),
// each by its own name.
var langChoices = sync.OnceValue(func() []choice {
	var out []choice
	for _, l := range directory.Languages() {
		name := l.NativeName
		if name == "" {
			name = l.Name
		}
		out = append(out, choice{Value: l.Code, Label: name})
	}
	return out
})

// languageName is a language's own name.
func languageName(code string) string {
	for _, l := range langChoices() {
		if l.Value == code {
			return l.Label
		}
	}
	if n := display.Self.Name(language.Make(code)); n != "" {
		return n
	}
	return code
}
