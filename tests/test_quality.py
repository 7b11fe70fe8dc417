"""The quality step: systemic problems stop the run before anything is sent."""

import datetime as dt

import pytest

from billing_digest import extract, quality
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


def test_check_fails_the_run_when_most_errors_cannot_be_routed(world, conn):
    acme = world.entity("Acme")
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    for orphan in (900001, 900002):  # attempts of invoices the invoices table does not have
        world.attempt(orphan, "nfse", "failed", local(DAY, 10), "órfão")
    extract.stage_errors(conn, window_for_date(DAY))
    with pytest.raises(quality.DataQualityError, match="2 of 3 errors reference unknown invoices"):
        quality.check(conn, DAY, max_errors=100)
    assert quality.check(conn, DAY, max_errors=100, max_unroutable_share=0.7).staged == 3
