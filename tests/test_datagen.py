"""Tests of the synthetic billing data generator (scale XS, a fraction of a second per load)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from billing_digest import datagen
from devtools import embedded_pg

DIGEST_DATE = dt.date(2026, 11, 28)
TZ = "America/Sao_Paulo"
# Query parameters: the digest window of DIGEST_DATE, [ws, we).
WINDOW = dict(zip(("ws", "we"), datagen.window_bounds(DIGEST_DATE, TZ), strict=True))


@pytest.fixture(scope="module")
def dsn(pg_server: str) -> Iterator[str]:
    """A scratch database on the session's PostgreSQL (embedded, or BILLING_DIGEST_TEST_DSN's server)."""
    name = f"datagen_test_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield embedded_pg.with_database(pg_server, name)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


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
    monkeypatch.setattr(datagen, "_can_disable_triggers", lambda conn: False)
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
    start, end = datagen.window_bounds(DIGEST_DATE, TZ)
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
    retried = one(
        conn,
        """
        WITH f AS (SELECT invoice_id, step, max(attempted_at) AS last_fail FROM billing.step_attempts
                   WHERE status IN ('failed', 'rejected')
                     AND attempted_at >= %(ws)s AND attempted_at < %(we)s
                   GROUP BY invoice_id, step)
        SELECT count(*) FROM f WHERE EXISTS (
            SELECT 1 FROM billing.step_attempts s WHERE s.invoice_id = f.invoice_id AND s.step = f.step
              AND s.status = 'success' AND s.attempted_at > f.last_fail AND s.attempted_at < %(we)s)""",
    )
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
    query = sql.SQL("""
        WITH err AS (SELECT DISTINCT i.entity_id
                     FROM ({failed}) f JOIN billing.invoices i ON i.id = f.invoice_id
                     UNION SELECT i.entity_id FROM ({missing}) m JOIN billing.invoices i ON i.id = m.id)
        SELECT count(*) FROM err
        JOIN billing.entities e ON e.id = err.entity_id AND e.active AND e.deleted_at IS NULL
        JOIN billing.user_entity_access a ON a.entity_id = e.id AND a.revoked_at IS NULL
        JOIN billing.users u ON u.id = a.user_id AND u.active AND u.email IS NOT NULL
        JOIN billing.notification_preferences p
          ON p.user_id = u.id AND p.kind = 'billing_errors' AND p.enabled""").format(
        failed=sql.SQL(FAILED_SQL), missing=sql.SQL(MISSING_SQL)
    )
    recipients = one(conn, query)
    assert recipients == counts["expected_deliveries"] > 0


def test_scales() -> None:
    assert set(datagen.SCALES) == {"XS", "S", "M", "L"}
    big = datagen.SCALES["L"]
    assert (big.entities, round(big.entities * big.users_per_entity), big.history_invoices) == (
        100_000,
        1_000_000,
        10_000_000,
    )
    assert all(s.history_days == 7 and s.error_rate == 0.03 for s in datagen.SCALES.values())
