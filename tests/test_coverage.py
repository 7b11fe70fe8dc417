"""The coverage guard: a window the attempt history does not cover is held, never reported as "missing"."""

import datetime as dt

from billing_digest import coverage, extract
from billing_digest.window import window_for_date
from tests.world import local

DAY = dt.date(2026, 11, 27)
W = window_for_date(DAY)


def at(day: dt.date, hour: int) -> dt.datetime:
    return local(day, hour)


def verdict(first, last, invoices=100, silent=0, share=0.2):
    return coverage.assess(W, first, last, invoices, silent, max_silent_share=share).problems


def test_a_window_inside_the_history_is_covered():
    assert verdict(at(dt.date(2026, 11, 21), 7), at(DAY, 19)) == ()


def test_the_history_s_first_day_is_covered_when_its_invoices_have_steps():
    # the window starts at 06:30, the first attempt is at 07:00: a quiet morning, not a gap
    assert verdict(at(DAY, 7), at(DAY, 19), invoices=3000, silent=2) == ()


def test_a_window_older_than_the_history_is_held_and_the_message_says_why_and_what_to_do():
    [problem] = verdict(at(dt.date(2026, 11, 30), 7), at(dt.date(2026, 12, 6), 19))
    assert problem.startswith("2026-11-27 is older than the attempt history")
    assert "runs from 2026-11-30 07:00 -03 to 2026-12-06 19:00 -03" in problem
    assert "every invoice would look missing" in problem and "restore" in problem


def test_an_empty_history_is_held():
    [problem] = verdict(None, None)
    assert "the attempt history is empty" in problem


def test_many_silent_invoices_mean_a_gap_in_the_history():
    [problem] = verdict(at(dt.date(2026, 11, 21), 7), at(DAY, 19), invoices=1000, silent=600)
    assert "600 of 1000 invoices billed in the window have no recorded step at all" in problem
    assert "max_silent_invoice_share" in problem
    assert verdict(at(dt.date(2026, 11, 21), 7), at(DAY, 19), invoices=1000, silent=150) == ()  # 15% <= 20%
    assert verdict(at(dt.date(2026, 11, 21), 7), at(DAY, 19), invoices=30, silent=19) == ()  # too few to say


def test_silent_invoices_are_counted_from_the_staged_day(world, conn):
    acme = world.entity("Acme")
    world.all_ok(world.invoice(acme, local(DAY - dt.timedelta(days=1), 9)), local(DAY - dt.timedelta(days=1), 9))
    for n in range(25):  # billed in the window, no step recorded: attempts purged or never loaded
        world.invoice(acme, local(DAY, 9, n))
    partial = world.invoice(acme, local(DAY, 10))  # one step happened: not silent
    world.attempt(partial, "nfse", "success", local(DAY, 10, 5))
    fine = world.invoice(acme, local(DAY, 11))
    world.all_ok(fine, local(DAY, 11))
    extract.stage_errors(conn, W)
    result = coverage.measure(conn, W, max_silent_share=0.2)
    assert (result.window_invoices, result.silent_invoices) == (27, 25)
    assert result.first_attempt == local(DAY - dt.timedelta(days=1), 9, 1)
    assert len(result.problems) == 1 and "25 of 27 invoices" in result.problems[0]
