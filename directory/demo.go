package directory

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/invictus-network/invictus/events"
)

// DemoDataDate is when the demo data was collected; demo records carry it
// as their UpdatedAt.
var DemoDataDate = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// CommonNeeds are the needs for which the demo directory covers every
// NUTS-2 region of the demo countries with a local (synthetic) service.
var CommonNeeds = []string{
	events.NeedInfoRights, events.NeedSupportEmotional, events.NeedSupportPractical,
	events.NeedJusticeLegalAid, events.NeedSafetyRiskAdvice, events.NeedSafetyShelter,
}

// sourceOrg is one object of data/organisations.json.
type sourceOrg struct {
	ID            string   `json:"id"`
	Country       string   `json:"country"`
	Type          string   `json:"type"`
	NameNative    string   `json:"name_native"`
	NameEn        string   `json:"name_en"`
	Acronym       *string  `json:"acronym"`
	HQCity        *string  `json:"hq_city"`
	WebsiteDomain *string  `json:"website_domain"`
	Helplines     []srcHL  `json:"helplines"`
	Languages     []string `json:"languages"`
	Services      []string `json:"services"`
	CrimeTypes    []string `json:"crime_types"`
	Sources       []string `json:"sources"`
	Confidence    string   `json:"confidence"`
}

type srcHL struct {
	Number string  `json:"number"`
	Name   *string `json:"name"`
	Hours  *string `json:"hours"`
	Free   *bool   `json:"free"`
}

// serviceNeeds maps the data's service words to need codes. Words that
// are not services to victims (training, research, advocacy,
// perpetrator_programmes) and channel words (helpline, chat,
// email_support) map to none.
// Helping victims claim compensation and emergency funds is financial
// support too (Directive Art. 9(1)(d)).
var serviceNeeds = map[string][]string{
	"information":                   {events.NeedInfoRights, events.NeedInfoCase},
	"legal_information":             {events.NeedInfoRights},
	"legal_counselling":             {events.NeedJusticeLegalAid},
	"emotional_support":             {events.NeedSupportEmotional},
	"psychological_support":         {events.NeedSupportPsychological},
	"crisis_intervention":           {events.NeedSupportTrauma, events.NeedSupportEmotional},
	"practical_support":             {events.NeedSupportPractical},
	"social_support":                {events.NeedSupportPractical, events.NeedFamilySupport},
	"accompaniment_to_services":     {events.NeedSupportPractical},
	"court_accompaniment":           {events.NeedJusticeCourtAccompaniment},
	"shelter":                       {events.NeedSafetyShelter},
	"referral":                      {events.NeedReferralSpecialist},
	"compensation_support":          {events.NeedInfoCompensation, events.NeedSupportFinancial},
	"forensic_medical_care":         {events.NeedHealthMedical},
	"peer_support_groups":           {events.NeedSupportEmotional},
	"victim_identification":         {events.NeedReferralSpecialist},
	"emergency_response":            {events.NeedSafetyRiskAdvice},
	"mediation_restorative_justice": {events.NeedJusticeRestorative},
}

// crimeCodes maps the data's crime words to crime codes and flags.
var crimeCodes = map[string]struct{ crimes, flags []string }{
	"domestic_violence":      {[]string{"domestic_violence"}, []string{"close_relationship_offender"}},
	"violence_against_women": {[]string{"gender_based_violence"}, nil},
	"sexual_violence":        {[]string{"sexual_violence"}, nil},
	"stalking":               {[]string{"stalking_harassment"}, nil},
	"trafficking":            {[]string{"trafficking", "labour_exploitation"}, nil},
	"terrorism":              {[]string{"terrorism"}, nil},
	"mass_casualty_events":   {[]string{"mass_incident"}, nil},
	"natural_disasters":      {[]string{"mass_incident"}, nil},
	"hate_crime":             {[]string{"hate_crime"}, []string{"bias_motive"}},
	"discrimination":         {[]string{"hate_crime"}, []string{"bias_motive"}},
	"child_victims":          {[]string{"child_abuse"}, []string{"child"}},
	"missing_children":       {[]string{"child_abuse"}, []string{"child"}},
	"homicide_bereaved":      {[]string{"homicide"}, nil},
	"road_traffic":           {[]string{"road_traffic"}, nil},
	"elder_abuse":            {[]string{"elder_abuse"}, []string{"older_person"}},
	"fraud":                  {[]string{"fraud"}, nil},
	"fgm":                    {[]string{"fgm"}, nil},
	"forced_marriage":        {[]string{"forced_marriage"}, nil},
	"war_crimes":             {[]string{"other"}, nil},
	"migrant_victims":        {nil, []string{"non_resident", "language_barrier"}},
}

