package routing

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/invictus-network/invictus/directory"
	"github.com/invictus-network/invictus/events"
)

// SampleProfiles returns n needs profiles drawn as referrals might arrive,
// for benchmarks and load tests: victims in the cities of the demo
// countries, weighted by population (so big cities dominate, as they do in
// real traffic), with one to four needs (common needs more likely), a crime
// type in most cases, flags in some, the national language first (English
// second in 40%, a migrant language only in 15%), mostly routine or soon
// (5% emergencies), 5% cross-border, in-person channels in 80%. The same n
// and seed give the same profiles; every profile is valid.
func SampleProfiles(n int, seed int64) []events.Profile {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5a3b1e))
	cities := directory.Cities()
	cum := make([]float64, len(cities))
	total := 0.0
	for i, c := range cities {
		total += float64(c.Population)
		cum[i] = total
	}
	needW := []struct {
		code string
		w    float64
	}{
		{events.NeedInfoRights, 10}, {events.NeedSupportEmotional, 10}, {events.NeedSupportPractical, 5},
		{events.NeedJusticeLegalAid, 6}, {events.NeedSafetyRiskAdvice, 5}, {events.NeedSafetyShelter, 4},
		{events.NeedSupportPsychological, 5}, {events.NeedInfoCase, 4}, {events.NeedInfoCompensation, 3},
		{events.NeedJusticeCourtAccompaniment, 3}, {events.NeedSupportTrauma, 3}, {events.NeedFamilySupport, 2},
		{events.NeedSafetyProtectionMeasures, 2}, {events.NeedHealthMedical, 1}, {events.NeedCommInterpretation, 1},
		{events.NeedReferralSpecialist, 1}, {events.NeedSupportFinancial, 1}, {events.NeedJusticeRestorative, 0.5},
		{events.NeedCrossborderAssistance, 0.5},
	}
	needTotal := 0.0
	for _, w := range needW {
		needTotal += w.w
	}
	drawNeed := func() string {
		x := r.Float64() * needTotal
		for _, w := range needW {
			if x < w.w {
				return w.code
			}
			x -= w.w
		}
		return needW[0].code
	}
	commonCrimes := []string{"domestic_violence", "domestic_violence", "sexual_violence", "physical_assault", "robbery",
		"burglary_theft", "stalking_harassment", "fraud", "gender_based_violence", "child_abuse", "hate_crime", "trafficking"}
	migrant := []string{"ar", "ro", "uk", "ru", "tr", "es", "pl", "fa", "sq", "zh"}
	round2 := func(f float64) *float64 { v := math.Round(f*100) / 100; return &v }

	out := make([]events.Profile, 0, n)
	for range n {
		i, _ := slices.BinarySearch(cum, r.Float64()*total)
		c := cities[min(i, len(cities)-1)]
		p := events.Profile{
			Urgency:  []string{"routine", "routine", "routine", "routine", "soon", "soon", "soon", "urgent", "urgent"}[r.IntN(9)],
			Location: events.Location{Country: c.Country, Region: c.NUTS3, Lat: round2(c.Lat + (r.Float64()-0.5)*0.04), Lon: round2(c.Lon + (r.Float64()-0.5)*0.04)},
			AgeBand:  "adult",
		}
		if r.IntN(100) < 5 {
			p.Urgency = events.UrgencyEmergency
		}
		for k := 1 + r.IntN(4); len(p.Needs) < k; {
			if nd := drawNeed(); !slices.Contains(p.Needs, nd) {
				p.Needs = append(p.Needs, nd)
			}
		}
		if r.IntN(10) < 8 {
			p.Crimes = []string{commonCrimes[r.IntN(len(commonCrimes))]}
		}
		if r.IntN(10) < 3 {
			p.Flags = []string{events.Flags[r.IntN(len(events.Flags))]}
		}
		switch x := r.IntN(100); {
		case x < 8:
			p.AgeBand = "child"
		case x < 18:
			p.AgeBand = "youth"
		case x < 30:
			p.AgeBand = "older"
		}
		if r.IntN(10) < 7 {
			p.Gender = []string{"female", "female", "male", "non_binary"}[r.IntN(4)]
		}
		national := c.Country // the demo countries' codes equal their main languages' codes
		switch x := r.IntN(100); {
		case x < 15:
			p.Languages = []string{migrant[r.IntN(len(migrant))]}
			if r.IntN(2) == 0 {
				p.Languages = append(p.Languages, "en")
			}
			p.InterpreterOK = r.IntN(10) < 7
		case x < 55:
			p.Languages = []string{national, "en"}
		default:
			p.Languages = []string{national}
		}
		if r.IntN(10) < 8 {
			p.Channels = append(p.Channels, events.ChannelInPerson)
		}
		for _, ch := range []string{events.ChannelPhone, events.ChannelVideo, events.ChannelChat} {
			if r.IntN(10) < 4 {
				p.Channels = append(p.Channels, ch)
			}
		}
		if len(p.Channels) == 0 {
			p.Channels = []string{events.ChannelPhone}
		}
		if r.IntN(10) == 0 {
			p.Accessibility = []string{events.Accessibility[r.IntN(len(events.Accessibility))]}
		}
		if r.IntN(100) < 5 {
			for {
				if cc := directory.DemoCountries[r.IntN(len(directory.DemoCountries))]; cc != c.Country {
					p.Location.ResidenceCountry = cc
					p.Flags = append(slices.DeleteFunc(p.Flags, func(f string) bool { return f == "non_resident" }), "non_resident")
					break
				}
			}
		}
		out = append(out, p)
	}
	return out
}
