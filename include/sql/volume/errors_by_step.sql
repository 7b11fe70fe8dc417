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
-- One array of days, not "= day OR IN (days)": the OR made PostgreSQL scan the whole table, whose
-- history grows (issue 17: 0.67 s with a year of history); this reads the primary key's days only.
WHERE e.digest_date = ANY (ARRAY(SELECT digest_date FROM days) || %(digest_date)s::date)
GROUP BY e.digest_date, e.step
UNION ALL  -- a reported day without errors still counts (as zeros)
SELECT d.digest_date, NULL, 0 FROM days d
ORDER BY 1 DESC;
