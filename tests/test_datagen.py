"""Tests of the synthetic billing data generator (scale XS, a fraction of a second per load)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from billing_digest.window import window_for_date
from devtools import datagen, embedded_pg
from devtools.datagen import load as datagen_load

DIGEST_DATE = dt.date(2026, 11, 28)
TZ = "America/Sao_Paulo"
# Query parameters: the digest window of DIGEST_DATE, [ws, we).
_WINDOW = window_for_date(DIGEST_DATE, TZ)
WINDOW = {"ws": _WINDOW.start, "we": _WINDOW.end}
# The outage day at scale XS: one bank down for 10% of the entities (2 of 20).
OUTAGE_SCALE = dataclasses.replace(datagen.SCALES["XS"], outage_share=0.1)


@contextmanager
def scratch_database(pg_server: str, name: str) -> Iterator[str]:
    """A scratch database on the session's PostgreSQL (embedded, or BILLING_DIGEST_TEST_DSN's server)."""
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield embedded_pg.with_database(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def dsn(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, f"datagen_test_{os.getpid()}") as scratch:
        yield scratch


@pytest.fixture(scope="module")
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return datagen.generate(conn, scale="XS", digest_date=DIGEST_DATE, seed=42, tz=TZ)


def one(conn: psycopg.Connection[Any], query: Any) -> Any:
    row = conn.execute(query, WINDOW).fetchone()
    assert row is not None
    return row[0]


CHECKSUMS = {
    "entities": "id",
    "users": "id",
    "user_entity_access": "user_id, entity_id",
    "notification_preferences": "user_id, kind",
    "customers": "id",
    "invoices": "id",
    "step_attempts": "id",
}


def checksums(conn: psycopg.Connection[Any]) -> dict[str, str]:
    return {
        t: one(
            conn,
            sql.SQL("SELECT md5(string_agg(x::text, '|' ORDER BY {})) FROM {} x").format(
                sql.SQL(order), sql.Identifier("billing", t)
            ),
        )
        for t, order in CHECKSUMS.items()
    }


# Reported failures by definition: a failed/rejected attempt in the window with no later success there.
FAILED_SQL = """
WITH f AS (
    SELECT invoice_id, step, max(attempted_at) AS last_fail, count(DISTINCT attempted_at) AS n
    FROM billing.step_attempts
    WHERE status IN ('failed', 'rejected') AND attempted_at >= %(ws)s AND attempted_at < %(we)s
    GROUP BY invoice_id, step
)
SELECT f.* FROM f
WHERE NOT EXISTS (
    SELECT 1 FROM billing.step_attempts s
    WHERE s.invoice_id = f.invoice_id AND s.step = f.step AND s.status = 'success'
      AND s.attempted_at > f.last_fail AND s.attempted_at < %(we)s)
"""

MISSING_SQL = """
SELECT i.id, v.step
FROM billing.invoices i
JOIN billing.contracts c ON c.id = i.contract_id
CROSS JOIN LATERAL (VALUES ('nfse', c.requires_nfse), ('boleto', c.requires_boleto),
                           ('charge_email', c.requires_notification)) AS v (step, required)
WHERE i.billed_at >= %(ws)s AND i.billed_at < %(we)s AND v.required
  AND NOT EXISTS (SELECT 1 FROM billing.step_attempts s WHERE s.invoice_id = i.id AND s.step = v.step)
"""

# Failures in the window fixed by a later success there (noise the digest must not report).
RETRIED_SQL = """
WITH f AS (SELECT invoice_id, step, max(attempted_at) AS last_fail FROM billing.step_attempts
           WHERE status IN ('failed', 'rejected')
             AND attempted_at >= %(ws)s AND attempted_at < %(we)s
           GROUP BY invoice_id, step)
