"""The quality step: systemic problems stop the run before anything is sent."""

import datetime as dt

import pytest

from billing_digest import extract, quality
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)


def test_a_normal_day_passes_and_counts_what_it_saw():
    report = quality.assess(DAY, staged=10, without_entity=1, without_link=2, max_errors=100)
    assert report == quality.QualityReport(10, 1, 2, ())


def test_too_many_errors_or_mostly_unroutable_errors_are_named():
    report = quality.assess(DAY, staged=10, without_entity=6, without_link=0, max_errors=5)
    assert len(report.failures) == 2
    assert "10 errors staged for 2026-11-27, above the sane bound of 5" in report.failures[0]
    assert "6 of 10 errors reference unknown invoices" in report.failures[1]
    assert quality.assess(DAY, 10, 5, 0, 100).failures == ()  # half is not "most"


def history(world, days: int = 7) -> None:
    """Earlier days' invoices with their attempts, and the data loaded up to the window's end."""
    acme = world.entity("Histórico LTDA")
    for back in range(1, days + 1):
        day = DAY - dt.timedelta(days=back)
        world.all_ok(world.invoice(acme, local(day, 9)), local(day, 9))
    world.data_loaded_until(local(DAY + dt.timedelta(days=1), 6))


def test_check_day_holds_a_day_when_most_errors_cannot_be_routed(world, conn):
    history(world)
    acme = world.entity("Acme")
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    for orphan in (900001, 900002):  # attempts of invoices the invoices table does not have
        world.attempt(orphan, "nfse", "failed", local(DAY, 10), "órfão")
    window = window_for_date(DAY)
    extract.stage_errors(conn, window)
    with pytest.raises(quality.DataQualityError, match="2 of 3 errors reference unknown invoices"):
        quality.check_day(conn, window, Settings())


def test_check_day_passes_a_normal_day_and_reports_what_it_saw(world, conn):
    history(world)
    acme = world.entity("Acme")
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    window = window_for_date(DAY)
    extract.stage_errors(conn, window)
    checked = quality.check_day(conn, window, Settings())
    assert (checked.staged, checked.window_invoices, checked.silent_invoices) == (1, 1, 0)
    assert checked.errors_by_topic == {"nfse": 1, "boleto": 0, "notification": 0}
    assert "fewer than 5" in checked.volume_note and checked.accepted_anomaly == ()


def test_check_day_holds_a_window_older_than_the_history(world, conn):
    history(world)
    old = window_for_date(DAY - dt.timedelta(days=30))
    extract.stage_errors(conn, old)
    with pytest.raises(quality.DataQualityError, match=r"is held, nothing was sent: .* older than the attempt history"):
        quality.check_day(conn, old, Settings())


def test_a_volume_anomaly_is_held_unless_accepted_and_then_recorded(world, conn):
    history(world)
    companies = [world.entity(f"Empresa {k}") for k in range(10)]
    for back in range(1, 6):  # five reported days with 60 invoices of 10 companies and 2 boleto errors (one company)
        day = DAY - dt.timedelta(days=back)
        for n in range(60):
            world.invoice(companies[n % 10], local(day, 9, n), nfse=False, notification=False)
        for n in range(2):
            conn.execute("INSERT INTO digest.errors (digest_date, invoice_id, step, kind, entity_id) VALUES (%s, %s, "
                         "'boleto', 'failed', %s)", (day, n, companies[0]))
        conn.execute("INSERT INTO digest.day_reports (digest_date, run_id, summary) VALUES (%s, 'r', '{}')", (day,))
    for n in range(60):  # the usual 60 invoices, every one with a boleto error (the bank is down for everyone)
        inv = world.invoice(companies[n % 10], local(DAY, 9, n % 60), nfse=False, notification=False)
        world.attempt(inv, "boleto", "failed", local(DAY, 10), "Banco fora do ar")
    window = window_for_date(DAY)
    extract.stage_errors(conn, window)
    with pytest.raises(quality.DataQualityError) as held:
        quality.check_day(conn, window, Settings())
    [problem] = held.value.problems
    assert problem.guard == "volume" and held.value.digest_date == DAY
    assert problem.text.startswith("volume anomaly: 2026-11-27: 60 errors in topic Cobrança (Boleto Bancário) for "
                                   "60 invoices billed (100.0 per 100 invoices) in 10 of the 10 billing companies, "
                                   "against a median of 3.3 per 100")
    assert "accept_anomaly=true" in problem.text
    checked = quality.check_day(conn, window, Settings(), accept_anomaly=True)
    assert len(checked.accepted_anomaly) == 1 and "60 errors" in checked.accepted_anomaly[0]
