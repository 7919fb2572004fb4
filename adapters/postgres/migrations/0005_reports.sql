-- The victim-group dimensions of the coordinators' figures (the same the
-- node's read model, package reports, keeps) and the anonymous feedback
-- answers. Codes only; nothing identifies a victim.

ALTER TABLE {{schema}}.referrals
    ADD COLUMN gender       text,
    ADD COLUMN flags        text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN languages    text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN channels     text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN cross_border boolean NOT NULL DEFAULT false;

-- One row per answer of a referral.feedback event.
CREATE TABLE {{schema}}.feedback_answers (
    event_id    text        NOT NULL,
    referral_id text        NOT NULL,
    placement   text        NOT NULL DEFAULT '',
    question    text        NOT NULL,
    value       smallint    NOT NULL CHECK (value BETWEEN 1 AND 5),
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, question)
);

CREATE INDEX feedback_answers_referral ON {{schema}}.feedback_answers (referral_id);

-- What the victim missed, as codes of events.FeedbackMissing.
CREATE TABLE {{schema}}.feedback_missing (
    event_id    text        NOT NULL,
    referral_id text        NOT NULL,
    code        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, code)
);

CREATE INDEX feedback_missing_referral ON {{schema}}.feedback_missing (referral_id);

-- Feedback answers by question and value, and what was missing by code,
-- counting referrals.
CREATE VIEW {{schema}}.feedback_by_answer AS
SELECT question, value::text AS answer, count(DISTINCT referral_id) AS referrals
FROM {{schema}}.feedback_answers
GROUP BY question, value
UNION ALL
SELECT 'missing', code, count(DISTINCT referral_id)
FROM {{schema}}.feedback_missing
GROUP BY code;
