"""Retention (issue 17): each table keeps its days, in bounded chunks, and never the volume guard's
baseline; pure cutoffs, then the SQL against a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from psycopg import sql as pgsql

from billing_digest import retention
from billing_digest.settings import Settings

DAY = dt.date(2026, 11, 27)


def test_cutoff_counts_back_from_the_run_day_and_0_keeps_for_ever():
    assert retention.cutoff(DAY, 90, None) == DAY - dt.timedelta(days=90)
    assert retention.cutoff(DAY, 0, None) is None


def test_cutoff_never_passes_the_volume_guards_baseline():
    baseline = DAY - dt.timedelta(days=20)  # 14 reported days, some held days between them
    assert retention.cutoff(DAY, 7, baseline) == baseline
    assert retention.cutoff(DAY, 90, baseline) == DAY - dt.timedelta(days=90)


def test_the_baseline_protects_only_the_tables_the_guard_reads():
    settings = Settings(retention_errors_days=3, retention_entity_digests_days=3, retention_day_reports_days=3)
    baseline = DAY - dt.timedelta(days=14)
    cuts = {t.table: first for t, first in retention.plan(DAY, settings, baseline)}
    assert cuts["digest.errors"] == cuts["digest.day_reports"] == baseline
    assert cuts["digest.entity_digests"] == DAY - dt.timedelta(days=3)


def test_the_defaults_match_the_documented_ones():
    s = Settings()
    assert (s.retention_errors_days, s.retention_entity_digests_days, s.retention_deliveries_days) == (90, 90, 400)
    assert s.retention_day_reports_days >= 400
    assert {t.setting for t in retention.TABLES} <= set(Settings.model_fields)


def test_negative_days_are_refused():
    with pytest.raises(ValueError):
        retention.plan(DAY, Settings(retention_errors_days=-1), None)


def seed_history(conn, days: int, per_day: int = 3) -> None:
    """``days`` days before DAY (and DAY) of rows in every table; every day reported."""
    conn.execute("""
        INSERT INTO digest.errors (digest_date, invoice_id, step, kind)
        SELECT %(day)s::date - d, d * 1000 + i, 'nfse', 'failed'
        FROM generate_series(0, %(days)s) d, generate_series(1, %(n)s) i""", {"day": DAY, "days": days, "n": per_day})
    conn.execute("""
        INSERT INTO digest.entity_digests (digest_date, entity_id, error_count, payload)
        SELECT %(day)s::date - d, i, 1, '{}' FROM generate_series(0, %(days)s) d, generate_series(1, %(n)s) i""",
                 {"day": DAY, "days": days, "n": per_day})
    conn.execute("""
        INSERT INTO digest.deliveries (digest_date, entity_id, user_id, batch, state)
        SELECT %(day)s::date - d, i, i, 0, 'sent' FROM generate_series(0, %(days)s) d, generate_series(1, %(n)s) i""",
                 {"day": DAY, "days": days, "n": per_day})
    conn.execute("""
        INSERT INTO digest.day_reports (digest_date, run_id, summary)
        SELECT %(day)s::date - d, 'r', '{}' FROM generate_series(0, %(days)s) d""", {"day": DAY, "days": days})


def oldest(conn, table: str) -> dt.date:
    schema, name = table.split(".")
    query = pgsql.SQL("SELECT min(digest_date) FROM {}").format(pgsql.Identifier(schema, name))
    return conn.execute(query).fetchone()[0]


def test_each_table_keeps_its_days_deleting_in_bounded_chunks(conn):
    seed_history(conn, 500)
    conn.execute("INSERT INTO digest.unsubscribes (user_id, kind, source, at) VALUES "
                 "(1, 'billing_errors', 'page', now() - interval '6 years'), (2, 'billing_errors', 'page', now())")
    settings = Settings(retention_chunk_rows=50)
    cuts = {c.table: c for c in retention.apply(conn, DAY, settings)}
    assert oldest(conn, "digest.errors") == oldest(conn, "digest.entity_digests") == DAY - dt.timedelta(days=90)
    assert oldest(conn, "digest.deliveries") == DAY - dt.timedelta(days=400)
    assert oldest(conn, "digest.day_reports") == DAY - dt.timedelta(days=500)  # 1,100 days: nothing to cut yet
    assert cuts["digest.errors"].deleted == 3 * 410 and cuts["digest.errors"].chunks == 25  # 1,230 rows by 50
    assert cuts["digest.deliveries"].deleted == 3 * 100
    assert [u for (u,) in conn.execute("SELECT user_id FROM digest.unsubscribes")] == [2]
    again = retention.apply(conn, DAY, settings)  # idempotent: nothing left to delete
    assert sum(c.deleted for c in again) == 0


def test_retention_never_cuts_the_volume_guards_trailing_reported_days(conn):
    seed_history(conn, 60)
    # Held days leave no report: only every third day of the last 60 was reported.
    conn.execute("DELETE FROM digest.day_reports WHERE (%s::date - digest_date) %% 3 <> 0", (DAY,))
    settings = Settings(retention_errors_days=5, retention_day_reports_days=5, retention_entity_digests_days=5,
                        anomaly_trailing_days=14)
    retention.apply(conn, DAY, settings)
    fourteenth = DAY - dt.timedelta(days=42)  # the 14th reported day before DAY
    assert oldest(conn, "digest.errors") == oldest(conn, "digest.day_reports") == fourteenth
    reported = conn.execute("SELECT count(*) FROM digest.day_reports WHERE digest_date < %s", (DAY,)).fetchone()[0]
    assert reported == 14
    assert oldest(conn, "digest.entity_digests") == DAY - dt.timedelta(days=5)


def test_a_table_added_later_joins_with_one_line(conn):
    conn.execute("CREATE TABLE digest.pace (digest_date date NOT NULL, n int, PRIMARY KEY (digest_date))")
    conn.execute("INSERT INTO digest.pace SELECT %s::date - d, d FROM generate_series(0, 30) d", (DAY,))
    extra = retention.Retained("digest.pace", "digest_date", "retention_errors_days")
    retention.apply(conn, DAY, Settings(retention_errors_days=10), tables=(extra,))
    assert oldest(conn, "digest.pace") == DAY - dt.timedelta(days=10)


def test_the_held_day_record_keeps_why(conn):
    from billing_digest import holds

    holds.record(conn, DAY, ["volume anomaly: 80 errors", "coverage: too few attempts"])
    hold = holds.of_day(conn, DAY)
    assert hold is not None and hold.problems == ("volume anomaly: 80 errors", "coverage: too few attempts")
    assert json.dumps(hold.problems)
    assert holds.of_day(conn, DAY - dt.timedelta(days=1)) is None
