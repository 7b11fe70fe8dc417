-- Batches with digests to send, with the batch's first and last company in its sending order
-- (entity id) for the labels of the mapped deliver tasks in the UI.
SELECT d.batch, count(*),
       (array_agg(e.payload -> 'entity' ->> 'name' ORDER BY d.entity_id))[1],
       (array_agg(e.payload -> 'entity' ->> 'name' ORDER BY d.entity_id DESC))[1]
FROM digest.deliveries d
JOIN digest.entity_digests e USING (digest_date, entity_id)
WHERE d.digest_date = %(digest_date)s
  AND d.state = ANY(%(states)s)
  AND (%(entity_ids)s::bigint[] IS NULL OR d.entity_id = ANY(%(entity_ids)s::bigint[]))
GROUP BY d.batch
ORDER BY d.batch;