SELECT count(*) FROM f WHERE EXISTS (
    SELECT 1 FROM billing.step_attempts s WHERE s.invoice_id = f.invoice_id AND s.step = f.step
      AND s.status = 'success' AND s.attempted_at > f.last_fail AND s.attempted_at < %(we)s)"""

# Entities with an error (failed or missing step) in the window.
ERROR_ENTITIES_SQL = sql.SQL("""
SELECT DISTINCT i.entity_id FROM ({failed}) f JOIN billing.invoices i ON i.id = f.invoice_id
UNION SELECT i.entity_id FROM ({missing}) m JOIN billing.invoices i ON i.id = m.id""").format(
    failed=sql.SQL(FAILED_SQL), missing=sql.SQL(MISSING_SQL)
)

DELIVERIES_SQL = sql.SQL("""
WITH err AS ({error_entities})
SELECT count(*) FROM err
JOIN billing.entities e ON e.id = err.entity_id AND e.active AND e.deleted_at IS NULL
JOIN billing.user_entity_access a ON a.entity_id = e.id AND a.revoked_at IS NULL
JOIN billing.users u ON u.id = a.user_id AND u.active AND u.email IS NOT NULL
JOIN billing.notification_preferences p
  ON p.user_id = u.id AND p.kind = 'billing_errors' AND p.enabled""").format(error_entities=ERROR_ENTITIES_SQL)


def test_row_counts_match(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    for table in datagen.TABLES:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("billing", table))
        assert one(conn, query) == counts[table] > 0, table
    assert one(conn, "SELECT count(*) FROM billing.notification_kinds") == 4
    assert counts["day_invoices"] == datagen.SCALES["XS"].day_invoices


def test_schema_is_intact_after_load(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'billing'")}
    assert {
        "invoices_pkey",
        "invoices_billed_at_idx",
        "step_attempts_failures_idx",
        "step_attempts_invoice_step_idx",
        "user_entity_access_pkey",
    } <= indexes
    fks = one(
        conn,
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'billing'::regnamespace",
    )
    assert fks == 10
    # The identity sequence continues after the loaded ids.
    assert (
        one(conn, "SELECT nextval(pg_get_serial_sequence('billing.step_attempts', 'id'))")
        > counts["step_attempts"]
    )


def test_deterministic(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    first = checksums(conn)
    again = datagen.generate(conn, scale="XS", digest_date=DIGEST_DATE, seed=42, tz=TZ)
    assert checksums(conn) == first
    assert {k: v for k, v in again.items() if k != "elapsed_ms"} == {
        k: v for k, v in counts.items() if k != "elapsed_ms"
    }
    datagen.generate(conn, scale="XS", digest_date=DIGEST_DATE, seed=7, tz=TZ)
    other = checksums(conn)
    assert other["invoices"] != first["invoices"] and other["step_attempts"] != first["step_attempts"]
    datagen.generate(conn, scale="XS", digest_date=DIGEST_DATE, seed=42, tz=TZ)  # back to the shared data
    assert checksums(conn) == first


INTEGRITY = {
    "invoice without entity": "SELECT count(*) FROM billing.invoices i"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.entities e WHERE e.id = i.entity_id)",
    "invoice without contract": "SELECT count(*) FROM billing.invoices i WHERE i.contract_id IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM billing.contracts c WHERE c.id = i.contract_id)",
    "invoice without customer": "SELECT count(*) FROM billing.invoices i"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.customers c WHERE c.id = i.customer_id)",
    "attempt without invoice": "SELECT count(*) FROM billing.step_attempts s"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.invoices i WHERE i.id = s.invoice_id)",
    "contract without customer": "SELECT count(*) FROM billing.contracts c WHERE NOT EXISTS"
    " (SELECT 1 FROM billing.customers u WHERE u.id = c.customer_id AND u.entity_id = c.entity_id)",
    "access without user": "SELECT count(*) FROM billing.user_entity_access a"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.users u WHERE u.id = a.user_id)",
    "access without entity": "SELECT count(*) FROM billing.user_entity_access a"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.entities e WHERE e.id = a.entity_id)",
    "preference without user": "SELECT count(*) FROM billing.notification_preferences p"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.users u WHERE u.id = p.user_id)",
}


def test_referential_integrity(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    assert {name: one(conn, query) for name, query in INTEGRITY.items()} == dict.fromkeys(INTEGRITY, 0)


def test_load_without_superuser(
    conn: psycopg.Connection[Any], counts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the right to disable triggers, foreign keys are dropped and added back (validated)."""
    before = checksums(conn)
    monkeypatch.setattr(datagen_load, "can_disable_triggers", lambda conn: False)
    datagen.generate(conn, scale="XS", digest_date=DIGEST_DATE, seed=42, tz=TZ)
    assert checksums(conn) == before
    fks = conn.execute(
        "SELECT count(*), bool_and(convalidated) FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = 'billing'::regnamespace"
    ).fetchone()
    assert fks == (10, True)


