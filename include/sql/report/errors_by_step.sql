-- The day's staged errors per step (the demo and reports map steps to topics).
SELECT step, count(*) FROM digest.errors WHERE digest_date = %(digest_date)s GROUP BY step;
