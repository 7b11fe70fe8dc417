-- Session advisory locks on ledger rows: a concurrent run of the same day skips rows this
-- session holds, and a killed worker's locks vanish with its connection. Returns the ids
-- this session now holds, in the order given.
SELECT id FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, n)
WHERE pg_try_advisory_lock(%(lock_key)s::int, (id %% 2147483647)::int)
ORDER BY n;