// remoteNeeds are the needs a helpline can meet by phone or chat.
var remoteNeeds = []string{
	events.NeedInfoRights, events.NeedInfoCase, events.NeedInfoCompensation,
	events.NeedSupportEmotional, events.NeedSupportPsychological, events.NeedSupportTrauma,
	events.NeedJusticeLegalAid, events.NeedSafetyRiskAdvice, events.NeedReferralSpecialist,
	events.NeedCrossborderAssistance,
}

// regionalOrgs are real organisations whose in-person work is regional
// rather than national, with the NUTS region they serve.
var regionalOrgs = map[string]string{
	"it.rete-dafne": "ITC1", // a generalist network that started in Piedmont
}

// Demo returns the demo directory: the real national organisations of the
// embedded data (Illustrative, contact details limited to the helplines in
// the data) and synthetic local offices (Synthetic, names ending in
// "(synthetic)") in real cities, so that every NUTS-2 region of
// DemoCountries has an in-person local service for each of CommonNeeds.
// The result is valid, sorted by id and depends only on seed. Age
// recipients are left empty: the demo ships no keys.
func Demo(seed int64) (*Directory, error) {
	raw, err := data.ReadFile("data/organisations.json")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var src []sourceOrg
	if err := json.Unmarshal(raw, &src); err != nil {
		return nil, fmt.Errorf("demo: parse organisations.json: %w", err)
	}
	cities, err := loadCities()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	langs, err := loadLanguages()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &Directory{}
	for _, so := range src {
		org, svcs := realOrganisation(so, cities)
		d.Organisations = append(d.Organisations, org)
		d.Services = append(d.Services, svcs...)
	}
	b := demoBuilder{rng: rand.New(rand.NewPCG(uint64(seed), 0x1d1c7)), langs: langs, d: d}
	b.localOffices(cities)
	d.Sort()
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return d, nil
}

