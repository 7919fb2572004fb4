package directory

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/invictus-network/invictus/events"
)

// GeneratedAt is the reference time of generated directories: UpdatedAt
// values fall in the year before it.
var GeneratedAt = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// generator weights. Country weights follow population (millions).
var (
	genCountryWeight = map[string]float64{"fr": 68, "it": 59, "nl": 18, "pt": 10, "bg": 6.5, "fi": 5.6, "hr": 3.9}
	genNeedWeight    = map[string]float64{
		events.NeedInfoRights: 10, events.NeedSupportEmotional: 9, events.NeedSupportPractical: 6,
		events.NeedInfoCase: 6, events.NeedJusticeLegalAid: 6, events.NeedSafetyRiskAdvice: 6,
		events.NeedSupportPsychological: 6, events.NeedReferralSpecialist: 5, events.NeedSafetyShelter: 4,
		events.NeedJusticeCourtAccompaniment: 4, events.NeedInfoCompensation: 4, events.NeedSupportTrauma: 4,
		events.NeedFamilySupport: 3, events.NeedSafetyProtectionMeasures: 3, events.NeedHealthMedical: 2,
		events.NeedCommInterpretation: 2, events.NeedSupportFinancial: 2, events.NeedJusticeRestorative: 1,
		events.NeedCrossborderAssistance: 1,
	}
	genCrimeWeight = map[string]float64{
		"domestic_violence": 10, "sexual_violence": 7, "gender_based_violence": 6, "child_abuse": 5,
		"stalking_harassment": 4, "trafficking": 3, "physical_assault": 4, "hate_crime": 2, "fraud": 2,
		"elder_abuse": 2, "homicide": 1, "road_traffic": 1, "cybercrime": 2, "image_based_abuse": 1,
		"robbery": 1, "burglary_theft": 1, "terrorism": 0.5, "fgm": 0.5, "forced_marriage": 0.5,
		"labour_exploitation": 1, "organised_crime": 0.5, "mass_incident": 0.3,
	}
)

// weighted draws keys of a weight map in a fixed order.
type weighted struct {
	keys []string
	cum  []float64
}

func newWeighted(w map[string]float64, order []string) weighted {
	var out weighted
	total := 0.0
	for _, k := range order {
		if w[k] > 0 {
			total += w[k]
			out.keys = append(out.keys, k)
			out.cum = append(out.cum, total)
		}
	}
	return out
}

func (w weighted) draw(r *rand.Rand) string {
	x := r.Float64() * w.cum[len(w.cum)-1]
	i, _ := slices.BinarySearch(w.cum, x)
	return w.keys[min(i, len(w.keys)-1)]
}

// drawN draws n distinct keys (fewer if there are not enough).
func (w weighted) drawN(r *rand.Rand, n int) []string {
	n = min(n, len(w.keys))
	var out []string
	for len(out) < n {
		out = appendNew(out, w.draw(r))
	}
	return out
}

