"""A worker killed with SIGKILL in the middle of a batch loses nothing, and sends again at most the
message in flight: first the bare delivery in a killed process (the exact ledger states), then the
whole DAG under real Airflow (`airflow dags test` in a process tree that is SIGKILLed, then rerun)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import ROOT

from billing_digest import build, extract
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from devtools import embedded_pg
from devtools.smtp_sink import SmtpSink
from devtools.smtp_sink import airflow_connection as smtp_conn
from tests.scenarios.crashkit import assert_one_message_window, kill_process_tree, ledger_states, outcome, seed_day
from tests.world import SP, local

DAY = dt.date(2026, 11, 27)
WINDOW = window_for_date(DAY)

WORKER = textwrap.dedent("""
    import datetime as dt, sys, psycopg
    from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
    from billing_digest.mail.render import Renderer
    from billing_digest.settings import Settings
    from billing_digest.delivery.smtp import SmtpSettings
    with psycopg.connect(sys.argv[1]) as conn:
        deliver_batch(conn, SmtpSettings(port=int(sys.argv[2])), Renderer(Settings()),
                      dt.date(2026, 11, 27), 0, DeliveryOptions(run_id="killed", chunk_size=2))
""")


def test_sigkill_mid_batch_then_rerun_sends_exactly_the_rest(world, conn, db_dsn, smtp_sink):
    for n in range(6):
        entity = world.entity(f"Empresa {n}")
        world.user(f"Pessoa {n}", f"pessoa{n}@empresa{n}.com.br", [entity])
        inv = world.invoice(entity, local(DAY, 9), boleto=False, notification=False)
        world.attempt(inv, "nfse", "failed", local(DAY, 9, 1), "erro")
    extract.stage_errors(conn, WINDOW)
    build.build_and_stage(conn, WINDOW, Settings())

    third_rcpt = threading.Event()
    calls = {"n": 0}

    def slow_rcpt(address: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            third_rcpt.set()
            time.sleep(3)  # the worker is killed while it waits here, before the message is sent
        return None

    smtp_sink.faults.on_rcpt = slow_rcpt
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, db_dsn, str(smtp_sink.port)], env=env)
    assert third_rcpt.wait(60), "the worker never reached its third message"
    # The second message's 'sent' mark commits on the ledger thread while the third message travels (it waits
    # at RCPT for 3 s): wait for that commit, at most 2.5 s, so the kill lands where this test means it to
    # (a mark still uncommitted at a kill is the message-in-flight window, the other tests' subject).
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and conn.execute(
            "SELECT count(*) FROM digest.deliveries WHERE state = 'sent'").fetchone()[0] < 2:
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    assert len(smtp_sink.messages) == 2
    states = dict(conn.execute("SELECT state, count(*) FROM digest.deliveries GROUP BY 1").fetchall())
    assert states == {"sent": 2, "pending": 4}

    smtp_sink.faults.on_rcpt = None
    time.sleep(3.5)  # let the sink finish the killed session
    deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(Settings()), DAY, 0,
                  DeliveryOptions(run_id="rerun"))  # the task retry; the dead worker's locks are gone
    recipients = [m.rcpt_tos[0] for m in smtp_sink.messages]
    assert sorted(recipients) == [f"pessoa{n}@empresa{n}.com.br" for n in range(6)]
    assert dict(conn.execute("SELECT state, count(*) FROM digest.deliveries GROUP BY 1").fetchall()) == {"sent": 6}


RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=SP)
CRASH_AT = 12  # the n-th message of the day: inside the first of two batches of 20


@pytest.mark.slow  # starts `airflow dags test` processes
def test_airflow_worker_killed_mid_batch_then_rerun_nothing_lost_at_most_the_message_in_flight_twice(
        airflow_db, conn, db_dsn, tmp_path):
    expected = seed_day(conn, DAY, entities=20, users_per_entity=2)  # 40 digests, 2 batches
    env = {**os.environ,
           "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}",
           "AIRFLOW_CONN_BILLING_DB": json.dumps(embedded_pg.airflow_connection(db_dsn)),
           "BILLING_DIGEST_MAX_BATCHES": "2", "BILLING_DIGEST_MIN_BATCH_SIZE": "10"}
    command = [sys.executable, "-m", "airflow", "dags", "test", "billing_error_digest", RUN_AFTER.isoformat()]
    crash: dict[str, object] = {}
    worker: subprocess.Popen[bytes] | None = None

    def kill_the_worker_at_the_nth_message(envelope) -> None:
        if sink.handler.data_count == CRASH_AT and worker is not None:
            crash["open_connections"] = sink.open_connections
            crash["received_before"] = len(sink.messages)
            crash["pids"] = kill_process_tree(worker.pid)  # every process of the run, SIGKILL
        return None  # the server accepts the message: its sender is already dead

    with SmtpSink(delay=0.02) as sink:
        sink.faults.on_data = kill_the_worker_at_the_nth_message
        env["AIRFLOW_CONN_BILLING_SMTP"] = json.dumps(smtp_conn(sink.port))
        with (tmp_path / "killed-run.log").open("wb") as log:
            worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            worker.wait(240)
        assert crash, "the worker was never killed mid-batch: see killed-run.log"
        # Every mark committed before the kill survived it; the message in flight is not marked.
        assert ledger_states(conn, DAY) == {"sent": CRASH_AT - 1, "pending": len(expected) - CRASH_AT + 1}

        with (tmp_path / "rerun.log").open("wb") as log:  # the rerun (a cleared task, or its retry)
            subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=240, check=True)
        counts = sink.counts()

    result = outcome(counts, expected)
    print(f"\nworker SIGKILLed ({len(crash['pids'])} processes) after {crash['received_before']} of "
          f"{len(expected)} messages, {crash['open_connections']} SMTP connection(s) open: {result}")
    assert crash["open_connections"] == 1
    assert_one_message_window(result, crash["open_connections"])
    assert ledger_states(conn, DAY) == {"sent": len(expected)}
