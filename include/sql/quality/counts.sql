-- Counts the data-quality checks look at: staged errors, those without an entity to route
-- them to, and those without a usable invoice link (a fallback link is then used).
SELECT count(*),
       count(*) FILTER (WHERE entity_id IS NULL),
       count(*) FILTER (WHERE invoice_path IS NULL OR invoice_path NOT LIKE '/%%')
FROM digest.errors
WHERE digest_date = %(digest_date)s;
