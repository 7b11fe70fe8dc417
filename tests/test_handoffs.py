"""XCom hand-offs: JSON-safe on the way out, typed again (dates parsed) on the way in."""

import datetime as dt
import json

from billing_digest.handoffs import BatchPlan, BatchReport, BuiltDay, RunWindow, StagedDay
from billing_digest.quality import QualityReport
from billing_digest.summary import RunSummary
from billing_digest.window import window_for_date

DAY = dt.date(2026, 11, 27)


def test_every_handoff_round_trips_through_json():
    w = window_for_date(DAY)
    values = [
        RunWindow(w.start, w.end),
        StagedDay(DAY, w.start, w.end, 3, 1),
        QualityReport(4, 0, 1, ("x",)),
        BuiltDay(DAY, 4, {"nfse": 4, "boleto": 0, "notification": 0}, 2, 0, 3, {"missing_amount": 1}),
        BatchPlan(DAY, 0, 3, "batch 0: Acme … Beta (3 e-mails)"),
        BatchReport(DAY, 0, {"sent": 3}, 1, 0.25),
        RunSummary(DAY, {"nfse": 4}, 2, 3, {}, {"sent": 3}, {"sent": {"-": 3}}, 3, "manual__1"),
    ]
    for value in values:
        raw = json.loads(json.dumps(value.to_xcom()))
        assert type(value).from_xcom(raw) == value


def test_dates_are_strings_in_xcom_and_dates_again_after():
    w = window_for_date(DAY)
    raw = StagedDay(DAY, w.start, w.end, 3, 1).to_xcom()
    assert raw["digest_date"] == "2026-11-27" and raw["window_start"] == "2026-11-27T06:30:00-03:00"
    staged = StagedDay.from_xcom(raw)
    assert staged.window == w and staged.window.digest_date == DAY


def test_unknown_keys_from_an_older_version_are_ignored():
    raw = {**BatchPlan(DAY, 1, 2, "x").to_xcom(), "legacy": True}
    assert BatchPlan.from_xcom(raw) == BatchPlan(DAY, 1, 2, "x")
