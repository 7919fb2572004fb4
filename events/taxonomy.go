package events

import "slices"

// The taxonomy of DESIGN.md section 3. Codes are stable identifiers; their
// labels in several languages live in schemas/taxonomy.json.

// Need codes, with the article of Directive 2012/29/EU they come from.
const (
	NeedInfoRights                = "info.rights"
	NeedInfoCase                  = "info.case"
	NeedInfoCompensation          = "info.compensation"
	NeedSupportEmotional          = "support.emotional"
	NeedSupportPsychological      = "support.psychological"
	NeedSupportTrauma             = "support.trauma"
	NeedSupportPractical          = "support.practical"
	NeedSupportFinancial          = "support.financial"
	NeedJusticeCourtAccompaniment = "justice.court_accompaniment"
	NeedJusticeLegalAid           = "justice.legal_aid"
	NeedJusticeRestorative        = "justice.restorative"
	NeedSafetyRiskAdvice          = "safety.risk_advice"
	NeedSafetyProtectionMeasures  = "safety.protection_measures"
	NeedSafetyShelter             = "safety.shelter"
	NeedHealthMedical             = "health.medical"
	NeedCommInterpretation        = "comm.interpretation"
	NeedReferralSpecialist        = "referral.specialist"
	NeedFamilySupport             = "family.support"
	NeedCrossborderAssistance     = "crossborder.assistance"
)

// Needs lists every need code in catalogue order.
var Needs = []string{
	NeedInfoRights, NeedInfoCase, NeedInfoCompensation,
	NeedSupportEmotional, NeedSupportPsychological, NeedSupportTrauma,
	NeedSupportPractical, NeedSupportFinancial,
	NeedJusticeCourtAccompaniment, NeedJusticeLegalAid, NeedJusticeRestorative,
	NeedSafetyRiskAdvice, NeedSafetyProtectionMeasures, NeedSafetyShelter,
	NeedHealthMedical, NeedCommInterpretation, NeedReferralSpecialist,
	NeedFamilySupport, NeedCrossborderAssistance,
}

// Crimes lists every crime-type code.
var Crimes = []string{
	"homicide", "physical_assault", "sexual_violence", "domestic_violence",
	"gender_based_violence", "stalking_harassment", "image_based_abuse", "fgm",
	"forced_marriage", "trafficking", "labour_exploitation", "child_abuse",
	"elder_abuse", "hate_crime", "terrorism", "organised_crime", "robbery",
	"burglary_theft", "fraud", "cybercrime", "road_traffic", "mass_incident", "other",
}

// Flags lists every individual-assessment flag code (Art. 22).
var Flags = []string{
	"child", "disability", "considerable_harm", "bias_motive",
	"dependence_on_offender", "close_relationship_offender",
	"risk_repeat_victimisation", "risk_intimidation_retaliation",
	"language_barrier", "non_resident", "older_person", "contact_restricted",
}

// Urgency levels of a referral.
const (
	UrgencyRoutine   = "routine"
	UrgencySoon      = "soon"
	UrgencyUrgent    = "urgent"
	UrgencyEmergency = "emergency"
)

// Urgencies lists the urgency levels from least to most urgent.
var Urgencies = []string{UrgencyRoutine, UrgencySoon, UrgencyUrgent, UrgencyEmergency}

// AgeBands lists the age bands a profile and a service eligibility use.
var AgeBands = []string{"child", "youth", "adult", "older"}

// Genders lists the optional gender codes of a profile and an eligibility rule.
var Genders = []string{"female", "male", "non_binary", "other"}

// Channels lists the ways a service can be delivered.
const (
	ChannelInPerson  = "in_person"
	ChannelPhone     = "phone"
	ChannelVideo     = "video"
	ChannelChat      = "chat"
	ChannelEmail     = "email"
	ChannelHomeVisit = "home_visit"
)

// Channels lists every channel code.
var Channels = []string{ChannelInPerson, ChannelPhone, ChannelVideo, ChannelChat, ChannelEmail, ChannelHomeVisit}

// RemoteChannels are the channels through which a service can serve a whole
// country without a location near the victim.
var RemoteChannels = []string{ChannelPhone, ChannelVideo, ChannelChat, ChannelEmail}

// Accessibility lists the accessibility needs a profile may state and a
// service may meet.
var Accessibility = []string{
	"wheelchair", "step_free", "sign_language", "easy_read", "hearing_loop",
	"braille", "quiet_space", "childcare",
}

// ConsentMethods lists how consent was given.
var ConsentMethods = []string{"verbal", "written", "digital"}

// DeclineReasons lists the coded reasons for declining an offer.
var DeclineReasons = []string{"capacity", "out_of_scope", "not_eligible", "out_of_area", "language", "conflict_of_interest", "other"}

// Outcomes lists the outcome codes of a completed placement.
var Outcomes = []string{"supported", "not_supported", "unable_to_contact", "declined_by_victim", "referred_elsewhere", "other"}

// WithdrawReasons lists the coded reasons for withdrawing a referral.
var WithdrawReasons = []string{"victim_request", "needs_met", "referred_elsewhere", "duplicate", "error", "other"}

// CapacityStatuses lists a service's capacity states.
const (
	CapacityAccepting = "accepting"
	CapacityWaitlist  = "waitlist"
	CapacityFull      = "full"
)

// CapacityStatuses lists every capacity status.
var CapacityStatuses = []string{CapacityAccepting, CapacityWaitlist, CapacityFull}

// Countries lists the ISO 3166-1 alpha-2 codes (lower case) of EU and EEA
// states and neighbours that the network accepts as organisation countries
// and victim locations.
var Countries = []string{
	"at", "be", "bg", "hr", "cy", "cz", "dk", "ee", "fi", "fr", "de", "gr", "hu",
	"ie", "it", "lv", "lt", "lu", "mt", "nl", "pl", "pt", "ro", "sk", "si", "es", "se",
	"is", "li", "no", "ch", "gb", "al", "ba", "me", "mk", "rs", "xk", "md", "ua", "tr",
}

// IsNeed reports whether code is a need code.
func IsNeed(code string) bool { return slices.Contains(Needs, code) }

// IsCrime reports whether code is a crime-type code.
func IsCrime(code string) bool { return slices.Contains(Crimes, code) }

// IsFlag reports whether code is a flag code.
func IsFlag(code string) bool { return slices.Contains(Flags, code) }

// IsCountry reports whether cc is an accepted country code.
func IsCountry(cc string) bool { return slices.Contains(Countries, cc) }
