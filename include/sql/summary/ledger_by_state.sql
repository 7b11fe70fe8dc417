-- Ledger outcome of one day, by state and reason.
SELECT state, coalesce(reason, '') AS reason, count(*) AS n
FROM digest.deliveries
WHERE digest_date = %(digest_date)s
GROUP BY state, coalesce(reason, '')
ORDER BY state, reason;
