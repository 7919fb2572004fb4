-- The reporting projection of REFERRALS for coordinators: what happened to
-- referrals, placements and offers, with timestamps, keyed by country,
-- region, need, crime type, organisation and ISO week (YYYY-Www, UTC).
-- Nothing here identifies a victim: the needs profile is codes only.

CREATE TABLE {{schema}}.referrals (
    referral_id            text        PRIMARY KEY,
    referrer               text        NOT NULL,
    referrer_country       text        NOT NULL,
    country                text        NOT NULL,
    region                 text,
    residence_country      text,
    urgency                text        NOT NULL,
    age_band               text        NOT NULL,
    preferred_organisation text,
    status                 text        NOT NULL,
    plan_gaps              integer     NOT NULL DEFAULT 0,
    requested_at           timestamptz NOT NULL,
    iso_week               text        NOT NULL,
    planned_at             timestamptz,
    closed_at              timestamptz,
    updated_at             timestamptz NOT NULL,
    withdrawn_reason       text
);

CREATE INDEX referrals_country_week ON {{schema}}.referrals (country, region, iso_week);
CREATE INDEX referrals_referrer ON {{schema}}.referrals (referrer, iso_week);

CREATE TABLE {{schema}}.referral_needs (
    referral_id text NOT NULL,
    need        text NOT NULL,
    PRIMARY KEY (referral_id, need)
);

CREATE INDEX referral_needs_need ON {{schema}}.referral_needs (need);

CREATE TABLE {{schema}}.referral_crimes (
    referral_id text NOT NULL,
    crime       text NOT NULL,
    PRIMARY KEY (referral_id, crime)
);

CREATE INDEX referral_crimes_crime ON {{schema}}.referral_crimes (crime);

CREATE TABLE {{schema}}.placements (
    referral_id      text        NOT NULL,
    placement        text        NOT NULL,
    needs            text[]      NOT NULL,
    status           text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    organisation     text,
    service          text,
    accepted_by      text,
    accepted_at      timestamptz,
    contacted_at     timestamptz,
    closed_at        timestamptz,
    outcome          text,
    unmatched_reason text,
    planned_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (referral_id, placement)
);

CREATE INDEX placements_accepted_by ON {{schema}}.placements (accepted_by);

-- One row per offer of a placement to an organisation.
CREATE TABLE {{schema}}.offers (
    referral_id          text        NOT NULL,
    placement            text        NOT NULL,
    attempt              integer     NOT NULL,
    organisation         text        NOT NULL,
    organisation_country text        NOT NULL,
    service              text        NOT NULL,
    referrer             text        NOT NULL,
    referrer_country     text        NOT NULL,
    offered_at           timestamptz NOT NULL,
    deadline             timestamptz NOT NULL,
    iso_week             text        NOT NULL,
    status               text        NOT NULL DEFAULT 'open',
    answered_at          timestamptz,
    decline_reason       text,
    PRIMARY KEY (referral_id, placement, attempt),
    CONSTRAINT offers_status CHECK (status IN ('open', 'accepted', 'declined', 'expired', 'cancelled'))
);

CREATE INDEX offers_organisation ON {{schema}}.offers (organisation, iso_week);
CREATE INDEX offers_referrer ON {{schema}}.offers (referrer, iso_week);

-- Every event of the log, as a transition of a referral (or of one of its
-- placements), in log order.
CREATE TABLE {{schema}}.transitions (
    stream_seq  bigint      PRIMARY KEY,
    event_id    text        NOT NULL,
    referral_id text        NOT NULL,
    placement   text,
    type        text        NOT NULL,
    actor       text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    iso_week    text        NOT NULL
);

CREATE INDEX transitions_referral ON {{schema}}.transitions (referral_id, stream_seq);
CREATE INDEX transitions_type_week ON {{schema}}.transitions (type, iso_week);

-- Needs that no service met: the gaps in provision.
CREATE TABLE {{schema}}.unmatched_needs (
    referral_id       text        NOT NULL,
    placement         text        NOT NULL DEFAULT '',
    need              text        NOT NULL,
    reason            text        NOT NULL,
    country           text        NOT NULL,
    region            text,
    residence_country text,
    urgency           text        NOT NULL,
    age_band          text        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    iso_week          text        NOT NULL,
    PRIMARY KEY (referral_id, placement, need)
);

CREATE INDEX unmatched_needs_region ON {{schema}}.unmatched_needs (country, region, need);

-- What statistics keep of an erased referral: exactly what the
-- referral.erased event carries, and no referral id.
CREATE TABLE {{schema}}.erasures (
    event_id     text    PRIMARY KEY,
    country      text    NOT NULL,
    region       text,
    needs        text[]  NOT NULL,
    outcome      text    NOT NULL,
    requested_on date    NOT NULL,
    erased_on    date    NOT NULL,
    iso_week     text    NOT NULL
);

-- The last REFERRALS sequence applied, updated in the same transaction as
-- the rows it produced.
CREATE TABLE {{schema}}.projection_checkpoint (
    stream     text        PRIMARY KEY,
    last_seq   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
