package events

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidSubject is the class of every error of the subject builders
// and parsers, and of ToNATS for a subject it cannot publish to.
var ErrInvalidSubject = errors.New("invalid subject")

// Subject prefixes (DESIGN.md section 3, "Identifiers and subjects").
const (
	subjectInbound  = "in"
	subjectReferral = "referral"
	subjectDelivery = "out"
	subjectTimer    = "timer"
	subjectFire     = "fire"
	subjectDLQ      = "dlq"
)

var reDLQReason = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// IsReferralID reports whether id is a referral id: a UUID in canonical
// lower-case form (8-4-4-4-12 hex digits), not the nil or max UUID.
// NewReferralID makes UUIDv7s; other versions are accepted from
// integrators.
func IsReferralID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return id != "00000000-0000-0000-0000-000000000000" && id != "ffffffff-ffff-ffff-ffff-ffffffffffff"
}

func subjectError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSubject, fmt.Sprintf(format, args...))
}

func checkOrg(org string) error {
	if !IsOrgID(org) {
		return subjectError("%s is not an organisation id (<country>.<slug>)", quote(org))
	}
	return nil
}

func checkReferral(id string) error {
	if !IsReferralID(id) {
		return subjectError("%s is not a referral id (a canonical lower-case UUID)", quote(id))
	}
	return nil
}

func checkPlacement(p string) error {
	if !IsPlacementID(p) {
		return subjectError("%s is not a placement id ([a-z0-9-]{1,16})", quote(p))
	}
	return nil
}

// InboundSubject returns the INBOUND subject on which organisation org
// publishes its commands: in.<cc>.<slug> ("pt.apav" gives "in.pt.apav").
// It returns an error wrapping ErrInvalidSubject when org is not a valid
// organisation id.
func InboundSubject(org string) (string, error) {
	if err := checkOrg(org); err != nil {
		return "", err
	}
	return subjectInbound + "." + org, nil
}

// ParseInboundSubject returns the organisation id of an INBOUND subject,
// or an error wrapping ErrInvalidSubject.
func ParseInboundSubject(s string) (org string, err error) {
	t := strings.Split(s, ".")
	if len(t) != 3 || t[0] != subjectInbound {
		return "", subjectError("%s is not in.<cc>.<org>", quote(s))
	}
	org = t[1] + "." + t[2]
	if err := checkOrg(org); err != nil {
		return "", err
	}
	return org, nil
}

// ReferralSubject returns the REFERRALS subject of a referral: the event
// log of referral referralID, kept in country cc: referral.<cc>.<id>. It
// returns an error wrapping ErrInvalidSubject when cc is not an accepted
// country code or referralID is not a referral id.
func ReferralSubject(cc, referralID string) (string, error) {
	if !IsCountry(cc) {
		return "", subjectError("%s is not an accepted country code", quote(cc))
	}
	if err := checkReferral(referralID); err != nil {
		return "", err
	}
	return subjectReferral + "." + cc + "." + referralID, nil
}

// ParseReferralSubject returns the country and referral id of a REFERRALS
// subject, or an error wrapping ErrInvalidSubject.
func ParseReferralSubject(s string) (cc, referralID string, err error) {
	t := strings.Split(s, ".")
	if len(t) != 3 || t[0] != subjectReferral {
		return "", "", subjectError("%s is not referral.<cc>.<referral id>", quote(s))
	}
	if _, err := ReferralSubject(t[1], t[2]); err != nil {
		return "", "", err
	}
	return t[1], t[2], nil
}

// DeliverySubject returns the DELIVERY subject on which organisation org
// receives what it must see of referral referralID:
// out.<cc>.<slug>.<referral id>. It returns an error wrapping
// ErrInvalidSubject when org or referralID is not valid.
func DeliverySubject(org, referralID string) (string, error) {
	if err := checkOrg(org); err != nil {
		return "", err
	}
	if err := checkReferral(referralID); err != nil {
		return "", err
	}
	return subjectDelivery + "." + org + "." + referralID, nil
}