func realOrganisation(so sourceOrg, cities []City) (Organisation, []Service) {
	cc := strings.ToLower(so.Country)
	id := cc + "." + strings.TrimPrefix(so.ID, cc+"-")
	short := so.NameEn
	if so.Acronym != nil && *so.Acronym != "" {
		short = *so.Acronym
	}
	o := Organisation{
		ID: id, Name: so.NameNative, Country: cc, Type: so.Type,
		Description:  fmt.Sprintf("%s. Illustrative entry compiled from public sources (confidence: %s); check the details before relying on them.", so.NameEn, so.Confidence),
		Illustrative: true, Sources: so.Sources, UpdatedAt: DemoDataDate, Version: ModelVersion,
	}
	if so.NameEn != so.NameNative {
		o.AlternateName = so.NameEn
	}
	if so.Acronym != nil && *so.Acronym != "" {
		o.AlternateName = *so.Acronym
	}
	if so.HQCity != nil {
		o.City = *so.HQCity
	}
	if so.WebsiteDomain != nil && *so.WebsiteDomain != "" {
		o.Website = "https://" + *so.WebsiteDomain
	}
	for _, l := range so.Languages {
		if events.IsLanguage(l) && !slices.Contains(o.Languages, l) {
			o.Languages = append(o.Languages, l)
		}
	}
	for _, h := range so.Helplines {
		hl := Helpline{Number: h.Number, Free: h.Free}
		if h.Name != nil {
			hl.Name = *h.Name
		}
		if h.Hours != nil {
			hl.Hours = *h.Hours
		}
		o.Helplines = append(o.Helplines, hl)
	}

	var needs, crimes, flags []string
	for _, s := range so.Services {
		needs = appendNew(needs, serviceNeeds[s]...)
	}
	// The national organisations for victims of all crimes are the members
	// of Victim Support Europe's network that help residents of other
	// Member States and their own residents victimised abroad (Directive
	// Art. 17): illustrative, from their public descriptions.
	if slices.Contains(so.CrimeTypes, "all_crimes") {
		needs = appendNew(needs, events.NeedCrossborderAssistance)
	}
	for _, c := range so.CrimeTypes {
		crimes = appendNew(crimes, crimeCodes[c].crimes...)
		flags = appendNew(flags, crimeCodes[c].flags...)
	}
	// An organisation for victims of all crimes is a generalist, whatever
	// it also names: listing its specialisms as the service's crimes would
	// make it a specialist in other crimes for everyone else.
	generalist := slices.Contains(so.CrimeTypes, "all_crimes")
	dvLike := slices.ContainsFunc(crimes, func(c string) bool {
		return c == "domestic_violence" || c == "gender_based_violence" || c == "trafficking" || c == "stalking_harassment"
	})
	has := func(w string) bool { return slices.Contains(so.Services, w) }
	zone := TimeZone(cc, "")
	languages := o.Languages
	if len(languages) == 0 {
		languages = []string{nationalLanguage(cc)}
	}
	base := Service{
		Organisation: id, Status: StatusActive, Crimes: sortedCodes(crimes, events.Crimes), Flags: sortedCodes(flags, events.Flags),
		Languages: languages, Capacity: Capacity{Status: events.CapacityAccepting, UpdatedAt: DemoDataDate},
		UpdatedAt: DemoDataDate, Version: ModelVersion, Area: ServiceArea{Countries: []string{cc}},
	}

	if generalist {
		base.Crimes = nil
	}
	var out []Service
	for i, h := range so.Helplines {
		s := base
		s.ID = id + ".line-" + digits(h.Number)
		s.Name = fmt.Sprintf("%s helpline %s", short, h.Number)
		if h.Name != nil && *h.Name != "" {
			s.Name = *h.Name
		}
		s.Description = "Helpline of " + short + " (number from the public sources; hours and languages may have changed)."
		hn := []string{events.NeedReferralSpecialist}
		for _, n := range needs {
			if slices.Contains(remoteNeeds, n) {
				hn = appendNew(hn, n)
			}
		}
		if dvLike {
			hn = appendNew(hn, events.NeedSafetyRiskAdvice)
		}
		if len(hn) == 1 {
			hn = appendNew(hn, events.NeedInfoRights, events.NeedSupportEmotional)
		}
		s.Needs = sortedCodes(hn, events.Needs)
		s.Channels = []string{events.ChannelPhone}
		if has("chat") && i == 0 {
			s.Channels = append(s.Channels, events.ChannelChat)
		}
		if has("email_support") && i == 0 {
			s.Channels = append(s.Channels, events.ChannelEmail)
		}
		if digits(h.Number) == "116111" { // the EU-wide helpline number for children
			s.Eligibility.AgeBands = []string{"child", "youth"}
		}
		s.Area.Remote = true
		s.Hours = helplineHours(h.Hours, zone)
		out = append(out, s)
	}
	var inPerson []string
	for _, n := range needs {
		if !slices.Contains(remoteNeeds, n) || len(so.Helplines) == 0 {
			inPerson = appendNew(inPerson, n)
		}
	}
	if len(inPerson) > 0 || len(out) == 0 {
		s := base
		s.ID = id + ".support"
		s.Name = short + " victim support"
		s.Description = "Support by " + short + " as described by its public sources; local offices are not listed."
		if len(inPerson) == 0 {
			inPerson = []string{events.NeedReferralSpecialist}
		}
		// The in-person service also gives the information and support
		// the organisation offers.
		s.Needs = sortedCodes(appendNew(inPerson, needs...), events.Needs)
		s.Channels = []string{events.ChannelInPerson}
		if has("email_support") {
			s.Channels = append(s.Channels, events.ChannelEmail)
		}
		s.Area.Regions = []string{events.NUTSCountry(cc)}
		if r, ok := regionalOrgs[id]; ok {
			s.Area.Regions = []string{r}
		}
		s.Hours = Schedule{TimeZone: zone}
		out = append(out, s)
	}
	return o, out
}

