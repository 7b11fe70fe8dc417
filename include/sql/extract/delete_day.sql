-- Forget what a previous run staged for this digest day (re-runs restage from scratch).
DELETE FROM digest.errors WHERE digest_date = %(digest_date)s;
