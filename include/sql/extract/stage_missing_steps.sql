-- Expected steps that did not happen on their day: an invoice billed in the window whose
-- contract requires the step, with no success before window_end and no failure in the
-- window (failures are staged by stage_failed_steps.sql). A step only 'pending' counts
-- as missing. Invoices without a contract have no known requirements and are skipped.
--
-- Cost grows with the day, never with the history: every table is reached through an index
-- with the day's keys, in key order (`= ANY (ARRAY(...))` is one ordered index pass, not one
-- probe per key), and nothing is hashed but the day's rows:
--   day             the invoices billed in the window          invoices_billed_at_idx
--   done            per invoice, the steps that happened       step_attempts_invoice_step_idx (index only)
--   candidates      invoices where one of the 3 steps did not happen (mostly: not required)
--   contract_steps  those invoices' contracts' requirements     contracts_steps_idx (index only)
-- and only the few missing (invoice, step) rows read the invoice, entity and customer.
INSERT INTO digest.errors (
    digest_date, invoice_id, step, kind, status, entity_id, entity_name, entity_cnpj,
    customer_name, invoice_number, amount, billing_date, billing_type, invoice_path,
    error_code, error_message, attempts, last_attempt_at)
WITH day AS MATERIALIZED (
    SELECT i.id, i.contract_id
    FROM billing.invoices i
    WHERE i.billed_at >= %(window_start)s
      AND i.billed_at < %(window_end)s
      AND i.contract_id IS NOT NULL
), done AS MATERIALIZED (
    -- Steps that happened (succeeded before window_end, or were attempted, not just pending,
    -- in the window) as a bit mask per invoice: 1 nfse, 2 boleto, 4 charge_email.
    SELECT s.invoice_id,
           bit_or(CASE s.step WHEN 'nfse' THEN 1 WHEN 'boleto' THEN 2 ELSE 4 END) AS mask
    FROM billing.step_attempts s
    WHERE s.invoice_id = ANY (ARRAY(SELECT d.id FROM day d))
      AND s.step IN ('nfse', 'boleto', 'charge_email')
      AND s.attempted_at < %(window_end)s
      AND (s.status = 'success' OR (s.status <> 'pending' AND s.attempted_at >= %(window_start)s))
    GROUP BY s.invoice_id
), candidates AS MATERIALIZED (
    SELECT d.id, d.contract_id, coalesce(x.mask, 0) AS mask
    FROM day d
    LEFT JOIN done x ON x.invoice_id = d.id
    WHERE x.invoice_id IS NULL OR x.mask <> 7
), contract_steps AS MATERIALIZED (
    SELECT k.id, k.requires_nfse, k.requires_boleto, k.requires_notification
    FROM billing.contracts k
    WHERE k.id = ANY (ARRAY(SELECT c.contract_id FROM candidates c))
), missing AS MATERIALIZED (
    -- The OR (the VALUES' test) drops the many complete invoices in the join, before the VALUES.
    SELECT c.id AS invoice_id, req.step
    FROM candidates c
    JOIN contract_steps k ON k.id = c.contract_id
    CROSS JOIN LATERAL (VALUES ('nfse', k.requires_nfse AND c.mask & 1 = 0),
                               ('boleto', k.requires_boleto AND c.mask & 2 = 0),
                               ('charge_email', k.requires_notification AND c.mask & 4 = 0))
        AS req (step, is_missing)
    WHERE req.is_missing
      AND ((k.requires_nfse AND c.mask & 1 = 0) OR (k.requires_boleto AND c.mask & 2 = 0)
           OR (k.requires_notification AND c.mask & 4 = 0))
)
SELECT %(digest_date)s, i.id, m.step, 'missing', NULL, i.entity_id, e.name, e.cnpj,
       c.name, i.number, i.amount, i.billing_date, i.billing_type, i.path,
       NULL, NULL, 0, NULL
FROM missing m
JOIN billing.invoices i ON i.id = m.invoice_id
LEFT JOIN billing.entities e ON e.id = i.entity_id
LEFT JOIN billing.customers c ON c.id = i.customer_id
ON CONFLICT (digest_date, invoice_id, step) DO NOTHING;
