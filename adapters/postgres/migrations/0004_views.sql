-- Coordinator views over the projection. Offers are the unit of flow: one
-- referral placement offered by the routing service to one organisation.
-- Acceptance rates count answered offers (accepted, declined or expired);
-- open offers and offers cancelled by a withdrawal are left out.

CREATE VIEW {{schema}}.flows_between_countries AS
SELECT referrer_country                                  AS from_country,
       organisation_country                              AS to_country,
       iso_week,
       count(DISTINCT referral_id)                       AS referrals,
       count(*)                                          AS offers,
       count(*) FILTER (WHERE status = 'accepted')       AS accepted,
       count(*) FILTER (WHERE status = 'declined')       AS declined,
       count(*) FILTER (WHERE status = 'expired')        AS expired
FROM {{schema}}.offers
GROUP BY referrer_country, organisation_country, iso_week;

CREATE VIEW {{schema}}.flows_between_organisations AS
SELECT referrer                                          AS from_organisation,
       referrer_country                                  AS from_country,
       organisation                                      AS to_organisation,
       organisation_country                              AS to_country,
       iso_week,
       count(DISTINCT referral_id)                       AS referrals,
       count(*)                                          AS offers,
       count(*) FILTER (WHERE status = 'accepted')       AS accepted,
       count(*) FILTER (WHERE status = 'declined')       AS declined,
       count(*) FILTER (WHERE status = 'expired')        AS expired
FROM {{schema}}.offers
GROUP BY referrer, referrer_country, organisation, organisation_country, iso_week;

CREATE VIEW {{schema}}.acceptance_by_organisation AS
SELECT organisation,
       organisation_country                                               AS country,
       count(*)                                                           AS offers,
       count(*) FILTER (WHERE status IN ('accepted', 'declined', 'expired')) AS answered,
       count(*) FILTER (WHERE status = 'accepted')                        AS accepted,
       count(*) FILTER (WHERE status = 'declined')                        AS declined,
       count(*) FILTER (WHERE status = 'expired')                         AS expired,
       round(count(*) FILTER (WHERE status = 'accepted')::numeric
             / nullif(count(*) FILTER (WHERE status IN ('accepted', 'declined', 'expired')), 0), 4)
                                                                          AS acceptance_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - offered_at))
           FILTER (WHERE status = 'accepted')                             AS median_seconds_to_accept
FROM {{schema}}.offers
GROUP BY organisation, organisation_country;

CREATE VIEW {{schema}}.acceptance_by_organisation_week AS
SELECT organisation,
       organisation_country                                               AS country,
       iso_week,
       count(*)                                                           AS offers,
       count(*) FILTER (WHERE status IN ('accepted', 'declined', 'expired')) AS answered,
       count(*) FILTER (WHERE status = 'accepted')                        AS accepted,
       round(count(*) FILTER (WHERE status = 'accepted')::numeric
             / nullif(count(*) FILTER (WHERE status IN ('accepted', 'declined', 'expired')), 0), 4)
                                                                          AS acceptance_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - offered_at))
           FILTER (WHERE status = 'accepted')                             AS median_seconds_to_accept
FROM {{schema}}.offers
GROUP BY organisation, organisation_country, iso_week;

-- Offers whose deadline passed without an answer (expired), and open
-- offers already past their deadline (overdue: the deadline has not fired
-- yet).
CREATE VIEW {{schema}}.deadlines_missed AS
SELECT organisation,
       organisation_country                                               AS country,
       iso_week,
       count(*)                                                           AS offers,
       count(*) FILTER (WHERE status = 'expired')                         AS missed,
       count(*) FILTER (WHERE status = 'open' AND deadline < now())       AS overdue,
       round(count(*) FILTER (WHERE status = 'expired')::numeric / count(*), 4) AS missed_rate
FROM {{schema}}.offers
GROUP BY organisation, organisation_country, iso_week;

-- The gaps: needs for which no service was found or left, by where the
-- victim was.
CREATE VIEW {{schema}}.unmatched_needs_by_region AS
SELECT country,
       region,
       need,
       reason,
       iso_week,
       count(*)                    AS unmatched,
       count(DISTINCT referral_id) AS referrals
FROM {{schema}}.unmatched_needs
GROUP BY country, region, need, reason, iso_week;
