-- The hard constraints that excluded every service of an unmatched need
-- (reason "excluded"), as the plan counted them: the gaps page's
-- breakdown, the same the node's read model keeps. Codes only.

CREATE TABLE {{schema}}.unmatched_constraints (
    referral_id text        NOT NULL,
    need        text        NOT NULL,
    excluded_by text        NOT NULL,
    services    integer     NOT NULL CHECK (services > 0),
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (referral_id, need, excluded_by)
);

-- Unmatched needs by the constraint that excluded services, counting
-- referrals.
CREATE VIEW {{schema}}.gaps_by_constraint AS
SELECT need, excluded_by, count(DISTINCT referral_id) AS referrals
FROM {{schema}}.unmatched_constraints
GROUP BY need, excluded_by;
