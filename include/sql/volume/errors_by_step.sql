-- Staged errors per step, for the day and for its trailing days that were reported (a run of
-- theirs completed: digest.day_reports), newest first. Held days are not a baseline.
WITH days AS (
    SELECT r.digest_date FROM digest.day_reports r
    WHERE r.digest_date < %(digest_date)s
    ORDER BY r.digest_date DESC
    LIMIT %(trailing_days)s
)
SELECT e.digest_date, e.step, count(*) AS errors
FROM digest.errors e
WHERE e.digest_date = %(digest_date)s OR e.digest_date IN (SELECT digest_date FROM days)
GROUP BY e.digest_date, e.step
UNION ALL  -- a reported day without errors still counts (as zeros)
SELECT d.digest_date, NULL, 0 FROM days d
ORDER BY 1 DESC;
