-- The unsubscribe service's health check: the billing database answers and has our schema.
SELECT to_regclass('digest.unsubscribes') IS NOT NULL AS ready;
