-- Expected steps that did not happen on their day: an invoice billed in the window whose
-- contract requires the step, with no success before window_end and no failure in the
-- window (failures are staged by stage_failed_steps.sql). A step only 'pending' counts
-- as missing. Invoices without a contract have no known requirements and are skipped.
INSERT INTO digest.errors (
    digest_date, invoice_id, step, kind, status, entity_id, entity_name, entity_cnpj,
    customer_name, invoice_number, amount, billing_date, billing_type, invoice_path,
    error_code, error_message, attempts, last_attempt_at)
SELECT %(digest_date)s, i.id, req.step, 'missing', NULL, i.entity_id, e.name, e.cnpj,
       c.name, i.number, i.amount, i.billing_date, i.billing_type, i.path,
       NULL, NULL, 0, NULL
FROM billing.invoices i
JOIN billing.contracts k ON k.id = i.contract_id
CROSS JOIN LATERAL (VALUES ('nfse', k.requires_nfse),
                           ('boleto', k.requires_boleto),
                           ('charge_email', k.requires_notification)) AS req (step, required)
LEFT JOIN billing.entities e ON e.id = i.entity_id
LEFT JOIN billing.customers c ON c.id = i.customer_id
WHERE i.billed_at >= %(window_start)s
  AND i.billed_at < %(window_end)s
  AND req.required
  AND NOT EXISTS (
      SELECT 1 FROM billing.step_attempts s
      WHERE s.invoice_id = i.id
        AND s.step = req.step
        AND s.attempted_at < %(window_end)s
        AND (s.status = 'success'
             OR (s.status <> 'pending' AND s.attempted_at >= %(window_start)s)))
ON CONFLICT (digest_date, invoice_id, step) DO NOTHING;
