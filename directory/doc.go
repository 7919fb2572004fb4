// Package directory is the directory of the referral network: the
// organisations that take part and the services they offer, with
// everything the matcher needs to find the right service for a victim's
// needs profile.
//
// # Model
//
// An [Organisation] (id <country>.<slug>, e.g. pt.apav) runs [Service]
// values (id <org id>.<slug>). The model follows Open Referral HSDS 3.0
// (organization, service, location, service_at_location, language,
// service_area, schedule, contact, phone, attribute; service_capacity from
// HSDS 3.1) and adds what referral needs: need, crime and flag codes of
// the events taxonomy, [Eligibility] by age band and gender, channels and
// accessibility, a [ServiceArea] (countries, NUTS regions of any level, a
// radius around each [Location], or remote service across the countries;
// see [Service.Covers]), opening hours in the service's own time zone or
// 24/7 ([Schedule.OpenAt]), a promised response time, a [Capacity] status
// (accepting, waitlist, full) with its time, the referral point of contact
// (a [Contact] that names a role, never a person) and the organisation's
// age X25519 recipient for sealed handovers. [Directory] holds both lists;
// stored values carry [ModelVersion] in their version field.
//
// # Validation
//
// [Directory.Validate], [ValidateOrganisation] and [ValidateService]
// return a [*ValidationError] listing every [Problem] with a JSON pointer
// (/services/3/hours/weekly/0/opens), a stable code and a message: unknown
// codes, malformed or reversed hours, unknown time zones (the zone
// database is embedded), impossible coordinates, duplicate ids, services
// of unknown organisations or outside their organisation's id, bad age
// recipients. It matches [ErrInvalid] with errors.Is.
//
// # Interchange
//
// [ExportHSDS] writes HSDS 3.0 JSON (an array of organization objects
// with their services nested) with UUIDv5 ids derived from directory ids
// ([HSDSID]), so that exports are deterministic; codes and the fields HSDS
// lacks travel as attributes of the [HSDSTaxonomy] "invictus".
// [ImportHSDS] reads it back to the same directory. scripts/check-hsds.sh
// validates an export against the HSDS 3.0 JSON Schemas.
//
// [ImportForm] reads the CSV or YAML form a small organisation fills in by
// hand (one row per service, [FormColumns]; see testdata/form-template.csv)
// and names the row and column of every problem.
//
// # Demo and generated directories
//
// [Demo] builds the demo directory from the embedded data (data/README.md
// gives sources and licences): the real national organisations, marked
// Illustrative, with only the helplines the sources give, and Synthetic
// local offices in real cities so that every NUTS-2 region of
// [DemoCountries] has a local service for each of [CommonNeeds]. It is
// deterministic from its seed. The demo ships no keys: AgeRecipient is
// empty, and `invictus serve --demo` generates keys when it starts.
// [Generate] makes a valid directory of any size with realistic
// distributions for tests and benchmarks. [Cities], [Languages],
// [Regions] and [TimeZone] expose the embedded reference data.
package directory
