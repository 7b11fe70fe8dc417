-- Days that have digests (the preview's day picker).
SELECT digest_date, count(*) AS digests, sum(error_count) AS errors
FROM digest.entity_digests
GROUP BY digest_date ORDER BY digest_date DESC LIMIT 90;
