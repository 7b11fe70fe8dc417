-- Failed or rejected attempts in the window [window_start, window_end) whose step did not
-- succeed later before the window closed: one row per (invoice, step) with the latest
-- message and the number of failed attempts. Only rows time-stamped before window_end are
-- read, so a backfill yields the same result as the timely run.
-- Any status other than success/pending is staged: unknown codes are reported, not dropped.
INSERT INTO digest.errors (
    digest_date, invoice_id, step, kind, status, entity_id, entity_name, entity_cnpj,
    customer_name, invoice_number, amount, billing_date, billing_type, invoice_path,
    error_code, error_message, attempts, last_attempt_at)
WITH failures AS (
    -- Duplicated attempt rows (same step and time) count once.
    SELECT a.invoice_id, a.step,
           count(DISTINCT a.attempted_at) AS attempts,
           max(a.attempted_at) AS attempted_at,
           (array_agg(a.status ORDER BY a.attempted_at DESC, a.id DESC))[1] AS status,
           (array_agg(a.error_code ORDER BY a.attempted_at DESC, a.id DESC))[1] AS error_code,
           (array_agg(a.error_message ORDER BY a.attempted_at DESC, a.id DESC))[1] AS error_message
    FROM billing.step_attempts a
    WHERE a.status <> 'success'
      AND a.status <> 'pending'
      AND a.attempted_at >= %(window_start)s
      AND a.attempted_at < %(window_end)s
    GROUP BY a.invoice_id, a.step
)
SELECT %(digest_date)s, f.invoice_id, f.step, 'failed', f.status, i.entity_id, e.name, e.cnpj,
       c.name, i.number, i.amount, i.billing_date, i.billing_type, i.path,
       f.error_code, f.error_message, f.attempts, f.attempted_at
FROM failures f
LEFT JOIN billing.invoices i ON i.id = f.invoice_id
LEFT JOIN billing.entities e ON e.id = i.entity_id
LEFT JOIN billing.customers c ON c.id = i.customer_id
WHERE NOT EXISTS (
      SELECT 1 FROM billing.step_attempts s
      WHERE s.invoice_id = f.invoice_id
        AND s.step = f.step
        AND s.status = 'success'
        AND s.attempted_at > f.attempted_at
        AND s.attempted_at < %(window_end)s)
ON CONFLICT (digest_date, invoice_id, step) DO NOTHING;
