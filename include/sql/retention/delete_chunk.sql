-- One bounded chunk of a table's rows older than its cutoff, oldest first, in its own short
-- transaction. {table} and {column} are identifiers from billing_digest.retention.TABLES (composed
-- with psycopg.sql, never from input); the cutoff and the chunk size are bound. The oldest rows are
-- found through the index whose first column is {column} (every digest table's primary key), and
-- rows another transaction holds are skipped (the next run deletes them): no long lock, no wait.
WITH doomed AS (
    SELECT ctid FROM {table}
    WHERE {column} < %(cutoff)s
    ORDER BY {column}
    LIMIT %(chunk_rows)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {table} t USING doomed d
WHERE t.ctid = d.ctid;
