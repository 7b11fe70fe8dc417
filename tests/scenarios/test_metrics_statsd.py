"""Metrics leave the run through Airflow's own metrics interface: a real UDP StatsD listener receives them.

The DAG runs in its own `airflow dags test` process, as a task runs in production: Airflow reads its
``[metrics]`` configuration once per process."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import ROOT

from tests.world import local

DAY = dt.date(2026, 11, 27)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=local(DAY, 0).tzinfo)


@pytest.fixture
def statsd(monkeypatch):
    """A UDP socket where Airflow's StatsD client sends (``[metrics] statsd_*``, read when a task starts)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]))
    yield listener
    listener.close()


def dags_test(conf: dict | None = None) -> int:
    """The DAG in an `airflow dags test` process (the environment, connections included, is this test's)."""
    args = [sys.executable, "-m", "airflow", "dags", "test", "billing_error_digest", RUN_AFTER.isoformat()]
    done = subprocess.run(args + (["-c", json.dumps(conf)] if conf else []), capture_output=True, text=True,
                          timeout=300)
    return done.returncode


def received(listener: socket.socket) -> list[str]:
    lines = []
    while True:
        try:
            data = listener.recv(65535)
        except TimeoutError:
            return lines
        lines += data.decode().splitlines()


def test_a_run_emits_outcomes_errors_per_topic_and_the_delivery_duration(airflow_env, world, smtp_sink, statsd):
    acme = world.entity("Acme")
    world.user("Ana", "ana@acme.com.br", [acme])
    world.user("Bruno", "bruno@acme.com.br", [acme])
    world.user("Duda", "duda@acme.com.br", [acme], opted_in=False)
    for n in range(3):
        inv = world.invoice(acme, local(DAY, 9, n), boleto=False, notification=False)
        world.attempt(inv, "nfse", "rejected", local(DAY, 9, 30), "E160")
    inv = world.invoice(acme, local(DAY, 10), nfse=False, notification=False)  # a boleto that never came
    world.data_loaded_until(local(DAY + dt.timedelta(days=1), 6))
    smtp_sink.faults.on_rcpt = lambda a: "550 5.1.1 no such user" if a.startswith("bruno") else None

    assert dags_test() == 0
    ours = {line.split(":")[0]: line.split(":", 1)[1] for line in received(statsd)
            if line.startswith("airflow.billing_digest.")}
    assert ours["airflow.billing_digest.digests.sent"] == "1|c"
    assert ours["airflow.billing_digest.digests.failed"] == "1|c"
    assert ours["airflow.billing_digest.digests.skipped"] == "0|c"  # duda opted out: never a recipient
    assert ours["airflow.billing_digest.errors.nfse"] == "3|g"
    assert ours["airflow.billing_digest.errors.boleto"] == "1|g"
    assert ours["airflow.billing_digest.errors.total"] == "4|g"
    assert ours["airflow.billing_digest.delivery.duration"].endswith("|ms")
    assert float(ours["airflow.billing_digest.delivery.duration"].split("|")[0]) > 0
    # The missing boleto has a guide; the three "E160" messages (no code, no known phrase) have none.
    assert ours["airflow.billing_digest.guides.coverage"] == "25.0|g"
    assert ours["airflow.billing_digest.guides.errors_without_guide"] == "3|g"


def test_a_held_day_is_counted(airflow_env, world, statsd, monkeypatch):
    world.data_loaded_until(local(DAY + dt.timedelta(days=1), 6))
    assert dags_test({"digest_date": "2026-10-01"}) == 1  # a day before the history: held
    assert "airflow.billing_digest.run.held:1|c" in received(statsd)
