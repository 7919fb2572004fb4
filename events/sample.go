package events

import "time"

// Sample values used by SamplePayload. They describe no real person: the
// organisations and services are illustrative ids, the age recipient's
// private key was discarded when the sample envelope was sealed.
const (
	sampleReferrer     = "pt.psp-lisboa"
	sampleOrganisation = "pt.apav"
	sampleService      = "pt.apav.gav-lisboa"
	sampleService2     = "pt.apav.linha-apoio"
	sampleRecipient    = "age13wswxm896mvzulrrqqymgpr3ts452928df5969pcjuw06f6ur35q0kdcky"
	sampleEnvelope     = "-----BEGIN AGE ENCRYPTED FILE-----\n" +
		"YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSByNzFIQjdTRXhQbkxhTEk1\n" +
		"aDAxc2lVNktlL1lJdWJRTDQ2NTdhaXVkVjNvCmFFdDBxT3JtQVNYcHVtdWZXNkxG\n" +
		"KzYxSTdNQktOMWNFck1VM1FxVS8wS00KLS0tIEZnQUNzdVJvc1JCVkVxUjRWVGZ0\n" +
		"eHlFUCtJTmM1Y2FmdTZ6dG9ZZ1l5bkEKgESBd4D/SEnY/TCBtY2lo6baVljif/CJ\n" +
		"MMxh+o73yhGo7an5dsvSU4TbeNTIBigdgJYmCl1A9TYh69U/Em96D4aX+jbYkETZ\n" +
		"LcGVFjei3mjtj1nFbPnerZsdnpI6B2mfMWV3E+nW\n" +
		"-----END AGE ENCRYPTED FILE-----\n"
)

var sampleTime = time.Date(2025, 3, 10, 9, 30, 0, 0, time.UTC)

func sampleProfile() Profile {
	lat, lon := 38.72, -9.14
	return Profile{
		Needs:         []string{NeedSupportEmotional, NeedJusticeLegalAid, NeedSafetyRiskAdvice},
		Crimes:        []string{"domestic_violence"},
		Flags:         []string{"close_relationship_offender", "risk_repeat_victimisation"},
		Urgency:       UrgencyUrgent,
		Location:      Location{Country: "pt", Region: "PT17", Municipality: "1106", Lat: &lat, Lon: &lon},
		Languages:     []string{"pt", "en"},
		InterpreterOK: true,
		AgeBand:       "adult",
		Gender:        "female",
		Channels:      []string{ChannelInPerson, ChannelPhone},
		Accessibility: []string{"quiet_space"},
	}
}

