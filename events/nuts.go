package events

import "strings"

// NUTS regions.
//
// A profile's location.region is a NUTS code of the NUTS 2021 or the NUTS
// 2024 version (Regulation (EC) No 1059/2003 as amended by Commission
// Delegated Regulation (EU) 2023/674 for NUTS 2024, in force from 1
// January 2024). The directory of this project is tagged with NUTS 2021
// (see directory.Demo); a NUTS 2024 code is matched through the NUTS 2021
// region that contains it ([NUTS2021Of]).
//
// The codes of the countries listed in nutsCodes are checked: an unknown
// code ("PT99", "PT71") is rejected with a JSON pointer to the region.
// For other countries only the form and the country prefix are checked:
// the repository has no complete NUTS list of them (its city data holds
// the regions of 406 cities only), and refusing every code missing from
// that would refuse real regions. A well-formed code that does not exist
// ("FR999") matches no regional service; the country's, the point's and
// remote services still apply (see the README, Schemas).
//
// Source of the Portuguese codes and of their correspondence: Eurostat,
// "NUTS 2021 - NUTS 2024" correspondence table (the NUTS history files
// published with the NUTS 2024 classification), which records that the
// 2024 version replaced the NUTS 2 regions PT16 Centro, PT17 Área
// Metropolitana de Lisboa and PT18 Alentejo by PT19 Centro, PT1A Grande
// Lisboa, PT1B Península de Setúbal, PT1C Alentejo and PT1D Oeste e Vale
// do Tejo, each NUTS 3 region of 2024 lying within one NUTS 3 region of
// 2021 (PT170 was split into PT1A0 and PT1B0). Transcribed by hand: check
// against the published table before relying on it for another purpose.

// nuts2024To2021 maps each Portuguese NUTS 2024 code that is not a NUTS
// 2021 code to the NUTS 2021 code of the region that contains it. A NUTS
// 2 region of 2024 that straddles two of 2021 (PT1D) maps to their common
// parent, PT1.
var nuts2024To2021 = map[string]string{
	"PT19": "PT16", "PT191": "PT16D", "PT192": "PT16E", "PT193": "PT16F",
	"PT194": "PT16G", "PT195": "PT16H", "PT196": "PT16J",
	"PT1A": "PT17", "PT1A0": "PT170",
	"PT1B": "PT17", "PT1B0": "PT170",
	"PT1C": "PT18", "PT1C1": "PT181", "PT1C2": "PT184", "PT1C3": "PT186", "PT1C4": "PT187",
	"PT1D": "PT1", "PT1D1": "PT16B", "PT1D2": "PT16I", "PT1D3": "PT185",
}

// nutsCodes are the NUTS 2021 and 2024 codes (levels 1 to 3) of the
// countries whose codes are checked, by NUTS country prefix.
var nutsCodes = map[string]map[string]bool{
	"PT": setOf(
		// NUTS 2021.
		"PT1", "PT2", "PT3",
		"PT11", "PT15", "PT16", "PT17", "PT18", "PT20", "PT30",
		"PT111", "PT112", "PT119", "PT11A", "PT11B", "PT11C", "PT11D", "PT11E",
		"PT150",
		"PT16B", "PT16D", "PT16E", "PT16F", "PT16G", "PT16H", "PT16I", "PT16J",
		"PT170",
		"PT181", "PT184", "PT185", "PT186", "PT187",
		"PT200", "PT300",
		// NUTS 2024 (the codes that are new).
		"PT19", "PT191", "PT192", "PT193", "PT194", "PT195", "PT196",
		"PT1A", "PT1A0", "PT1B", "PT1B0",
		"PT1C", "PT1C1", "PT1C2", "PT1C3", "PT1C4",
		"PT1D", "PT1D1", "PT1D2", "PT1D3",
	),
}

func setOf(codes ...string) map[string]bool {
	m := make(map[string]bool, len(codes))
	for _, c := range codes {
		m[c] = true
	}
	return m
}

// NUTS2021Of returns the NUTS 2021 code to match a region code by: the
// code itself when it is a NUTS 2021 code (or of a country whose codes
// are not tabulated), the NUTS 2021 region containing it when it is a
// NUTS 2024 code that changed.
func NUTS2021Of(code string) string {
	if old, ok := nuts2024To2021[code]; ok {
		return old
	}
	return code
}

// IsKnownNUTS reports whether code is a NUTS 2021 or 2024 code of the
// country cc (ISO 3166-1 alpha-2, lower case): the country's code itself
// (level 0) or a region of it. For a country whose codes are not
// tabulated it checks the prefix only.
func IsKnownNUTS(cc, code string) bool {
	prefix := NUTSCountry(cc)
	if !strings.HasPrefix(code, prefix) {
		return false
	}
	codes, ok := nutsCodes[prefix]
	return !ok || code == prefix || codes[code]
}
