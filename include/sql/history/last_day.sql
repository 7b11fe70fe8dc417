-- The newest day the history knows (reported or held): where the history page's period ends by default.
SELECT greatest((SELECT max(digest_date) FROM digest.day_reports), (SELECT max(digest_date) FROM digest.day_holds));
