// openapi-command.ts is type-checked by check-openapi.sh against the types
// openapi-typescript generates from the bundled OpenAPI document: a client
// generated from /v1/openapi.json can build a structured-mode command with
// a typed payload, and read the probes' answers.
import type { components } from "./openapi.bundled";

type CloudEvent = components["schemas"]["CloudEvent"];
type Requested = components["schemas"]["referral.requested.v1"];
type Health = components["schemas"]["Health"];
type Readiness = components["schemas"]["Readiness"];

const profile: Requested = {
  needs: ["support.emotional", "safety.shelter"],
  urgency: "soon",
  location: { country: "pt", region: "PT1B", lat: 38.72, lon: -9.14 },
  languages: ["pt"],
  interpreter_ok: false,
  age_band: "adult",
  channels: ["in_person"],
  consent: { referral: true, share_data: true, given_at: "2026-12-07T08:00:00Z", method: "verbal", recorded_by: "staff-s0001" },
  preferred_organisation: "pt.amcv",
};

export const command: CloudEvent = {
  specversion: "1.0",
  id: "0195a3f1-02b8-7c1e-8f4d-6a2b9e0c7f13",
  source: "/orgs/pt.apav",
  type: "invictus.referral.requested.v1",
  subject: "0195a3f0-7c4e-7d2a-9b61-3f8e2a1c5d47",
  time: "2026-12-07T08:00:00Z",
  dataschema: "urn:invictus:schema:referral.requested.v1",
  datacontenttype: "application/json",
  data: profile,
};

export const alive: Health = { status: "alive" };
export const notReady: Readiness = { status: "not_ready", checks: { jetstream: "nats: timeout" } };
