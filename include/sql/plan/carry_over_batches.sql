-- The batches of earlier digest days (since %(since)s, before %(digest_date)s) with digests the provider's
-- daily quota left deferred (reason %(reason)s): the latest run carries them over, oldest day first. Only
-- those rows (other deferred rows are their own run's retry's business), and only when no later digest day
-- has been built: a re-run or a backfill of an old day carries nothing (the latest day's run does).
-- The first and last company in sending order label the mapped deliver tasks, as plan/batches.sql.
SELECT d.digest_date, d.batch, count(*),
       (array_agg(e.payload -> 'entity' ->> 'name' ORDER BY d.entity_id))[1],
       (array_agg(e.payload -> 'entity' ->> 'name' ORDER BY d.entity_id DESC))[1]
FROM digest.deliveries d
JOIN digest.entity_digests e USING (digest_date, entity_id)
WHERE d.digest_date >= %(since)s
  AND d.digest_date < %(digest_date)s
  AND d.state = %(state)s
  AND d.reason = %(reason)s
  AND NOT EXISTS (SELECT 1 FROM digest.deliveries later WHERE later.digest_date > %(digest_date)s)
GROUP BY d.digest_date, d.batch
ORDER BY d.digest_date, d.batch;
