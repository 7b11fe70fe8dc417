-- Digests of days before %(digest_date)s still deferred by the provider's daily quota (reason %(reason)s), per
-- day: the run's note says which the next run carries over and which are past the carry-over.
SELECT digest_date, count(*)
FROM digest.deliveries
WHERE digest_date < %(digest_date)s
  AND state = %(state)s
  AND reason = %(reason)s
GROUP BY digest_date
ORDER BY digest_date;
