package routing

import (
	"strings"

	"github.com/invictus-network/invictus/events"
)

// Distances across water and borders.
//
// The distance component decays with the straight-line distance, which
// makes a service across a strait or a border look as near as one down the
// road. A location on another island (or on the mainland, seen from an
// island) counts [WaterCrossingFactor] times its distance: a ferry or a
// flight, with their timetables, stands between them; a location in
// another country than the victim's counts [BorderCrossingFactor] times:
// another legal system, and often another language. Both apply only when
// both places are known: the victim's region (NUTS, either version) and
// the location's Region for water, the countries for borders.
//
// Islands are told by NUTS code: the NUTS regions below are islands or
// groups of islands apart from their country's mainland (Eurostat's NUTS
// 2021 classification; the same codes in NUTS 2024). A region not listed
// counts as its country's mainland; countries that are islands (Malta,
// Cyprus, Ireland, Iceland, the United Kingdom) are apart by their border
// already. Islands within one region (the Greek archipelagos, the Croatian
// and Dutch islands) are not told apart: the NUTS regions mix islands and
// coast, and no finer data is at hand.
const (
	WaterCrossingFactor  = 3.0
	BorderCrossingFactor = 2.0
)

// islandRegions are the NUTS codes of island regions, each its own land.
var islandRegions = []string{
	"PT2",   // Região Autónoma dos Açores
	"PT3",   // Região Autónoma da Madeira
	"ES53",  // Illes Balears
	"ES70",  // Canarias
	"FRM",   // Corse
	"FRY1",  // Guadeloupe
	"FRY2",  // Martinique
	"FRY4",  // La Réunion
	"FRY5",  // Mayotte
	"ITG1",  // Sicilia
	"ITG2",  // Sardegna
	"EL41",  // Voreio Aigaio
	"EL42",  // Notio Aigaio
	"EL43",  // Kriti
	"EL62",  // Ionia Nisia
	"FI2",   // Åland
	"DK014", // Bornholm
	"SE214", // Gotland
	"EE004", // Lääne-Eesti (Saaremaa, Hiiumaa and the west coast)
}

// land returns the land of a NUTS region: 0 unknown (no region), 1 its
// country's mainland, 2+i the island region islandRegions[i].
func land(region string) uint8 {
	if region == "" {
		return 0
	}
	region = strings.ToUpper(events.NUTS2021Of(region))
	for i, r := range islandRegions {
		if strings.HasPrefix(region, r) {
			return uint8(2 + i)
		}
	}
	return 1
}

// placeKey packs what the crossing factors compare of a location: its
// land and the dense id of its country plus one (0 unknown).
type placeKey struct {
	land, country uint8
}

// crossing returns the factor of the distance to a location with key k.
func (q *query) crossing(k placeKey) float64 {
	f := 1.0
	if k.land != 0 && q.land != 0 && k.land != q.land {
		f *= WaterCrossingFactor
	}
	if k.country != 0 && q.countryKey != 0 && k.country != q.countryKey {
		f *= BorderCrossingFactor
	}
	return f
}

// keyOf returns the place key of a location of the table.
func (t *table) keyOf(country, region string) placeKey {
	k := placeKey{land: land(region)}
	if id, ok := t.countries[country]; ok {
		k.country = id + 1
	}
	return k
}
