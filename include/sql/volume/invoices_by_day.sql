-- Invoices (and the companies that billed them) in each day's window [D 06:30, D+1 06:30) local (with a contract, as the coverage
-- guard counts them), for each of %(days)s (the day and its trailing reported days, as
-- volume/errors_by_step.sql found them): the denominator of the error rates the volume guard compares
-- (a billing wave bills 5x the invoices and so has 5x the errors).
-- One range count per day on the invoices' billed_at index.
SELECT d.digest_date, b.invoices, b.companies
FROM unnest(%(days)s::date[]) AS d (digest_date)
CROSS JOIN LATERAL (
    SELECT count(*) AS invoices, count(DISTINCT i.entity_id) AS companies
    FROM billing.invoices i
    WHERE i.billed_at >= (d.digest_date + %(send_time)s::time) AT TIME ZONE %(tz)s
      AND i.billed_at < (d.digest_date + 1 + %(send_time)s::time) AT TIME ZONE %(tz)s
      AND i.contract_id IS NOT NULL
) b;
