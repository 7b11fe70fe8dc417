-- The day's latest run summary (the demo and the data team read it without Airflow).
INSERT INTO digest.day_reports (digest_date, run_id, summary, updated_at)
VALUES (%(digest_date)s, %(run_id)s, %(summary)s::jsonb, now())
ON CONFLICT (digest_date) DO UPDATE
SET run_id = EXCLUDED.run_id, summary = EXCLUDED.summary, updated_at = now();
