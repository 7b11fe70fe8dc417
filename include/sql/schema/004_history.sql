-- Days a guard held (issue 17): a held run leaves no day report, so the history page and the
-- preview would only see "no digest". One row per held day, the latest hold (a day held twice
-- keeps the last reasons; a day held, fixed and sent keeps its hold and gains a day report).
-- Counts and reasons only, no addresses. Idempotent.
CREATE TABLE IF NOT EXISTS digest.day_holds (
    digest_date  date        PRIMARY KEY,
    guard        text        NOT NULL,               -- 'quality' (coverage, volume, systemic checks)
    problems     jsonb       NOT NULL,               -- the guards' messages, one per problem
    held_at      timestamptz NOT NULL DEFAULT now()
);
-- digest.unsubscribes' retention deletes by time (billing_digest.retention).
CREATE INDEX IF NOT EXISTS unsubscribes_at_idx ON digest.unsubscribes (at);
