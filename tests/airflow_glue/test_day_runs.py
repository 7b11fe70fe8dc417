"""One run per digest day at a time: which earlier active run of the same day a run waits for."""

import datetime as dt

from billing_digest.airflow_glue.day_runs import day_of, earlier_run_of_day, waiting_note

DAY = dt.date(2026, 11, 27)
SCHEDULED = {"dag_run_id": "scheduled__2026-11-27T09:30:00+00:00", "state": "running",
             "logical_date": "2026-11-27T09:30:00Z", "data_interval_start": "2026-11-27T09:30:00Z",
             "data_interval_end": "2026-11-28T09:30:00Z", "queued_at": "2026-11-28T09:30:01Z", "conf": {}}
MANUAL = {"dag_run_id": "manual__1", "state": "queued", "logical_date": None, "data_interval_start": None,
          "data_interval_end": None, "run_after": "2026-11-28T10:00:00Z", "queued_at": "2026-11-28T10:00:01Z",
          "conf": {"digest_date": "2026-11-27"}}


def test_a_later_run_of_the_same_day_waits_for_the_earlier_one_never_the_reverse():
    assert day_of(SCHEDULED) == day_of(MANUAL) == DAY
    assert earlier_run_of_day([SCHEDULED, MANUAL], "manual__1", DAY) == SCHEDULED["dag_run_id"]
    assert earlier_run_of_day([SCHEDULED, MANUAL], SCHEDULED["dag_run_id"], DAY) is None


def test_runs_of_other_days_or_ended_runs_are_not_waited_for():
    other_day = {**MANUAL, "dag_run_id": "manual__0", "queued_at": "2026-11-28T09:00:00Z",
                 "conf": {"digest_date": "2026-11-26"}}
    ended = {**SCHEDULED, "state": "failed"}
    assert earlier_run_of_day([other_day, ended, MANUAL], "manual__1", DAY) is None
    # no digest_date and no logical date: the day closed when it was triggered (28/11 10:00 UTC -> 27/11)
    bare = {**MANUAL, "dag_run_id": "manual__2", "conf": {}, "queued_at": "2026-11-28T10:05:00Z"}
    assert earlier_run_of_day([MANUAL, bare], "manual__2", DAY) == "manual__1"


def test_the_waiting_note_names_the_day_and_the_other_run():
    assert waiting_note(DAY, "scheduled__x").startswith("**Digest of 27/11/2026: waiting** for run `scheduled__x`")
