"""The DAG file itself: imports cleanly, is scheduled and documented as promised."""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DeadlineReference
from airflow.serialization.encoders import coerce_to_core_timetable
from conftest import ROOT

from billing_digest import window


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "billing_error_digest" in dagbag.dags


def test_schedule_is_0630_sao_paulo_with_a_one_day_interval(dagbag):
    dag = dagbag.dags["billing_error_digest"]
    timetable = coerce_to_core_timetable(dag.timetable)  # what the scheduler will use
    assert type(timetable).__name__ == "CronDataIntervalTimetable"
    # The one schedule (billing_digest.window), and the product's promise: 06:30 in São Paulo.
    assert timetable.serialize() == {"expression": window.CRON, "timezone": window.TIMEZONE}
    assert (window.CRON, window.TIMEZONE) == ("30 6 * * *", "America/Sao_Paulo")
    interval = timetable.infer_manual_data_interval(
        run_after=dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC))
    assert (interval.start.isoformat(), interval.end.isoformat()) == (
        "2026-11-27T09:30:00+00:00", "2026-11-28T09:30:00+00:00")
    assert dag.catchup is False


def test_owner_retries_tags_docs_and_params(dagbag):
    dag = dagbag.dags["billing_error_digest"]
    assert dag.owner == "data-team"
    assert {"billing", "digest", "email"} <= set(dag.tags)
    assert "Backfill" in dag.doc_md and "billing_smtp" in dag.doc_md
    assert all(t.retries >= 3 for t in dag.tasks if t.task_id != "check_quality")
    assert dag.task_dict["check_quality"].retries == 0  # a held day is not retried
    assert set(dag.params) == {"digest_date", "dry_run", "entity_ids", "redirect_to", "resend", "accept_anomaly"}
    assert [t.task_id for t in dag.topological_sort()] == [
        "wait_for_billing_data", "extract_errors", "check_quality", "build_digests", "plan_batches", "deliver",
        "summarize", "apply_retention"]


def test_the_freshness_gate_is_a_sensor_that_holds_no_worker_slot(dagbag):
    sensor = dagbag.dags["billing_error_digest"].task_dict["wait_for_billing_data"]
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 1 and sensor.timeout == 36  # tests/conftest.py's env; 300 s and 3 h by default


def test_no_run_is_silently_empty_the_history_decides_how_far_back(dagbag):
    # Airflow creates no task instance for a run whose logical date is before start_date, and calls
    # it a success: start_date is before any billing data, and check_quality holds uncovered days.
    dag = dagbag.dags["billing_error_digest"]
    assert dag.start_date.year <= 2020


def test_late_run_alert_is_a_deadline_on_the_queued_time(monkeypatch):
    monkeypatch.setenv("BILLING_DIGEST_LATE_ALERT_AFTER_MINUTES", "45")
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"]
    [alert] = dag.deadline
    assert alert.interval == dt.timedelta(minutes=45)
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.callback.path == "billing_digest.airflow_glue.late_alert.run_is_late"
    monkeypatch.setenv("BILLING_DIGEST_LATE_ALERT_AFTER_MINUTES", "0")
    assert not DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"].deadline


def test_dag_file_has_no_heavy_imports_at_parse_time():
    source = (ROOT / "dags" / "billing_error_digest.py").read_text()
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not any(mod in line for line in top_level for mod in ("pandas", "psycopg", "jinja2"))
    # Of the package, only its constants (the DAG's id and schedule): plain Python, nothing else loaded.
    assert [line for line in top_level if "billing_digest" in line] == ["from billing_digest import DAG_ID, window"]
    probe = ("import json, sys; before = set(sys.modules); import billing_digest.window; "
             "print(json.dumps(sorted(m for m in set(sys.modules) - before if not m.startswith('billing_digest'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")})
    heavy = {"pandas", "psycopg", "jinja2", "numpy", "airflow", "pydantic"}
    assert not {m.split(".")[0] for m in json.loads(loaded.stdout)} & heavy
