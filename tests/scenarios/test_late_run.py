"""The late-run Deadline Alert under a real scheduler: a run held past its deadline e-mails the data team."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from devtools import embedded_pg
from devtools.airflow_local import LocalAirflow
from devtools.smtp_sink import free_port
from tests.world import local

pytestmark = pytest.mark.slow
DAG = "billing_error_digest"
DAY = dt.date(2026, 11, 27)


def test_the_day_s_run_still_waiting_for_its_data_at_the_deadline_alerts_the_data_team(world, db_dsn, pg_server,
                                                                                       smtp_sink, tmp_path):
    acme = world.entity("Acme")
    world.user("Ana", "ana@acme.com.br", [acme])
    inv = world.invoice(acme, local(DAY, 9), boleto=False, notification=False)
    world.attempt(inv, "nfse", "rejected", local(DAY, 9, 5), "E160")
    world.data_loaded_until(local(DAY, 12))  # yesterday's data never arrived: the day's run waits (for an hour)
    metadata = embedded_pg.ensure_database(pg_server, f"af_{tmp_path.name[-20:]}".replace("-", "_").lower(),
                                           recreate=True)
    env = {"BILLING_DIGEST_LATE_ALERT_AFTER_MINUTES": "0.25",  # 15 s after the run was queued
           "BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS": "1", "BILLING_DIGEST_FRESHNESS_POKE_SECONDS": "2",
           "BILLING_DIGEST_ALERT_EMAIL": "dados@fintera.com.br"}
    with LocalAirflow(tmp_path / "airflow", db_dsn, smtp_sink.port, port=free_port(), metadata_dsn=metadata,
                      extra_env=env) as af:
        af.cli(["dags", "reserialize"], check=False)
        af.cli(["dags", "unpause", DAG])  # the scheduler creates the day's run (catchup off: the latest one)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not smtp_sink.messages:
            time.sleep(1)
        time.sleep(3)  # a second alert for the same run would arrive within this
        [run] = af.runs(DAG)
    [alert] = smtp_sink.messages
    assert run["run_id"].startswith("scheduled__") and run["state"] == "running"  # late, still waiting, nothing sent
    assert alert.rcpt_tos == ["dados@fintera.com.br"]
    assert alert.message["Subject"].startswith(f"[billing_error_digest] run {run['run_id']} is late: not finished by")
    assert "waiting for the billing data" in " ".join(alert.message.get_content().split())
