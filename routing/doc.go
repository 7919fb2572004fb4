// Package routing matches a victim's needs profile against the directory
// and runs the routing service, as DESIGN.md sections 4 and 5 describe.
//
// The [Matcher] turns a needs profile and a directory revision into a plan
// a person can read: candidates from the directory's index, hard
// constraints, visible score components, a greedy cover of the needs with
// ranked fallbacks, and the needs nothing covers. The same profile and
// revision always give the same plan.
//
// # Matching
//
// [Matcher.Match] takes a [directory.Index] snapshot and an
// [events.Profile] and returns a [Plan]:
//
//  1. Candidates come from [directory.Index.Candidates]: services offering
//     a needed code whose area covers the victim, plus, in a cross-border
//     case, the remote services of the residence country.
//  2. Hard constraints ([ConstraintEligibility], [ConstraintCapacity],
//     [ConstraintLanguage], [ConstraintChannel], [ConstraintAccessibility],
//     [ConstraintOpenNow] for emergencies, [ConstraintInactive]) remove
//     services; [Plan.Excluded] counts each under the first it failed.
//  3. Each remaining service gets a score: the weighted mean ([Weights])
//     of named components in [0, 1] ([ComponentNeeds],
//     [ComponentSpecialisation], [ComponentLanguage], [ComponentDistance],
//     [ComponentChannel], [ComponentAccessibility], [ComponentLoad],
//     [ComponentAcceptance], [ComponentResponseTime], [ComponentResidence]).
//     Observed behaviour comes from a [StatsSource]; without one, neutral
//     priors.
//  4. A greedy weighted set cover groups the needs into as few placements
//     as it can ([CoverQuality]); each [Group] ranks its candidates, 24/7
//     services first in an emergency, exact ties broken on service name,
//     then id. In a cross-border case, ongoing support is planned with services of the
//     residence country first.
//  5. Every candidate carries its components and its reasons, what it
//     meets and what it does not: [Candidate.Why] in codes ([Reason], the
//     Reason* constants), which [Reason.Words] puts in any language of the
//     taxonomy (schemas/taxonomy.json, "explanations", through any
//     [Labeler] such as *schemas.Taxonomy), and [Candidate.Reasons] in
//     codes and English ("covers safety.shelter and support.emotional",
//     "does not offer justice.legal_aid", "speaks pt and en", "3.4 km",
//     "accepting"), as [Plan.Event] gives them in the referral.planned
//     payload. [UnmatchedWords] says in words why a need is not covered.
//
// The distance decays with the distance to the nearest location, counted
// [WaterCrossingFactor] times across the sea (island NUTS regions) and
// [BorderCrossingFactor] times across a border.
//
// [Matcher.Eligible] lists the services that pass every constraint and
// [Matcher.Assess] explains one service ("why not this one?"). The first
// match against a snapshot derives compact bit masks for its services;
// snapshots made with [directory.Index.With] reuse those of unchanged
// services, so a match costs a few nanoseconds per candidate.
// [SampleProfiles] draws realistic profiles for benchmarks.
//
// The [Service] validates and authorises each command, folds the
// referral's events through the state machine of package referral,
// appends the resulting events and says what each party must receive. The
// ports it needs are small interfaces declared here ([EventLog],
// [Directory], and the optional [Observer] that metrics hang on: command
// outcomes, offer latency, expiries, status changes, never victim data);
// the adapters implement them. The package imports only the
// domain packages (events, directory, referral), never an adapter.
package routing