def _valid_cnpj(doc: str) -> bool:
    if not re.fullmatch(r"\d{14}", doc) or len(set(doc)) == 1:
        return False
    d = [int(c) for c in doc]
    for n, weights in (
        (12, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]),
        (13, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]),
    ):
        r = sum(a * b for a, b in zip(d[:n], weights, strict=True)) % 11
        if d[n] != (0 if r < 2 else 11 - r):
            return False
    return True


def _valid_cpf(doc: str) -> bool:
    if not re.fullmatch(r"\d{11}", doc) or len(set(doc)) == 1:
        return False
    d = [int(c) for c in doc]
    for n in (9, 10):
        r = sum(a * b for a, b in zip(d[:n], range(n + 1, 1, -1), strict=True)) * 10 % 11
        if d[n] != r % 10:
            return False
    return True


def test_documents_have_valid_check_digits(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    assert _valid_cnpj("11222333000181") and not _valid_cnpj("11222333000182")
    assert _valid_cpf("52998224725") and not _valid_cpf("52998224726")
    cnpjs = [r[0] for r in conn.execute("SELECT cnpj FROM billing.entities")]
    assert all(_valid_cnpj(c) for c in cnpjs)
    assert len(set(cnpjs)) == len(cnpjs)
    docs = [r[0] for r in conn.execute("SELECT document FROM billing.customers")]
    cpfs = [d for d in docs if len(d) == 11]
    assert cpfs and len(cpfs) < len(docs)
    assert all(_valid_cpf(d) if len(d) == 11 else _valid_cnpj(d) for d in docs)


def test_window_invoices_and_attempts(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    window = window_for_date(DIGEST_DATE, TZ)
    start, end = window.start, window.end
    assert (start.hour, start.minute, end - start) == (6, 30, dt.timedelta(days=1))
    # Invoices billed in the window carry the digest day as billing date, and vice versa.
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.invoices
                         WHERE (billed_at >= %(ws)s AND billed_at < %(we)s)
                               <> (billing_date = '2026-11-28')""",
        )
        == 0
    )
    assert one(conn, "SELECT count(*) FROM billing.invoices WHERE billing_date = '2026-11-28'") == 300
    assert one(conn, "SELECT count(*) FROM billing.invoices WHERE billed_at = %(ws)s") == 1
    # Their attempts all happen inside the window, after billing, in step order.
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.step_attempts s JOIN billing.invoices i ON i.id = s.invoice_id
                         WHERE i.billing_date = '2026-11-28'
                           AND (s.attempted_at < i.billed_at OR s.attempted_at >= %(we)s)""",
        )
        == 0
    )
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.step_attempts a JOIN billing.step_attempts b
                          ON a.invoice_id = b.invoice_id AND a.step = 'nfse' AND b.step = 'mark_billed'
                        JOIN billing.invoices i ON i.id = a.invoice_id
                        WHERE i.billing_date = '2026-11-28' AND a.attempted_at > b.attempted_at""",
        )
        == 0
    )
    # Every window invoice has the mark_billed step.
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.invoices i WHERE billing_date = '2026-11-28' AND NOT EXISTS
                        (SELECT 1 FROM billing.step_attempts s
                         WHERE s.invoice_id = i.id AND s.step = 'mark_billed')
                     """,
        )
        == 0
    )