var reHourSpan = regexp.MustCompile(`^(Mon-Fri|Mon-Sat|Mon-Sun|7/7|daily)[ ,]+(\d\d:\d\d)-(\d\d:\d\d)`)

// helplineHours turns the data's free-text hours into a schedule where the
// text is plain ("24/7", "Mon-Fri 09:00-20:00", "7/7, 09:00-19:00");
// anything else leaves the hours unstated.
func helplineHours(hours *string, zone string) Schedule {
	s := Schedule{TimeZone: zone}
	if hours == nil {
		return s
	}
	if strings.HasPrefix(*hours, "24/7") {
		s.Always = true
		return s
	}
	m := reHourSpan.FindStringSubmatch(*hours)
	if m == nil {
		return s
	}
	days := Days
	switch m[1] {
	case "Mon-Fri":
		days = Days[:5]
	case "Mon-Sat":
		days = Days[:6]
	}
	for _, d := range days {
		s.Weekly = append(s.Weekly, OpeningHours{Day: d, Opens: m[2], Closes: m[3]})
	}
	return s
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// appendNew appends the values not yet in list.
func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// sortedCodes orders codes as in the catalogue order of all.
func sortedCodes(codes, all []string) []string {
	if len(codes) == 0 {
		return nil
	}
	out := make([]string, 0, len(codes))
	for _, c := range all {
		if slices.Contains(codes, c) {
			out = append(out, c)
		}
	}
	return out
}

// nationalLanguage returns the main national language of a demo country
// (its code equals the country code for all seven).
func nationalLanguage(cc string) string {
	if slices.Contains(DemoCountries, cc) {
		return cc
	}
	return "en"
}

// regionMinority are regional minority languages that local offices in a
// NUTS-2 region offer (an editorial choice, after data/languages.csv).
var regionMinority = map[string][]string{
	"ITC2": {"fr"}, "ITH1": {"de"}, "ITH4": {"sl"}, "NL12": {"fy"}, "FI1D": {"se", "sv"},
	"FI19": {"sv"}, "FI1B": {"sv"}, "HR03": {"it"}, "HR02": {"hu", "sr"},
	"BG32": {"tr"}, "BG33": {"tr"}, "BG34": {"tr"}, "BG42": {"tr"},
}

type demoBuilder struct {
	rng   *rand.Rand
	langs []Language
	d     *Directory
}

// localOffices adds, for each NUTS-2 region of the demo countries, a
// synthetic local office in its largest city with general support,
// shelter and legal services for the region, and smaller synthetic
// offices in some other cities of 100,000 people or more, serving a radius.
func (b *demoBuilder) localOffices(cities []City) {
	used := map[string]bool{}
	for _, cc := range DemoCountries {
		var byRegion = map[string][]City{}
		var regions []string
		for _, c := range cities {
			if c.Country != cc {
				continue
			}
			if _, ok := byRegion[c.NUTS2]; !ok {
				regions = append(regions, c.NUTS2)
			}
			byRegion[c.NUTS2] = append(byRegion[c.NUTS2], c)
		}
		slices.Sort(regions)
		for _, r := range regions {
			cs := byRegion[r]
			slices.SortStableFunc(cs, func(a, b City) int { return b.Population - a.Population })
			b.office(cs[0], true, used)
			for _, c := range cs[1:] {
				if c.Population >= 100000 && b.rng.IntN(3) > 0 {
					b.office(c, false, used)
				}
			}
		}
	}
}

// office adds one synthetic organisation in city c; main offices serve the
// whole NUTS-2 region with every common need.
func (b *demoBuilder) office(c City, main bool, used map[string]bool) {
	slug := "local-" + slugify(c.Name)
	if used[c.Country+slug] {
		slug = fmt.Sprintf("%s-%d", slug, c.GeoNamesID)
	}
	used[c.Country+slug] = true
	id := c.Country + "." + slug
	o := Organisation{
		ID: id, Name: "Local office " + c.Name + " (synthetic)", Country: c.Country, City: c.Name,
		Type:        OrgTypeNGO,
		Description: "A synthetic local victim-support office for demos and tests; it does not exist.",
		Languages:   b.languages(c, 1),
		ReferralContact: Contact{
			Role:  "Referral desk",
			Email: "referrals@" + slug + "." + c.Country + ".example",
		},
		Synthetic: true, UpdatedAt: DemoDataDate, Version: ModelVersion,
	}
	b.d.Organisations = append(b.d.Organisations, o)
	loc := Location{
		ID: slugify(c.Name), Name: o.Name, City: c.Name, Country: c.Country, Region: c.NUTS3,
		Lat: c.Lat, Lon: c.Lon, Accessibility: b.pick([]string{"wheelchair", "step_free", "hearing_loop", "quiet_space", "childcare"}, []int{70, 60, 20, 30, 15}),
	}
	zone := TimeZone(c.Country, c.NUTS2)
	svc := func(slug, name string, needs []string) Service {
		return Service{
			ID: id + "." + slug, Organisation: id, Name: name + " – " + c.Name + " (synthetic)", Status: StatusActive,
			Needs: sortedCodes(needs, events.Needs), Languages: b.languages(c, 0),
			InterpreterAvailable: b.rng.IntN(10) < 4,
			Area:                 ServiceArea{Countries: []string{c.Country}},
			Locations:            []Location{loc},
			Hours:                b.officeHours(zone),
			ResponseHours:        []int{24, 48, 72}[b.rng.IntN(3)],
			Capacity:             b.capacity(75, 17),
			UpdatedAt:            DemoDataDate, Version: ModelVersion,
		}
	}
	general := svc("general", "General victim support", []string{
		events.NeedInfoRights, events.NeedInfoCase, events.NeedInfoCompensation, events.NeedSupportEmotional,
		events.NeedSupportPractical, events.NeedSafetyRiskAdvice, events.NeedReferralSpecialist,
	})
	general.Channels = []string{events.ChannelInPerson, events.ChannelPhone, events.ChannelEmail}
	if b.rng.IntN(4) == 0 {
		general.Channels = append(general.Channels, events.ChannelVideo)
	}
	general.Accessibility = b.pick([]string{"easy_read", "sign_language"}, []int{30, 10})
	general.Flags = b.pick([]string{"considerable_harm", "risk_repeat_victimisation", "language_barrier"}, []int{40, 30, 30})
	if main {
		general.Area.Regions = []string{c.NUTS2}
	} else {
		general.Area.RadiusKm = float64(20 + 5*b.rng.IntN(7))
	}
	b.d.Services = append(b.d.Services, general)
	if !main {
		if b.rng.IntN(2) == 0 {
			b.d.Services = append(b.d.Services, b.counselling(svc, c))
		}
		return
	}

	shelter := svc("shelter", "Safe house", []string{events.NeedSafetyShelter, events.NeedSafetyRiskAdvice, events.NeedSafetyProtectionMeasures, events.NeedSupportEmotional})
	shelter.Crimes = []string{"domestic_violence", "gender_based_violence", "trafficking"}
	shelter.Flags = []string{"dependence_on_offender", "close_relationship_offender", "risk_repeat_victimisation", "risk_intimidation_retaliation"}
	shelter.Channels = []string{events.ChannelInPerson, events.ChannelPhone}
	shelter.Hours = Schedule{TimeZone: zone, Always: true}
	shelter.ResponseHours = 1 + b.rng.IntN(4)
	shelter.Capacity = b.capacity(55, 30)
	shelter.Capacity.MaxOpen = 2 + b.rng.IntN(6)
	shelter.Area.Regions = []string{c.NUTS2}
	shelter.Locations = nil // the address of a safe house is never published
	if b.rng.IntN(10) < 3 {
		shelter.Eligibility.Genders = []string{"female"}
	}
	shelter.Needs = sortedCodes(append(shelter.Needs, events.NeedHealthMedical), events.Needs)
	b.d.Services = append(b.d.Services, shelter)

	// The legal service also arranges interpreters for the police and the
	// court (Art. 7), helps with claims and emergency funds, with
	// complaints of residents of other Member States (Art. 17), and refers
	// to restorative justice (Art. 12); the safe house above arranges
	// medical care. Synthetic, like the office: so that every need code is
	// offered in every demo country.
	legal := svc("legal", "Legal advice and court support", []string{
		events.NeedJusticeLegalAid, events.NeedJusticeCourtAccompaniment, events.NeedInfoCompensation, events.NeedInfoRights,
		events.NeedCommInterpretation, events.NeedSupportFinancial, events.NeedCrossborderAssistance, events.NeedJusticeRestorative,
	})
	legal.Channels = []string{events.ChannelInPerson, events.ChannelVideo, events.ChannelEmail}
	legal.Eligibility.AgeBands = nil
	legal.Area.Regions = []string{c.NUTS2}
	b.d.Services = append(b.d.Services, legal)

	if b.rng.IntN(3) > 0 {
		b.d.Services = append(b.d.Services, b.counselling(svc, c))
	}
}

func (b *demoBuilder) counselling(svc func(string, string, []string) Service, c City) Service {
	s := svc("counselling", "Counselling", []string{events.NeedSupportPsychological, events.NeedSupportTrauma, events.NeedSupportEmotional, events.NeedFamilySupport})
	s.Channels = []string{events.ChannelInPerson, events.ChannelVideo}
	if b.rng.IntN(3) == 0 {
		s.Channels = append(s.Channels, events.ChannelHomeVisit)
	}
	s.Flags = []string{"considerable_harm"}
	s.Area.RadiusKm = float64(25 + 5*b.rng.IntN(8))
	if b.rng.IntN(4) == 0 {
		s.Eligibility.AgeBands = []string{"child", "youth"}
		s.Name = "Counselling for children and young people – " + c.Name + " (synthetic)"
	}
	s.Capacity = b.capacity(60, 30)
	return s
}

// languages returns the national languages, the region's minority
// languages, English and some of the country's common migrant languages;
// extra adds that many more migrant languages.
func (b *demoBuilder) languages(c City, extra int) []string {
	var out []string
	var migrant []string
	for _, l := range b.langs {
		if slices.Contains(l.Official, c.Country) {
			out = append(out, l.Code)
		}
		if slices.Contains(l.Migrant, c.Country) {
			migrant = append(migrant, l.Code)
		}
	}
	out = appendNew(out, regionMinority[c.NUTS2]...)
	out = appendNew(out, "en")
	n := b.rng.IntN(3) + extra
	for _, i := range b.rng.Perm(len(migrant))[:min(n, len(migrant))] {
		out = appendNew(out, migrant[i])
	}
	return out
}

// officeHours returns one of a few office patterns.
func (b *demoBuilder) officeHours(zone string) Schedule {
	s := Schedule{TimeZone: zone}
	add := func(days []string, opens, closes string) {
		for _, d := range days {
			s.Weekly = append(s.Weekly, OpeningHours{Day: d, Opens: opens, Closes: closes})
		}
	}
	switch b.rng.IntN(4) {
	case 0:
		add(Days[:5], "09:00", "17:00")
	case 1:
		add(Days[:5], "08:30", "16:30")
		add(Days[5:6], "10:00", "13:00")
	case 2:
		for _, d := range Days[:5] {
			add([]string{d}, "09:00", "12:30")
			add([]string{d}, "13:30", "17:30")
		}
	default:
		add(Days[:4], "09:00", "18:00")
		add(Days[4:5], "09:00", "14:00")
	}
	return s
}

// capacity draws a status: accepting with probability pAccept percent,
// waitlist with pWait percent, else full.
func (b *demoBuilder) capacity(pAccept, pWait int) Capacity {
	c := Capacity{UpdatedAt: DemoDataDate.Add(-time.Duration(b.rng.IntN(72*60)) * time.Minute), MaxOpen: 5 + b.rng.IntN(36)}
	switch r := b.rng.IntN(100); {
	case r < pAccept:
		c.Status = events.CapacityAccepting
	case r < pAccept+pWait:
		c.Status = events.CapacityWaitlist
	default:
		c.Status = events.CapacityFull
	}
	return c
}

// pick returns each item with its percent probability, in order.
func (b *demoBuilder) pick(items []string, pct []int) []string {
	var out []string
	for i, it := range items {
		if b.rng.IntN(100) < pct[i] {
			out = append(out, it)
		}
	}
	return out
}

// data holds the copied demo data; see data/README.md for sources and
// licences.
//
//go:embed data/organisations.json data/cities.csv data/languages.csv
var data embed.FS

// DemoCountries are the countries of the demo data, lower case, sorted.
var DemoCountries = []string{"bg", "fi", "fr", "hr", "it", "nl", "pt"}

// City is a city of the embedded GeoNames extract (data/cities.csv).
type City struct {
	Name string
	// Country is lower case ISO 3166-1 alpha-2.
	Country string
	// NUTS2 and NUTS3 are NUTS 2021 codes.
	NUTS2, NUTS3 string
	NUTS3Name    string
	Lat, Lon     float64
	Population   int
	GeoNamesID   int
}

// Language is a row of the embedded language list (data/languages.csv):
// an ISO 639-1 code and the countries (lower case) where it is an
// official, minority or common migrant language (an editorial
// classification).
type Language struct {
	Code, Name, NativeName      string
	Official, Minority, Migrant []string
}

var loadCities = sync.OnceValues(func() ([]City, error) {
	rows, err := readCSV("data/cities.csv")
	if err != nil {
		return nil, err
	}
	out := make([]City, 0, len(rows))
	for i, r := range rows {
		lat, err1 := strconv.ParseFloat(r["latitude"], 64)
		lon, err2 := strconv.ParseFloat(r["longitude"], 64)
		pop, err3 := strconv.Atoi(r["population"])
		gid, err4 := strconv.Atoi(r["geonames_id"])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("cities.csv row %d: bad number", i+2)
		}
		out = append(out, City{
			Name: r["name"], Country: strings.ToLower(r["country_code"]),
			NUTS2: r["nuts2_code"], NUTS3: r["nuts3_code"], NUTS3Name: r["nuts3_name"],
			Lat: lat, Lon: lon, Population: pop, GeoNamesID: gid,
		})
	}
	return out, nil
})

