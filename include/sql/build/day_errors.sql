-- The staged errors of one digest day, as read by the transform.
SELECT invoice_id, step, kind, status, entity_id, entity_name, entity_cnpj, customer_name,
       invoice_number, amount, billing_date, billing_type, invoice_path, error_code,
       error_message, attempts, last_attempt_at
FROM digest.errors
WHERE digest_date = %(digest_date)s;