// SamplePayload returns a valid, realistic payload of eventType (a pointer,
// as in Envelope.Payload), or nil when the type is not in the catalogue.
// It is for tests and examples: the values identify nobody, and every call
// returns a new value that the caller may change.
func SamplePayload(eventType string) Payload {
	deadline := sampleTime.Add(2 * time.Hour)
	switch eventType {
	case TypeReferralRequested:
		return &Requested{
			Profile: sampleProfile(),
			Consent: Consent{Referral: true, ShareData: true, GivenAt: sampleTime.Add(-10 * time.Minute), Method: "verbal", RecordedBy: "staff-s0420"},
			// The victim asked for APAV; answer within a day.
			PreferredOrganisation: sampleOrganisation,
			ResponseHours:         24,
		}
	case TypeReferralPlanned:
		return &Planned{
			DirectoryRevision: 1842,
			Groups: []PlanGroup{
				{
					Placement: "p1",
					Needs:     []string{NeedSupportEmotional, NeedJusticeLegalAid},
					Candidates: []Candidate{{
						Service: sampleService, Organisation: sampleOrganisation,
						Covers:     []string{NeedSupportEmotional, NeedJusticeLegalAid},
						Score:      0.87,
						Components: map[string]float64{"needs": 1, "specialisation": 0.9, "language": 1, "distance": 0.82, "load": 0.6},
						Reasons:    []string{"covers both needs of the group", "specialised in domestic violence", "serves in Portuguese, the first language", "about 3 km away"},
					}},
				},
				{
					Placement: "p2",
					Needs:     []string{NeedSafetyRiskAdvice},
					Candidates: []Candidate{{
						Service: sampleService2, Organisation: sampleOrganisation,
						Covers:     []string{NeedSafetyRiskAdvice},
						Score:      0.74,
						Components: map[string]float64{"needs": 1, "language": 1, "channel": 0.8},
						Reasons:    []string{"available by phone around the clock"},
					}},
				},
			},
			Excluded: map[string]int{"capacity": 2, "language": 1},
		}
	case TypeReferralOffered:
		return &Offered{
			Placement: "p1", Service: sampleService, Organisation: sampleOrganisation, Referrer: sampleReferrer,
			Needs: []string{NeedSupportEmotional, NeedJusticeLegalAid}, Attempt: 1, Deadline: deadline,
			Profile: sampleProfile(),
		}
	case TypeReferralAccepted:
		return &Accepted{Placement: "p1"}
	case TypeReferralDeclined:
		return &Declined{Placement: "p1", Reason: "capacity"}
	case TypeReferralExpired:
		return &Expired{Placement: "p1", Service: sampleService, Deadline: deadline}
	case TypeReferralUnmatched:
		return &Unmatched{Placement: "p2", Needs: []string{NeedSafetyRiskAdvice}, Reason: "all_declined", Profile: sampleProfile()}
	case TypeReferralHandover:
		return &Handover{Placement: "p1", Recipient: sampleRecipient, Envelope: sampleEnvelope}
	case TypeReferralContacted:
		return &Contacted{Placement: "p1"}
	case TypeReferralOnHold:
		until := sampleTime.AddDate(0, 0, 14)
		return &OnHold{Placement: "p1", Until: &until}
	case TypeReferralCompleted:
		return &Completed{Placement: "p1", Outcome: "supported"}
	case TypeReferralWithdrawn:
		return &Withdrawn{Reason: "needs_met"}
	case TypeReferralErase:
		return &Erase{Reason: "victim_request"}
	case TypeReferralErased:
		return &Erased{
			Country: "pt", Region: "PT17",
			Needs:   []string{NeedSupportEmotional, NeedJusticeLegalAid, NeedSafetyRiskAdvice},
			Outcome: "completed", RequestedOn: "2025-03-10", ErasedOn: "2025-09-10",
		}
	case TypeReferralFeedback:
		return &Feedback{Placement: "p1", Answers: []Answer{{Question: "helpful", Value: 5}, {Question: "respectful", Value: 5}, {Question: "timely", Value: 4}}}
	case TypeCommandRejected:
		return &CommandRejected{
			Command:     "0195f0c2-7a3e-7b41-9c2d-5e8f1a2b3c4d",
			CommandType: TypeReferralAccepted,
			Errors:      []Problem{{Pointer: "/data/placement", Code: CodeRequired, Message: "placement is required"}},
		}
	case TypeDeliveryFailed:
		return &DeliveryFailed{Placement: "p1", Organisation: "pt.apav", Channel: "email", Message: "offer",
			Event: "0195f0c2-6b1d-7e2a-9f3c-4d5e6f7a8b9c", Reason: DeliveryRefused, SMTPCode: 550, Attempts: 1}
	case TypeDirectoryOrgUpdated:
		return &OrganisationUpdated{Organisation: sampleOrganisation, Revision: 1843}
	case TypeDirectoryServiceUpdated:
		return &ServiceUpdated{Service: sampleService, Revision: 1844}
	case TypeDirectoryServiceContent:
		return &ServiceContent{
			Service: sampleService, Revision: 1846,
			Hours:     ServiceHours{TimeZone: "Europe/Lisbon", Weekly: []OpeningInterval{{Day: "mo", Opens: "09:00", Closes: "17:00"}, {Day: "tu", Opens: "09:00", Closes: "17:00"}}},
			Languages: []string{"pt", "en"}, Channels: []string{ChannelInPerson, ChannelPhone},
			Accessibility: []string{"wheelchair"}, AgeBands: []string{"adult", "older"},
			Contact: &ServiceContact{Role: "Referral desk", Email: "referrals@example.org", Phone: "+351 21 000 0000"},
		}
	case TypeDirectoryCapacityUpdated:
		return &CapacityUpdated{Service: sampleService, Status: CapacityWaitlist, Revision: 1845}
	}
	return nil
}

// SampleReferralID is the referral id SampleSubject uses (a UUIDv7).
const SampleReferralID = "0195f0c1-2d4b-7c3a-8e5f-6a7b8c9d0e1f"

// SampleSubject returns a valid subject for an event of eventType: the
// organisation id for directory.organisation.updated, the service id for
// the other directory events, and SampleReferralID otherwise. Like
// SamplePayload it is for tests and examples.
func SampleSubject(eventType string) string {
	switch eventType {
	case TypeDirectoryOrgUpdated:
		return sampleOrganisation
	case TypeDirectoryServiceUpdated, TypeDirectoryServiceContent, TypeDirectoryCapacityUpdated:
		return sampleService
	}
	return SampleReferralID
}