def test_failures_to_report(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    failed = conn.execute(FAILED_SQL, WINDOW).fetchall()
    assert len(failed) == counts["expected_failed_steps"] > 0
    assert sum(1 for r in failed if r[3] > 1) == counts["expected_failed_multi_attempt"] > 0
    rows = conn.execute(
        """SELECT step, status, error_code, error_message FROM billing.step_attempts
                            WHERE status IN ('failed', 'rejected')
                              AND attempted_at >= %(ws)s AND attempted_at < %(we)s""",
        WINDOW,
    ).fetchall()
    assert all(code and msg for _, _, code, msg in rows)
    catalog = {(datagen.STEPS[e.step], e.code): e.message for e in datagen.ERRORS}
    for step, _, code, msg in rows:
        assert msg.startswith(catalog[step, code])
        if code == "550":
            assert re.fullmatch(r"550 5\.1\.1 Caixa postal inexistente: [a-z0-9.]+@[a-z0-9.]+", msg)
    # About error_rate of the day's invoices have a problem, concentrated on few entities.
    assert 0.02 * 300 <= counts["expected_problem_invoices"] <= 0.06 * 300
    assert counts["expected_error_entities"] < counts["entities"] / 2


def test_failures_fixed_by_retry_exist(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    retried = one(conn, RETRIED_SQL)
    assert retried == counts["retried_then_succeeded_steps"] > 0
    assert one(conn, "SELECT count(*) FROM billing.step_attempts WHERE status = 'pending'") > 0


def test_missing_steps(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    missing = conn.execute(MISSING_SQL, WINDOW).fetchall()
    assert len(missing) == counts["expected_missing_steps"] > 0


def test_history_and_retention(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    assert (
        one(conn, "SELECT count(*) FROM billing.invoices WHERE billed_at < %(ws)s")
        == counts["history_invoices"]
    )
    # The oldest retained window starts 6 days before the digest day's.
    assert one(conn, "SELECT min(attempted_at) >= %(ws)s - interval '6 days' FROM billing.step_attempts")
    # Invoices billed before the retained days only have overdue notices.
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.step_attempts s JOIN billing.invoices i ON i.id = s.invoice_id
                         WHERE i.billed_at < %(ws)s - interval '6 days' AND s.step <> 'overdue_email'""",
        )
        == 0
    )
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.step_attempts
                         WHERE step = 'overdue_email' AND attempted_at >= %(ws)s""",
        )
        > 0
    )
    # Failures on earlier days exist (and are not the digest day's business).
    assert one(
        conn,
        "SELECT count(*) FROM billing.step_attempts WHERE status <> 'success' AND attempted_at < %(ws)s",
    )


def test_invoice_fields(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    bad = one(
        conn,
        """SELECT count(*) FROM billing.invoices
                       WHERE entity_id IS NULL OR customer_id IS NULL OR billed_at IS NULL
                          OR path IS DISTINCT FROM '/faturamento/faturamentos/' || id
                          OR number !~ '^FAT-\\d{4}-\\d{6,}$' OR amount < 50 OR amount > 50000
                          OR amount <> round(amount, 2) OR billing_type NOT IN ('manual', 'automatic')""",
    )
    assert bad == 0
    manual = one(conn, "SELECT avg((billing_type = 'manual')::int) FROM billing.invoices")
    assert 0.15 < manual < 0.25
    # Invoices with a contract belong to the contract's entity and customer.
    assert (
        one(
            conn,
            """SELECT count(*) FROM billing.invoices i JOIN billing.contracts c ON c.id = i.contract_id
                        WHERE c.entity_id <> i.entity_id OR c.customer_id <> i.customer_id""",
        )
        == 0
    )
    assert one(conn, "SELECT count(*) FROM billing.invoices WHERE contract_id IS NULL") > 0


def test_users_access_and_preferences(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    assert one(conn, "SELECT count(*) = count(DISTINCT email) FROM billing.users WHERE email IS NOT NULL")
    assert one(
        conn,
        "SELECT bool_and(email ~ '^[a-z0-9]+\\.[a-z0-9]+\\+\\d+@[a-z0-9]+\\.com\\.br$') FROM billing.users",
    )
    assert one(conn, "SELECT count(*) FROM billing.users WHERE NOT active") > 0
    assert (
        one(
            conn,
            "SELECT count(*) FROM (SELECT user_id FROM billing.user_entity_access GROUP BY 1"
            " HAVING count(*) > 1) x",
        )
        > 0
    )
    per_entity = one(
        conn, "SELECT count(*)::float / count(DISTINCT entity_id) FROM billing.user_entity_access"
    )
    assert 2 <= per_entity <= 8
    enabled = one(
        conn,
        """SELECT avg(coalesce(p.enabled, false)::int) FROM (SELECT DISTINCT user_id
                             FROM billing.user_entity_access) a
                           LEFT JOIN billing.notification_preferences p ON p.user_id = a.user_id
                             AND p.kind = 'billing_errors'""",
    )
    assert 0.6 < enabled < 0.95
    assert one(conn, "SELECT count(DISTINCT kind) FROM billing.notification_preferences") == 4


def test_expected_deliveries(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    recipients = one(conn, DELIVERIES_SQL)
    assert recipients == counts["expected_deliveries"] > 0


def test_scales() -> None:
    assert set(datagen.SCALES) == {"XS", "S", "M", "L", "XL", "XL60"}
    assert datagen.SCALES["XL"] == dataclasses.replace(datagen.SCALES["L"], outage_share=0.10)
    assert datagen.SCALES["XL60"] == dataclasses.replace(datagen.SCALES["L"], outage_share=0.60)
    assert all(s.outage_share == 0 for name, s in datagen.SCALES.items() if not name.startswith("XL"))
    big = datagen.SCALES["L"]
    assert (big.entities, round(big.entities * big.users_per_entity), big.history_invoices) == (
        100_000,
        1_000_000,
        10_000_000,
    )
    assert all(s.history_days == 7 and s.error_rate == 0.03 for s in datagen.SCALES.values())


# --------------------------------------------------------------------------------------------------
# The outage day (scale XL at scale XS): one bank's API down for 10% of the entities on the digest day
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outage_conn(pg_server: str) -> Iterator[psycopg.Connection[Any]]:
    with (
        scratch_database(pg_server, f"datagen_outage_{os.getpid()}") as scratch,
        psycopg.connect(scratch, autocommit=True) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def outage_counts(outage_conn: psycopg.Connection[Any]) -> dict[str, int]:
    return datagen.generate(outage_conn, scale=OUTAGE_SCALE, digest_date=DIGEST_DATE, seed=42, tz=TZ)


def counted_by_sql(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """What the digest must find, counted by SQL over the loaded rows (the definitions above)."""
    failed = conn.execute(FAILED_SQL, WINDOW).fetchall()
    error_entities = sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE e.active AND e.deleted_at IS NULL)"
        " FROM ({}) err JOIN billing.entities e ON e.id = err.entity_id"
    ).format(ERROR_ENTITIES_SQL)
    row = conn.execute(error_entities, WINDOW).fetchone()
    assert row is not None
    return {
        "expected_failed_steps": len(failed),
        "expected_failed_multi_attempt": sum(1 for r in failed if r[3] > 1),
        "expected_missing_steps": len(conn.execute(MISSING_SQL, WINDOW).fetchall()),
        "expected_error_entities": row[0],
        "expected_digest_entities": row[1],
        "expected_deliveries": one(conn, DELIVERIES_SQL),
        "retried_then_succeeded_steps": one(conn, RETRIED_SQL),
    }


def test_expected_counts_match_sql_on_a_normal_day(conn: psycopg.Connection[Any], counts: dict[str, int]) -> None:
    by_sql = counted_by_sql(conn)
    assert by_sql == {name: counts[name] for name in by_sql}
    assert counts["outage_entities"] == counts["outage_invoices"] == 0


def test_outage_day_expected_counts_match_sql(
    outage_conn: psycopg.Connection[Any], outage_counts: dict[str, int], counts: dict[str, int]
) -> None:
    by_sql = counted_by_sql(outage_conn)
    assert by_sql == {name: outage_counts[name] for name in by_sql}
    # The outage adds errors and digests to the normal day's.
    assert outage_counts["expected_errors"] > counts["expected_errors"]
    assert outage_counts["expected_error_entities"] > counts["expected_error_entities"]
    assert outage_counts["expected_deliveries"] > counts["expected_deliveries"]


def test_outage_day_fails_every_boleto_of_the_outage_entities(
    outage_conn: psycopg.Connection[Any], outage_counts: dict[str, int]
) -> None:
    world = datagen.build_world(OUTAGE_SCALE, seed=42, digest_date=DIGEST_DATE, tz=TZ)
    outage_ids = world.entities.id[world.outage_entities].tolist()
    assert len(outage_ids) == outage_counts["outage_entities"] == 2
    # Boleto attempts of the window's invoices: (outage entity?, status, code) -> attempts, invoices.
    rows = outage_conn.execute(
        """SELECT i.entity_id = ANY(%(ids)s), s.status, coalesce(s.error_code, ''), count(*), count(DISTINCT i.id)
           FROM billing.step_attempts s JOIN billing.invoices i ON i.id = s.invoice_id
           WHERE s.step = 'boleto' AND i.billed_at >= %(ws)s AND i.billed_at < %(we)s
           GROUP BY 1, 2, 3""",
        {**WINDOW, "ids": outage_ids},
    ).fetchall()
    hit = {(status, code): invoices for outage, status, code, _, invoices in rows if outage}
    assert set(hit) == {("failed", "BANK-503")}
    assert hit["failed", "BANK-503"] == outage_counts["outage_invoices"] > 0
    assert not any(code == "BANK-503" for outage, _, code, _, _ in rows if not outage)
    assert one(outage_conn, "SELECT count(*) FROM billing.step_attempts WHERE error_code = 'BANK-503'"
                            " AND (attempted_at < %(ws)s OR attempted_at >= %(we)s)") == 0
    # Reported: each of those invoices has an unresolved boleto failure with the outage's message.
    failed = {(r[0], r[1]) for r in outage_conn.execute(FAILED_SQL, WINDOW)}
    outage_invoices = {r[0] for r in outage_conn.execute(
        "SELECT DISTINCT invoice_id FROM billing.step_attempts WHERE error_code = 'BANK-503'")}
    assert {(invoice, "boleto") for invoice in outage_invoices} <= failed
    message = datagen.ERRORS[datagen.OUTAGE_ERROR].message
    assert one(outage_conn, "SELECT array_agg(DISTINCT error_message) FROM billing.step_attempts"
                            " WHERE error_code = 'BANK-503'") == [message]


def test_outage_day_is_the_normal_day_plus_the_outage(
    conn: psycopg.Connection[Any], counts: dict[str, int], outage_conn: psycopg.Connection[Any],
    outage_counts: dict[str, int],
) -> None:
    """Master data, invoices and the attempts of the days before are those of the same scale without it."""
    normal, outage = checksums(conn), checksums(outage_conn)
    assert {t: v for t, v in outage.items() if t != "step_attempts"} == {
        t: v for t, v in normal.items() if t != "step_attempts"
    }
    before_window = (
        "SELECT md5(string_agg(x::text, '|' ORDER BY id)) FROM billing.step_attempts x WHERE attempted_at < %(ws)s"
    )
    assert one(outage_conn, before_window) == one(conn, before_window)
    same_counts = ("invoices", "history_invoices", "day_invoices", "expected_missing_steps", "incident_entities")
    assert {k: outage_counts[k] for k in same_counts} == {k: counts[k] for k in same_counts}
