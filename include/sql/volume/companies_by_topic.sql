-- Per day of %(days)s (the day and its trailing reported days, as volume/errors_by_step.sql found
-- them) and topic: how many companies have staged errors in it. Steps map to topics through the two
-- parallel arrays %(steps)s / %(topics)s (billing_digest.topics).
-- A topic's jump that stays in one or two companies (a company's own setup) is their digest's
-- business; an outage (a bank down) is wide: the volume guard wants both.
SELECT e.digest_date, m.topic, count(DISTINCT e.entity_id) AS companies
FROM digest.errors e
JOIN unnest(%(steps)s::text[], %(topics)s::text[]) AS m (step, topic) ON m.step = e.step
WHERE e.digest_date = ANY (%(days)s::date[]) AND e.entity_id IS NOT NULL
GROUP BY e.digest_date, m.topic;
