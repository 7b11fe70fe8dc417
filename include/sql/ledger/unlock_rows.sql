SELECT count(*) FILTER (WHERE pg_advisory_unlock(727274, (id %% 2147483647)::int))
FROM unnest(%(ids)s::bigint[]) AS id;