// ParseDeliverySubject returns the organisation and referral id of a
// DELIVERY subject, or an error wrapping ErrInvalidSubject.
func ParseDeliverySubject(s string) (org, referralID string, err error) {
	t := strings.Split(s, ".")
	if len(t) != 4 || t[0] != subjectDelivery {
		return "", "", subjectError("%s is not out.<cc>.<org>.<referral id>", quote(s))
	}
	org = t[1] + "." + t[2]
	if _, err := DeliverySubject(org, t[3]); err != nil {
		return "", "", err
	}
	return org, t[3], nil
}

// NoDeliveryFilter is what DeliveryFilter returns for an invalid
// organisation id: a literal subject that no delivery subject equals, so
// that a consumer created with it receives nothing.
const NoDeliveryFilter = "out.invalid-organisation"

// DeliveryFilter returns the filter subject of organisation org's delivery
// consumer: out.<cc>.<slug>.>. The caller is expected to have checked org
// with IsOrgID; for an invalid id (which could contain wildcards) it
// returns NoDeliveryFilter, so that a mistake fails closed instead of
// subscribing to other organisations' deliveries.
func DeliveryFilter(org string) string {
	if !IsOrgID(org) {
		return NoDeliveryFilter
	}
	return subjectDelivery + "." + org + ".>"
}

// TimerSubject returns the TIMERS subject of the deadline of a placement:
// timer.<referral id>.<placement>. It returns an error wrapping
// ErrInvalidSubject when referralID or placement is not valid.
func TimerSubject(referralID, placement string) (string, error) {
	if err := checkReferral(referralID); err != nil {
		return "", err
	}
	if err := checkPlacement(placement); err != nil {
		return "", err
	}
	return subjectTimer + "." + referralID + "." + placement, nil
}

// TimerFireSubject returns the subject a placement's scheduled deadline
// fires to: timer.fire.<referral id>.<placement>. It returns an error
// wrapping ErrInvalidSubject when referralID or placement is not valid.
func TimerFireSubject(referralID, placement string) (string, error) {
	s, err := TimerSubject(referralID, placement)
	if err != nil {
		return "", err
	}
	return subjectTimer + "." + subjectFire + strings.TrimPrefix(s, subjectTimer), nil
}

// ParseTimerSubject returns the referral id and placement of a timer
// subject, and whether it is a fire subject (timer.fire.<id>.<placement>)
// rather than a schedule subject (timer.<id>.<placement>). It returns an
// error wrapping ErrInvalidSubject for any other subject.
func ParseTimerSubject(s string) (referralID, placement string, fired bool, err error) {
	t := strings.Split(s, ".")
	switch {
	case len(t) == 3 && t[0] == subjectTimer:
		referralID, placement = t[1], t[2]
	case len(t) == 4 && t[0] == subjectTimer && t[1] == subjectFire:
		referralID, placement, fired = t[2], t[3], true
	default:
		return "", "", false, subjectError("%s is not timer.<referral id>.<placement> or timer.fire.<referral id>.<placement>", quote(s))
	}
	if _, err := TimerSubject(referralID, placement); err != nil {
		return "", "", false, err
	}
	return referralID, placement, fired, nil
}

// DLQSubject returns the DLQ subject for messages set aside for reason, a
// token of 1 to 64 characters [a-z0-9_] (e.g. "decode", "forbidden"). It
// returns an error wrapping ErrInvalidSubject for any other reason.
func DLQSubject(reason string) (string, error) {
	if !reDLQReason.MatchString(reason) {
		return "", subjectError("%s is not a DLQ reason ([a-z0-9_]{1,64})", quote(reason))
	}
	return subjectDLQ + "." + reason, nil
}

// isPublishSubject reports whether s is a NATS subject that can be
// published to: non-empty tokens of printable ASCII, no wildcards.
func isPublishSubject(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		for i := range len(tok) {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				return false
			}
		}
	}
	return true
}
