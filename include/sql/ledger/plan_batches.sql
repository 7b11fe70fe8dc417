-- Batches with digests to send, with the first and last company name (labels in the UI).
SELECT d.batch, count(*),
       min(e.payload -> 'entity' ->> 'name'), max(e.payload -> 'entity' ->> 'name')
FROM digest.deliveries d
JOIN digest.entity_digests e USING (digest_date, entity_id)
WHERE d.digest_date = %(digest_date)s
  AND d.state = ANY(%(states)s)
  AND (%(entity_ids)s::bigint[] IS NULL OR d.entity_id = ANY(%(entity_ids)s::bigint[]))
GROUP BY d.batch
ORDER BY d.batch;