var loadLanguages = sync.OnceValues(func() ([]Language, error) {
	rows, err := readCSV("data/languages.csv")
	if err != nil {
		return nil, err
	}
	list := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(strings.ToLower(s), ";")
	}
	out := make([]Language, 0, len(rows))
	for _, r := range rows {
		out = append(out, Language{
			Code: r["code"], Name: r["name_en"], NativeName: r["name_native"],
			Official: list(r["official_in"]), Minority: list(r["minority_in"]), Migrant: list(r["migrant_in"]),
		})
	}
	return out, nil
})

func readCSV(name string) ([]map[string]string, error) {
	b, err := data.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read embedded %s: %w", name, err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, fmt.Errorf("parse embedded %s: %w", name, err)
	}
	out := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(rec))
		for j, h := range recs[0] {
			m[h] = rec[j]
		}
		out = append(out, m)
	}
	return out, nil
}

// Cities returns the embedded cities (GeoNames, CC BY 4.0), largest first
// within each country, countries in file order. The slice is a copy.
func Cities() []City {
	c, err := loadCities()
	if err != nil {
		panic(err) // the embedded file is part of the build; tests cover it
	}
	return slices.Clone(c)
}

// Languages returns the embedded language list. The slice is a copy.
func Languages() []Language {
	l, err := loadLanguages()
	if err != nil {
		panic(err) // the embedded file is part of the build; tests cover it
	}
	return slices.Clone(l)
}

