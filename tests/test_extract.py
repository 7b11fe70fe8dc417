"""The extraction SQL against a real PostgreSQL, on small explicit worlds."""

import datetime as dt

import pytest

from billing_digest import extract
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)
NEXT = DAY + dt.timedelta(days=1)
WINDOW = window_for_date(DAY)


def staged(conn):
    extract.stage_errors(conn, WINDOW)
    rows = conn.execute("SELECT invoice_id, step, kind, status, attempts, error_message FROM digest.errors "
                        "WHERE digest_date = %s ORDER BY invoice_id, step", (DAY,)).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


@pytest.fixture
def acme(world):
    return world.entity("Acme LTDA")


def test_failure_that_later_succeeded_in_the_window_is_not_reported(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9))
    world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "Prefeitura fora do ar")
    world.attempt(inv, "nfse", "success", local(DAY, 11))
    assert staged(conn) == {}


def test_failure_whose_retry_succeeded_only_after_the_window_is_reported(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9))
    world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 1), "E160 - Código inválido", "E160")
    world.attempt(inv, "nfse", "success", local(NEXT, 6, 31))  # after the window closed
    assert staged(conn) == {(inv, "nfse"): ("failed", "rejected", 1, "E160 - Código inválido")}


def test_one_row_per_invoice_and_step_with_latest_message_and_attempt_count(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9))
    world.all_ok(inv, local(DAY, 9), steps=("nfse", "charge_email"))
    world.attempt(inv, "boleto", "failed", local(DAY, 9, 1), "primeira")
    world.attempt(inv, "boleto", "failed", local(DAY, 12), "segunda")
    world.attempt(inv, "boleto", "failed", local(DAY, 12), "segunda")  # duplicated row
    world.attempt(inv, "boleto", "rejected", local(DAY, 15), "Banco recusou: CEP inválido")
    assert staged(conn) == {(inv, "boleto"): ("failed", "rejected", 3, "Banco recusou: CEP inválido")}


def test_missing_required_steps_are_reported_and_unrequired_are_not(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9), notification=False)
    world.attempt(inv, "boleto", "success", local(DAY, 9, 2))
    only_pending = world.invoice(acme, local(DAY, 10), boleto=False, notification=False)
    world.attempt(only_pending, "nfse", "pending", local(DAY, 10, 1))
    assert staged(conn) == {(inv, "nfse"): ("missing", None, 0, None),
                            (only_pending, "nfse"): ("missing", None, 0, None)}


def test_a_failed_step_is_not_also_reported_as_missing(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    assert staged(conn) == {(inv, "nfse"): ("failed", "failed", 1, "erro")}


def test_window_bounds_are_closed_open_in_sao_paulo_time(world, conn, acme):
    inv = world.invoice(acme, local(DAY - dt.timedelta(days=3), 9))
    world.attempt(inv, "overdue_email", "rejected", local(DAY, 6, 29), "antes")   # previous window
    world.attempt(inv, "charge_email", "rejected", local(DAY, 6, 30), "início")   # in
    world.attempt(inv, "boleto", "failed", local(NEXT, 6, 29, ), "fim")             # in
    world.attempt(inv, "nfse", "failed", local(NEXT, 6, 30), "depois")             # next window
    assert set(staged(conn)) == {(inv, "charge_email"), (inv, "boleto")}


def test_backfill_reads_only_rows_time_stamped_before_the_window_end(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9))
    world.all_ok(inv, local(DAY, 9), steps=("boleto", "charge_email"))
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    timely = staged(conn)
    # what happens the following days must not change the day's digest
    late = world.invoice(acme, local(NEXT, 9))
    world.attempt(late, "nfse", "failed", local(NEXT, 9, 1), "outro dia")
    world.attempt(inv, "nfse", "success", local(NEXT, 10))
    assert staged(conn) == timely


def test_unknown_statuses_and_orphan_attempts_are_staged_for_reporting(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9))
    world.all_ok(inv, local(DAY, 9), steps=("nfse", "boleto", "charge_email"))
    world.attempt(inv, "charge_email", "bounced??", local(DAY, 11), "?")
    world.attempt(999_999, "nfse", "failed", local(DAY, 11), "órfã")
    rows = staged(conn)
    assert rows[(inv, "charge_email")][1] == "bounced??"
    assert (999_999, "nfse") in rows
    entity = conn.execute("SELECT entity_id FROM digest.errors WHERE invoice_id = 999999").fetchone()[0]
    assert entity is None


def test_restaging_a_day_is_idempotent(world, conn, acme):
    inv = world.invoice(acme, local(DAY, 9))
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    first = staged(conn)
    assert staged(conn) == first
    assert conn.execute("SELECT count(*) FROM digest.errors").fetchone()[0] == len(first)
