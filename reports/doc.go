// Package reports is the coordinators' read model: counters of referrals
// over the REFERRALS event log, and the reports computed from them with
// small-cell suppression.
//
// A [Model] is fed the log's events in order ([Model.Apply]). It keeps
// aggregates only: for each combination of a referral's dimensions (day
// requested, referrer, victim's country and region, needs and the
// profile's victim-group codes) and each fact (offered to an
// organisation, accepted, declined, expired, reminded, contacted, an
// outcome for a need, a need unmatched for a reason, a feedback answer),
// the number of referrals it is true of, and histograms of minutes for
// the times to accept and to first contact. Per referral it keeps what
// counting once and timing need: the dimensions' index, the request
// time, its open offers and the facts it was already counted in. No
// referral id, organisation free text or case data leaves the package:
// [Model.Report] returns tables of counts.
//
// Every count of 1 to 4 referrals is shown as "<5" ([MinCell], [Count]),
// and complementary cells are hidden too so that no hidden count can be
// derived from totals (see [Table]). A national coordinator's [Scope]
// keeps what touches its country; a European coordinator's keeps all.
//
// [Store] makes a model safe for concurrent use and snapshots it, with
// the stream sequence it reached, so that a restarted node resumes from
// the snapshot instead of the beginning of the log.
//
// The package imports only events.
package reports