// Regions returns the sorted NUTS-2 codes of the embedded cities of a
// country (lower case code), e.g. the 7 regions of "pt".
func Regions(cc string) []string {
	var out []string
	for _, c := range Cities() {
		if c.Country == cc {
			out = append(out, c.NUTS2)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TimeZone returns the IANA time zone of a demo country and NUTS region:
// the Azores (PT20) and Madeira (PT30) have their own; other countries
// have one each. It returns "" for a country it does not know.
func TimeZone(cc, region string) string {
	switch {
	case strings.HasPrefix(region, "PT20"):
		return "Atlantic/Azores"
	case strings.HasPrefix(region, "PT30"):
		return "Atlantic/Madeira"
	}
	return countryZones[cc]
}

var countryZones = map[string]string{
	"at": "Europe/Vienna", "be": "Europe/Brussels", "bg": "Europe/Sofia", "hr": "Europe/Zagreb",
	"cy": "Asia/Nicosia", "cz": "Europe/Prague", "dk": "Europe/Copenhagen", "ee": "Europe/Tallinn",
	"fi": "Europe/Helsinki", "fr": "Europe/Paris", "de": "Europe/Berlin", "gr": "Europe/Athens",
	"hu": "Europe/Budapest", "ie": "Europe/Dublin", "it": "Europe/Rome", "lv": "Europe/Riga",
	"lt": "Europe/Vilnius", "lu": "Europe/Luxembourg", "mt": "Europe/Malta", "nl": "Europe/Amsterdam",
	"pl": "Europe/Warsaw", "pt": "Europe/Lisbon", "ro": "Europe/Bucharest", "sk": "Europe/Bratislava",
	"si": "Europe/Ljubljana", "es": "Europe/Madrid", "se": "Europe/Stockholm",
}

// slugify turns a name into an id slug: lower case ASCII letters, digits
// and single hyphens.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if f, ok := fold[r]; ok {
			r = f
		}
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r == '\'':
			// drop: Villeneuve-d'Ascq -> villeneuve-dascq
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// fold maps the accented lower-case letters of the data to ASCII.
var fold = map[rune]rune{
	'à': 'a', 'á': 'a', 'â': 'a', 'ã': 'a', 'ä': 'a', 'å': 'a', 'ç': 'c', 'ć': 'c', 'č': 'c',
	'đ': 'd', 'è': 'e', 'é': 'e', 'ê': 'e', 'ë': 'e', 'ì': 'i', 'í': 'i', 'î': 'i', 'ï': 'i',
	'ñ': 'n', 'ò': 'o', 'ó': 'o', 'ô': 'o', 'õ': 'o', 'ö': 'o', 'ø': 'o', 'š': 's', 'ù': 'u',
	'ú': 'u', 'û': 'u', 'ü': 'u', 'ŭ': 'u', 'ý': 'y', 'ÿ': 'y', 'ž': 'z',
}
