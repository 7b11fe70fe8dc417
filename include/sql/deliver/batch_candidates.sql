-- Rows of one batch that may be sent now, worst first (when not everything can go out at once, the
-- most errors, then the largest amount at stake, are read first), the recipients of an entity together.
WITH stakes AS (
    SELECT entity_id, sum(amount) AS amount
    FROM (SELECT DISTINCT entity_id, invoice_id, amount FROM digest.errors WHERE digest_date = %(digest_date)s) e
    GROUP BY entity_id
)
SELECT d.id, d.entity_id
FROM digest.deliveries d
LEFT JOIN digest.entity_digests g ON g.digest_date = d.digest_date AND g.entity_id = d.entity_id
LEFT JOIN stakes s ON s.entity_id = d.entity_id
WHERE d.digest_date = %(digest_date)s
  AND d.batch = %(batch)s
  AND d.state = ANY(%(states)s)
  AND (%(entity_ids)s::bigint[] IS NULL OR d.entity_id = ANY(%(entity_ids)s::bigint[]))
  -- A batch carried over from an earlier day: only what the daily quota left, and (its task's retry) what this
  -- run itself deferred there; the day's other deferred rows are its own run's retry's business.
  AND (%(only_reason)s::text IS NULL OR d.reason = %(only_reason)s OR d.last_run_id = %(run_id)s)
ORDER BY g.error_count DESC NULLS LAST, s.amount DESC NULLS LAST, d.entity_id, d.user_id;
