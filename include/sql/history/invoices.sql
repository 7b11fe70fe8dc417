-- Invoices billed in each day's window [D 06:30, D+1 06:30) local (with a contract, as the volume guard
-- counts them: include/sql/volume/invoices_by_day.sql), for every day of [start, end]: the volume
-- guard's baseline on the history page is a rate per invoice billed. One range count per day.
SELECT d::date AS digest_date,
       (SELECT count(*) FROM billing.invoices i
        WHERE i.billed_at >= (d::date + %(send_time)s::time) AT TIME ZONE %(tz)s
          AND i.billed_at < (d::date + 1 + %(send_time)s::time) AT TIME ZONE %(tz)s
          AND i.contract_id IS NOT NULL) AS invoices
FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d;
