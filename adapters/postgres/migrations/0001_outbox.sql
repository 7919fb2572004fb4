-- The transactional outbox. The case system inserts referral commands in
-- the same transaction as its own change; the relay publishes them, in seq
-- order, to the organisation's INBOUND subject with Nats-Msg-Id = id.

-- uuid_v7 returns a UUID of version 7: 48 bits of Unix milliseconds, then
-- random bits, so that ids sort by creation time like the network's own.
CREATE FUNCTION {{schema}}.uuid_v7() RETURNS uuid
    LANGUAGE sql VOLATILE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE {{schema}}.outbox (
    seq          bigserial   NOT NULL UNIQUE,
    id           uuid        NOT NULL DEFAULT {{schema}}.uuid_v7() PRIMARY KEY,
    type         text        NOT NULL,
    referral_id  text,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    rejected_at  timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    CONSTRAINT outbox_published_or_rejected CHECK (published_at IS NULL OR rejected_at IS NULL)
);

COMMENT ON TABLE {{schema}}.outbox IS
    'INVICTUS outbox: referral commands for the network. Insert id (optional), type, referral_id, payload; the adapter sets the rest.';
COMMENT ON COLUMN {{schema}}.outbox.seq IS 'Publication order (ascending).';
COMMENT ON COLUMN {{schema}}.outbox.id IS 'CloudEvents id and Nats-Msg-Id of the command; a UUIDv7 by default.';
COMMENT ON COLUMN {{schema}}.outbox.type IS 'CloudEvents type, e.g. invictus.referral.accepted.v1.';
COMMENT ON COLUMN {{schema}}.outbox.referral_id IS 'CloudEvents subject: the referral id; for referral.requested it defaults to id.';
COMMENT ON COLUMN {{schema}}.outbox.payload IS 'The payload as JSON (the data of the event).';
COMMENT ON COLUMN {{schema}}.outbox.created_at IS 'CloudEvents time of the command.';
COMMENT ON COLUMN {{schema}}.outbox.published_at IS 'When JetStream acknowledged the command.';
COMMENT ON COLUMN {{schema}}.outbox.rejected_at IS 'When the command was set aside because the contract rejects it (see last_error).';
COMMENT ON COLUMN {{schema}}.outbox.attempts IS 'Publication attempts.';
COMMENT ON COLUMN {{schema}}.outbox.last_error IS 'Why the last attempt failed, or why the command was rejected.';

CREATE INDEX outbox_pending ON {{schema}}.outbox (seq)
    WHERE published_at IS NULL AND rejected_at IS NULL;

-- A new referral is identified by its command's id unless the case system
-- chose a referral id itself.
CREATE FUNCTION {{schema}}.outbox_defaults() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.referral_id IS NULL AND NEW.type = 'invictus.referral.requested.v1' THEN
        NEW.referral_id := NEW.id::text;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER outbox_defaults BEFORE INSERT ON {{schema}}.outbox
    FOR EACH ROW EXECUTE FUNCTION {{schema}}.outbox_defaults();

-- Wakes the relay (LISTEN "<schema>.outbox") once per inserting statement;
-- the notification is delivered when the transaction commits.
CREATE FUNCTION {{schema}}.outbox_notify() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON {{schema}}.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.outbox_notify();
