-- The run summaries of a period (one row per reported day): errors per topic and the ledger's
-- counts by state and reason, as summarize saved them. Read by the history page.
SELECT digest_date, summary
FROM digest.day_reports
WHERE digest_date BETWEEN %(start)s AND %(end)s
ORDER BY digest_date;
