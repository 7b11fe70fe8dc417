-- The held days of a period, with why (digest.day_holds). Read by the history page.
SELECT digest_date, guard, problems, held_at
FROM digest.day_holds
WHERE digest_date BETWEEN %(start)s AND %(end)s
ORDER BY digest_date;
