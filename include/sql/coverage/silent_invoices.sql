-- The window's invoices (with a contract, so with known required steps), and how many of them
-- have no recorded step at all: every required step was staged 'missing' by extract. On a day the
-- attempt history covers, that is a few invoices; where attempts were purged or not loaded, it
-- is nearly all of them. Reads the staged day and the window's invoice index only.
WITH silent AS (
    SELECT e.invoice_id, count(*) AS missing_steps
    FROM digest.errors e
    WHERE e.digest_date = %(digest_date)s
    GROUP BY e.invoice_id
    HAVING bool_and(e.kind = 'missing')
)
SELECT (SELECT count(*) FROM billing.invoices i
        WHERE i.billed_at >= %(window_start)s AND i.billed_at < %(window_end)s
          AND i.contract_id IS NOT NULL) AS window_invoices,
       (SELECT count(*) FROM silent s
        JOIN billing.invoices i ON i.id = s.invoice_id
        JOIN billing.contracts k ON k.id = i.contract_id
        WHERE s.missing_steps = k.requires_nfse::int + k.requires_boleto::int
                                + k.requires_notification::int) AS silent_invoices;
