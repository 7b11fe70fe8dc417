-- The oldest day the volume guard reads for a run of %(digest_date)s or any later day: the oldest of
-- its trailing reported days (digest.day_reports), NULL when none. Retention keeps it and after.
SELECT min(digest_date) FROM (
    SELECT digest_date FROM digest.day_reports
    WHERE digest_date < %(digest_date)s
    ORDER BY digest_date DESC
    LIMIT %(trailing_days)s
) AS baseline;
