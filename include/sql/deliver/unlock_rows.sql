SELECT count(*) FILTER (WHERE pg_advisory_unlock(%(lock_key)s::int, (id %% 2147483647)::int))
FROM unnest(%(ids)s::bigint[]) AS id;
