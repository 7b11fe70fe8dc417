-- Session-local staging tables for one build of a day's digests (dropped at commit).
CREATE TEMP TABLE _entity_digests (
    entity_id bigint PRIMARY KEY, error_count integer NOT NULL, payload jsonb NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE _deliveries (
    entity_id bigint, user_id bigint, recipient_name text, email text, batch integer,
    skip_reason text, PRIMARY KEY (entity_id, user_id)
) ON COMMIT DROP;