// Generate returns a valid directory of n services over organisations of
// one to five services each, in the seven demo countries and their real
// cities, with realistic distributions: countries weighted by population,
// cities by population, 2 to 6 needs per service with popular needs more
// likely, national languages plus English and migrant languages, about 10%
// remote and 5% open 24/7, capacity mostly accepting. The same n and seed
// give the same directory. Organisation ids are <cc>.gen-<k>, service ids
// <org id>.s<k>. The result is sorted by id.
func Generate(n int, seed int64) *Directory {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e4e7a7e))
	cities, err := loadCities()
	if err != nil {
		panic(err) // the embedded file is part of the build; tests cover it
	}
	langs, err := loadLanguages()
	if err != nil {
		panic(err)
	}
	countries := newWeighted(genCountryWeight, DemoCountries)
	needs := newWeighted(genNeedWeight, events.Needs)
	crimes := newWeighted(genCrimeWeight, events.Crimes)
	cityW := map[string]weighted{}
	cityIdx := map[string][]City{}
	national := map[string][]string{}
	migrant := map[string][]string{}
	for _, cc := range DemoCountries {
		w := map[string]float64{}
		var order []string
		for _, c := range cities {
			if c.Country == cc {
				k := strconv.Itoa(len(cityIdx[cc]))
				cityIdx[cc] = append(cityIdx[cc], c)
				w[k] = float64(c.Population)
				order = append(order, k)
			}
		}
		cityW[cc] = newWeighted(w, order)
		for _, l := range langs {
			if slices.Contains(l.Official, cc) {
				national[cc] = append(national[cc], l.Code)
			}
			if slices.Contains(l.Migrant, cc) {
				migrant[cc] = append(migrant[cc], l.Code)
			}
		}
	}
	pickCity := func(cc string) City {
		i, _ := strconv.Atoi(cityW[cc].draw(r))
		return cityIdx[cc][i]
	}
	d := &Directory{Organisations: make([]Organisation, 0, n/2), Services: make([]Service, 0, n)}
	for k := 0; len(d.Services) < n; k++ {
		cc := countries.draw(r)
		home := pickCity(cc)
		id := fmt.Sprintf("%s.gen-%d", cc, k)
		org := Organisation{
			ID: id, Name: fmt.Sprintf("Generated organisation %d, %s", k, home.Name), Country: cc, City: home.Name,
			Type:            []string{OrgTypeNGO, OrgTypeNGO, OrgTypeNGO, OrgTypeGovernment, OrgTypeNetwork}[r.IntN(5)],
			Languages:       slices.Clone(national[cc]),
			ReferralContact: Contact{Role: "Referral desk", Email: fmt.Sprintf("referrals@gen-%d.%s.example", k, cc)},
			Synthetic:       true, UpdatedAt: GeneratedAt.Add(-time.Duration(r.IntN(365*24*60)) * time.Minute), Version: ModelVersion,
		}
		org.Languages = appendNew(org.Languages, "en")
		d.Organisations = append(d.Organisations, org)
		for j := 0; j < 1+r.IntN(5) && len(d.Services) < n; j++ {
			d.Services = append(d.Services, genService(r, org, j, home, pickCity, needs, crimes, national[cc], migrant[cc]))
		}
	}
	d.Sort()
	return d
}

