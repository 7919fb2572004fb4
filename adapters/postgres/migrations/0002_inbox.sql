-- The inbox: every event the network delivers to the organisation, once,
-- written before the delivery is acknowledged to JetStream.

CREATE TABLE {{schema}}.inbox (
    event_id    text        PRIMARY KEY,
    type        text        NOT NULL,
    source      text        NOT NULL,
    referral_id text,
    subject     text,
    payload     jsonb       NOT NULL,
    event_time  timestamptz NOT NULL,
    stream_seq  bigint      NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE {{schema}}.inbox IS
    'INVICTUS inbox: events delivered to this organisation, one row per CloudEvents id.';
COMMENT ON COLUMN {{schema}}.inbox.event_id IS 'CloudEvents id.';
COMMENT ON COLUMN {{schema}}.inbox.type IS 'CloudEvents type, e.g. invictus.referral.offered.v1.';
COMMENT ON COLUMN {{schema}}.inbox.source IS 'CloudEvents source: /invictus/routing or /orgs/<organisation>.';
COMMENT ON COLUMN {{schema}}.inbox.referral_id IS 'The referral the event is about, when it is about one.';
COMMENT ON COLUMN {{schema}}.inbox.subject IS 'CloudEvents subject.';
COMMENT ON COLUMN {{schema}}.inbox.payload IS 'The payload (data) of the event; sealed envelopes stay sealed here.';
COMMENT ON COLUMN {{schema}}.inbox.event_time IS 'CloudEvents time.';
COMMENT ON COLUMN {{schema}}.inbox.stream_seq IS 'Sequence of the delivery in the DELIVERY stream (delivery order).';

CREATE INDEX inbox_referral ON {{schema}}.inbox (referral_id, stream_seq);
CREATE INDEX inbox_stream_seq ON {{schema}}.inbox (stream_seq);

-- Opened case envelopes (referral.handover), when the adapter holds the
-- organisation's key. Nobody but the adapter's own role may read them
-- until the partner grants access explicitly.
CREATE TABLE {{schema}}.envelopes (
    event_id    text        PRIMARY KEY REFERENCES {{schema}}.inbox (event_id) ON DELETE CASCADE,
    referral_id text        NOT NULL,
    placement   text        NOT NULL,
    recipient   text        NOT NULL,
    plaintext   bytea,
    error       text,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT envelopes_plaintext_or_error CHECK ((plaintext IS NULL) <> (error IS NULL))
);

REVOKE ALL ON TABLE {{schema}}.envelopes FROM PUBLIC;

COMMENT ON TABLE {{schema}}.envelopes IS
    'INVICTUS opened case envelopes: victim data. Restricted: grant SELECT only to the roles that handle cases.';
COMMENT ON COLUMN {{schema}}.envelopes.plaintext IS 'The opened case file, as the referrer sealed it.';
COMMENT ON COLUMN {{schema}}.envelopes.error IS 'Why the envelope could not be opened (it stays sealed in inbox.payload).';
