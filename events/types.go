package events

// Event types of the v1 catalogue (DESIGN.md section 3). The type string is
// invictus.<area>.<action>.v<major>.
const (
	TypeReferralRequested       = "invictus.referral.requested.v1"
	TypeReferralPlanned         = "invictus.referral.planned.v1"
	TypeReferralOffered         = "invictus.referral.offered.v1"
	TypeReferralAccepted        = "invictus.referral.accepted.v1"
	TypeReferralDeclined        = "invictus.referral.declined.v1"
	TypeReferralExpired         = "invictus.referral.expired.v1"
	TypeReferralUnmatched       = "invictus.referral.unmatched.v1"
	TypeReferralHandover        = "invictus.referral.handover.v1"
	TypeReferralContacted       = "invictus.referral.contacted.v1"
	TypeReferralOnHold          = "invictus.referral.on_hold.v1"
	TypeReferralCompleted       = "invictus.referral.completed.v1"
	TypeReferralWithdrawn       = "invictus.referral.withdrawn.v1"
	TypeReferralErase           = "invictus.referral.erase.v1"
	TypeReferralErased          = "invictus.referral.erased.v1"
	TypeReferralFeedback        = "invictus.referral.feedback.v1"
	TypeCommandRejected         = "invictus.command.rejected.v1"
	TypeDeliveryFailed          = "invictus.delivery.failed.v1"
	TypeDirectoryOrgUpdated     = "invictus.directory.organisation.updated.v1"
	TypeDirectoryServiceUpdated = "invictus.directory.service.updated.v1"
	// TypeDirectoryServiceContent is version 2 of directory.service.updated:
	// an organisation's new listing content for one of its services.
	TypeDirectoryServiceContent  = "invictus.directory.service.updated.v2"
	TypeDirectoryCapacityUpdated = "invictus.directory.capacity.updated.v1"
)

// SourceRouting is the CloudEvents source of the routing service's own events.
const SourceRouting = "/invictus/routing"

// SourceEmail is the source of the e-mail channel's own events
// (delivery.failed).
const SourceEmail = "/invictus/email"

// SourceDirectory is the source of directory events written by an administrator.
const SourceDirectory = "/invictus/directory"

// ContentTypeJSON is the only datacontenttype the contract accepts for data.
const ContentTypeJSON = "application/json"

// SchemaPathPrefix is the URL path under which the HTTP API serves payload
// schemas, as SchemaPathPrefix + <short type> + ".json".
const SchemaPathPrefix = "/schemas/"

// SchemaURNPrefix starts the dataschema of every event and the "$id" of
// every payload schema: SchemaURNPrefix + <short type>. A URN names the
// schema the same way on every node and for ever, whatever address a
// node is reached at; the HTTP API serves the document of
// "urn:invictus:schema:<short type>" at SchemaPathPrefix + <short type> + ".json".
const SchemaURNPrefix = "urn:invictus:schema:"
