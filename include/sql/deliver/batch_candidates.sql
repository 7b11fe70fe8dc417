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
ORDER BY g.error_count DESC NULLS LAST, s.amount DESC NULLS LAST, d.entity_id, d.user_id;
