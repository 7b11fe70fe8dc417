-- The day's digests with their ledger counts by state (the preview's table).
SELECT d.entity_id, d.payload -> 'entity' ->> 'name' AS name, d.error_count, d.updated_at,
       count(l.user_id) AS recipients,
       count(*) FILTER (WHERE l.state = 'sent') AS sent,
       count(*) FILTER (WHERE l.state = 'failed') AS failed,
       count(*) FILTER (WHERE l.state = 'deferred') AS deferred,
       count(*) FILTER (WHERE l.state = 'pending') AS pending,
       count(*) FILTER (WHERE l.state = 'skipped') AS skipped
FROM digest.entity_digests d
LEFT JOIN digest.deliveries l ON l.digest_date = d.digest_date AND l.entity_id = d.entity_id
WHERE d.digest_date = %(digest_date)s
GROUP BY d.entity_id, d.payload, d.error_count, d.updated_at
ORDER BY lower(d.payload -> 'entity' ->> 'name'), d.entity_id;