func genService(r *rand.Rand, org Organisation, j int, home City, pickCity func(string) City,
	needs, crimes weighted, national, migrant []string) Service {
	cc := org.Country
	s := Service{
		ID: fmt.Sprintf("%s.s%d", org.ID, j), Organisation: org.ID, Status: StatusActive,
		Needs:     sortedCodes(needs.drawN(r, 2+r.IntN(5)), events.Needs),
		UpdatedAt: org.UpdatedAt, Version: ModelVersion,
		Area: ServiceArea{Countries: []string{cc}},
	}
	s.Name = fmt.Sprintf("Service %d of %s", j, org.Name)
	if r.IntN(100) < 3 {
		s.Status = StatusInactive
	}
	if r.IntN(2) == 0 {
		s.Crimes = sortedCodes(crimes.drawN(r, 1+r.IntN(3)), events.Crimes)
	}
	if r.IntN(10) < 3 {
		s.Flags = sortedCodes([]string{events.Flags[r.IntN(len(events.Flags))], events.Flags[r.IntN(len(events.Flags))]}, events.Flags)
	}
	switch x := r.IntN(100); {
	case x < 10:
		s.Eligibility.AgeBands = []string{"child", "youth"}
	case x < 13:
		s.Eligibility.AgeBands = []string{"older"}
	}
	if r.IntN(100) < 8 {
		s.Eligibility.Genders = []string{"female"}
	}
	s.Languages = slices.Clone(national[:1])
	if len(national) > 1 && r.IntN(10) < 4 {
		s.Languages = append(s.Languages, national[1:]...)
	}
	if r.IntN(10) < 7 {
		s.Languages = append(s.Languages, "en")
	}
	for range r.IntN(3) {
		s.Languages = appendNew(s.Languages, migrant[r.IntN(len(migrant))])
	}
	s.InterpreterAvailable = r.IntN(10) < 3
	for i, p := range []int{85, 65, 50, 25, 12, 8} {
		if r.IntN(100) < p {
			s.Channels = append(s.Channels, []string{events.ChannelInPerson, events.ChannelPhone, events.ChannelEmail, events.ChannelVideo, events.ChannelChat, events.ChannelHomeVisit}[i])
		}
	}
	if len(s.Channels) == 0 {
		s.Channels = []string{events.ChannelInPerson}
	}
	if r.IntN(10) < 2 {
		s.Accessibility = []string{events.Accessibility[r.IntN(len(events.Accessibility))]}
	}
	city := home
	if r.IntN(10) < 3 {
		city = pickCity(cc)
	}
	loc := genLocation(r, city, "office")
	s.Locations = []Location{loc}
	if r.IntN(10) == 0 {
		s.Locations = append(s.Locations, genLocation(r, pickCity(cc), "office-2"))
		if s.Locations[1].Lat == loc.Lat && s.Locations[1].Lon == loc.Lon {
			s.Locations = s.Locations[:1]
		}
	}
	// Location ids are scoped by organisation: keep each service's own.
	for i := range s.Locations {
		s.Locations[i].ID = fmt.Sprintf("s%d-%s", j, s.Locations[i].ID)
	}
	switch x := r.IntN(100); {
	case x < 10:
		s.Area.Remote = true
		if !slices.ContainsFunc(s.Channels, func(c string) bool { return slices.Contains(events.RemoteChannels, c) }) {
			s.Channels = append(s.Channels, events.ChannelPhone)
		}
	case x < 25:
		s.Area.RadiusKm = float64(10 + 5*r.IntN(15))
	case x < 30:
		s.Area.Regions = []string{events.NUTSCountry(cc)}
	case x < 55:
		s.Area.Regions = []string{city.NUTS2}
	default:
		s.Area.Regions = []string{city.NUTS3}
		if r.IntN(10) < 4 {
			s.Area.RadiusKm = float64(10 + 5*r.IntN(10))
		}
	}
	s.Hours = Schedule{TimeZone: TimeZone(cc, city.NUTS2)}
	if r.IntN(100) < 5 {
		s.Hours.Always = true
	} else {
		opens := []string{"08:00", "08:30", "09:00", "10:00"}[r.IntN(4)]
		closes := []string{"16:00", "17:00", "17:30", "18:00", "20:00"}[r.IntN(5)]
		for _, day := range Days[:5] {
			s.Hours.Weekly = append(s.Hours.Weekly, OpeningHours{Day: day, Opens: opens, Closes: closes})
		}
		if r.IntN(5) == 0 {
			s.Hours.Weekly = append(s.Hours.Weekly, OpeningHours{Day: "sa", Opens: "10:00", Closes: "13:00"})
		}
	}
	if r.IntN(5) > 0 {
		s.ResponseHours = []int{4, 8, 24, 24, 48, 48, 72}[r.IntN(7)]
	}
	s.Capacity = Capacity{UpdatedAt: s.UpdatedAt, MaxOpen: r.IntN(51)}
	switch x := r.IntN(100); {
	case x < 80:
		s.Capacity.Status = events.CapacityAccepting
	case x < 94:
		s.Capacity.Status = events.CapacityWaitlist
	default:
		s.Capacity.Status = events.CapacityFull
	}
	return s
}

// genLocation places a location near the centre of city (within about 3 km).
func genLocation(r *rand.Rand, c City, id string) Location {
	round := func(f float64) float64 { return math.Round(f*1e5) / 1e5 }
	return Location{
		ID: id, City: c.Name, Country: c.Country, Region: c.NUTS3,
		Lat: round(c.Lat + (r.Float64()-0.5)*0.05), Lon: round(c.Lon + (r.Float64()-0.5)*0.05),
	}
}
