"""The history page's data (billing_digest.history) and charts (digest_preview.charts), pure; the
page itself, with its auth and a real database, is in tests/test_preview_plugin.py."""

from __future__ import annotations

import datetime as dt

from digest_preview import charts

from billing_digest import history, volume
from billing_digest.holds import Hold
from billing_digest.settings import Settings

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(anomaly_trailing_days=3, anomaly_min_days=2, anomaly_factor=3.0, anomaly_floor=50)


def report(nfse: int, ledger: dict | None = None) -> dict:
    return {"errors_by_topic": {"nfse": nfse, "boleto": 0, "notification": 0}, "ledger": ledger or {}}


def test_skipped_digests_are_grouped_by_why():
    assert history.outcome_of("skipped", "opted_out") == "skipped_opted_out"
    assert history.outcome_of("skipped", "suppressed_bounce") == "skipped_suppressed"
    assert history.outcome_of("skipped", "invalid_email") == "skipped_invalid"
    assert history.outcome_of("skipped", "duplicate_address") == "skipped_invalid"
    assert history.outcome_of("skipped", "access_revoked") == "skipped_other"
    assert history.outcome_of("sent", "-") == "sent"
    ledger = {"sent": {"-": 7}, "skipped": {"opted_out": 2, "invalid_email": 1, "user_inactive": 1}}
    assert history.outcomes(ledger) == {**dict.fromkeys(history.OUTCOMES, 0), "sent": 7, "skipped_opted_out": 2,
                                        "skipped_invalid": 1, "skipped_other": 1}


def test_the_baseline_is_the_guards_usual_errors_and_threshold_of_the_trailing_reported_days():
    series = {DAY - dt.timedelta(days=k): {"nfse": n} for k, n in ((1, 10), (2, 100), (4, 20), (5, 1000))}
    invoices = dict.fromkeys([DAY - dt.timedelta(days=k) for k in range(6)], 1000)
    base = volume.baselines(series, [DAY], SETTINGS, invoices)[DAY]["nfse"]
    assert base.median == 20  # the 3 reported days before DAY: 1%, 10%, 2% of 1,000 invoices; DAY bills 1,000
    assert base.threshold == 70  # max(3 x 20, 20 + 50)
    busy = volume.baselines(series, [DAY], SETTINGS, {**invoices, DAY: 5000})[DAY]["nfse"]
    assert (busy.median, busy.threshold) == (100, 300)  # a billing wave: 5x the invoices, 5x the usual errors
    assert volume.baselines(series, [DAY - dt.timedelta(days=4)], SETTINGS, invoices) == {}  # 1 day < min_days
    assert volume.baselines(series, [DAY], SETTINGS) == {}  # the day's invoices unknown: no line


def test_the_threshold_is_where_the_guard_holds():
    """The page's dashed line is the guard's own limit: at the threshold assess() holds, below it not
    (for a jump that is wide across the companies; breadth is not a line)."""
    trailing = [{"nfse": 20, "boleto": 0, "notification": 0}] * 3
    days = [DAY - dt.timedelta(days=k + 1) for k in range(3)]
    invoices = {**dict.fromkeys(days, 1000), DAY: 2000}
    threshold = volume.baselines(dict(zip(days, trailing, strict=True)), [DAY], SETTINGS,
                                 invoices)[DAY]["nfse"].threshold
    judge = {"factor": 3.0, "floor": 50, "min_days": 2}
    before = [volume.DayVolume(t, 1000) for t in trailing]
    assert volume.assess(DAY, volume.DayVolume({"nfse": int(threshold)}, 2000), before, **judge).anomalies
    assert not volume.assess(DAY, volume.DayVolume({"nfse": int(threshold) - 1}, 2000), before, **judge).anomalies


def test_a_period_marks_held_days_and_held_then_sent_days():
    start = DAY - dt.timedelta(days=2)
    hold = Hold(DAY, "quality", ("volume anomaly",), dt.datetime(2026, 11, 28, 9, tzinfo=dt.UTC))
    earlier = Hold(start, "quality", ("coverage",), dt.datetime(2026, 11, 26, 9, tzinfo=dt.UTC))
    reports = {start - dt.timedelta(days=k): report(10) for k in range(1, 4)} | {start: report(12)}
    invoices = {start - dt.timedelta(days=k): 100 for k in range(-2, 4)}  # 100 invoices every day
    h = history.assemble(start, DAY, reports, {DAY: hold, start: earlier}, SETTINGS, invoices)
    assert [d.digest_date for d in h.days] == [start, start + dt.timedelta(days=1), DAY]
    assert [(d.reported, d.held) for d in h.days] == [(True, False), (False, False), (False, True)]
    assert h.days[0].hold is earlier  # held, then sent: kept for the record
    assert h.days[0].baseline["nfse"].median == 10


def test_the_charts_link_each_day_to_its_preview_and_escape_text():
    hold = Hold(DAY, "quality", ('<script>alert("x")</script>',), dt.datetime(2026, 11, 28, tzinfo=dt.UTC))
    reports = {DAY - dt.timedelta(days=1): report(5, {"sent": {"-": 3}, "skipped": {"opted_out": 1}})}
    h = history.assemble(DAY - dt.timedelta(days=1), DAY, reports, {DAY: hold}, SETTINGS)
    link = lambda d: f"./?digest_date={d}"  # noqa: E731
    errors = str(charts.errors_chart(h, "nfse", "Nota Fiscal", link))
    digests = str(charts.digests_chart(h, link))
    assert errors.startswith("<svg") and 'href="./?digest_date=2026-11-26"' in errors
    assert "HELD, nothing sent" in errors and "<script>" not in errors and "&lt;script&gt;" in errors
    assert "26/11/2026, sent 3, skipped: opted out 1" in digests
    assert "http" not in errors.replace("http://www.w3.org/2000/svg", "")  # nothing fetched at view time


def test_axis_tops_are_round():
    assert [charts.nice_top(v) for v in (0, 0.5, 7, 11, 180, 2400, 11321)] == [1, 0.5, 10, 20, 200, 2500, 20000]


def test_a_day_held_then_sent_is_marked_apart_from_a_day_still_held():
    hold = Hold(DAY, "quality", ("volume anomaly",), dt.datetime(2026, 11, 28, tzinfo=dt.UTC))
    sent_later = history.assemble(DAY, DAY, {DAY: report(90)}, {DAY: hold}, SETTINGS)
    still_held = history.assemble(DAY, DAY, {}, {DAY: hold}, SETTINGS)
    link = lambda d: f"./?digest_date={d}"  # noqa: E731
    assert "held, then sent" in charts.errors_chart(sent_later, "nfse", "Nota Fiscal", link)
    assert "HELD, nothing sent" not in charts.errors_chart(sent_later, "nfse", "Nota Fiscal", link)
    assert "HELD, nothing sent" in charts.errors_chart(still_held, "nfse", "Nota Fiscal", link)
