"""The late-run Deadline Alert under a real scheduler and triggerer: a run still waiting at its deadline
e-mails the data team; a run that ended before its deadline (held: failed) never does, although Airflow
keeps a failed run's deadline and fires its callback. And one run per day at a time: a second run of the
day waits for the first, and its note says for which run."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from devtools import embedded_pg
from devtools.airflow_local import LocalAirflow
from devtools.smtp_sink import free_port
from tests.world import local

pytestmark = pytest.mark.slow
DAG = "billing_error_digest"
DAY = dt.date(2026, 11, 27)
OLD_DAY = dt.date(2026, 11, 20)  # before the attempt history: held at once by check_quality
LATE_AFTER_S = 30


def test_runs_still_waiting_at_their_deadline_alert_a_run_ended_before_it_does_not_and_a_day_runs_once(
        world, db_dsn, pg_server, smtp_sink, tmp_path):
    acme = world.entity("Acme")
    world.user("Ana", "ana@acme.com.br", [acme])
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 5), "E160")
    world.data_loaded_until(local(DAY, 12))  # yesterday's data never arrived: the day's run waits (for an hour)
    metadata = embedded_pg.ensure_database(pg_server, f"af_{tmp_path.name[-20:]}".replace("-", "_").lower(),
                                           recreate=True)
    env = {"BILLING_DIGEST_LATE_ALERT_AFTER_MINUTES": str(LATE_AFTER_S / 60),
           "BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS": "1", "BILLING_DIGEST_FRESHNESS_POKE_SECONDS": "2",
           "BILLING_DIGEST_ALERT_EMAIL": "dados@fintera.com.br"}
    with LocalAirflow(tmp_path / "airflow", db_dsn, smtp_sink.port, port=free_port(), metadata_dsn=metadata,
                      extra_env=env) as af:
        af.cli(["dags", "reserialize"], check=False)
        af.cli(["dags", "unpause", DAG])  # the scheduler creates the day's run (catchup off: the latest one)
        af.cli(["dags", "trigger", DAG, "--run-id", "manual__held", "-c",
                json.dumps({"digest_date": OLD_DAY.isoformat()})])
        triggered = time.monotonic()
        while not (scheduled := [r for r in af.runs(DAG) if r["run_id"].startswith("scheduled__")]):
            assert time.monotonic() < triggered + 60, "the scheduler created no run"
            time.sleep(1)
        day = dt.date.fromisoformat(scheduled[0]["logical_date"][:10])  # its digest day (logical date: D 09:30 UTC)
        af.cli(["dags", "trigger", DAG, "--run-id", "manual__same_day", "-c", json.dumps({"digest_date": str(day)})])
        deadline = triggered + 150

        def late_alerts() -> list:
            return [m for m in smtp_sink.messages if " is late: " in m.message["Subject"]]

        # Both deadlines pass (30 s after each run was queued), plus time for the triggerer to run a
        # callback of the ended run too.
        while time.monotonic() < deadline and (not late_alerts() or time.monotonic() < triggered + LATE_AFTER_S + 20):
            time.sleep(1)
        while time.monotonic() < deadline and len(late_alerts()) < 2:  # the same-day run's deadline is later
            time.sleep(1)
        time.sleep(3)
        runs = {r["run_id"]: r for r in af.runs(DAG)}
        [scheduled] = [r for r in runs.values() if r["run_id"].startswith("scheduled__")]
        note = af.api("GET", f"/api/v2/dags/{DAG}/dagRuns/manual__same_day")["note"]
    assert runs["manual__held"]["state"] == "failed" and scheduled["state"] == "running"
    # the two runs still running at their deadline are late; the run that ended (held) before its deadline is not
    late = {m.message["Subject"].split(" run ", 1)[1].split(" ")[0]: m for m in late_alerts()}
    assert sorted(late) == sorted([scheduled["run_id"], "manual__same_day"])
    alert = late[scheduled["run_id"]]
    assert alert.rcpt_tos == ["dados@fintera.com.br"]
    assert alert.message["Subject"].startswith(f"[billing_error_digest] digest of {day:%d/%m/%Y} is late: "
                                               f"run {scheduled['run_id']} not finished by")
    assert "waiting for the billing data" in " ".join(alert.message.get_content().split())
    # one run per day at a time: the second run of the day waits for the first, and says for which
    assert runs["manual__same_day"]["state"] == "running"
    assert note.startswith(f"**Digest of {day:%d/%m/%Y}: waiting** for run `{scheduled['run_id']}`")
    [held] = [m for m in smtp_sink.messages if "HELD" in m.message["Subject"]]  # the held run's own alert
    assert held.message["Subject"].startswith(f"[billing_error_digest] digest of {OLD_DAY:%d/%m/%Y} HELD")
