"""The whole PostgreSQL server of the ledger SIGKILLed in the middle of a batch, restarted a moment
later; the DAG run (real Airflow, dag.test) completes through the task's retry.

The kill comes while the SMTP server holds a message in flight: it accepts that message after the
ledger is gone, so its 'sent' mark cannot be written and the retry sends it again. That is the one
message the guarantee allows per open connection; every mark committed before the crash must
survive it (with ``synchronous_commit = off`` the last ones do not, and this test fails).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from devtools.smtp_sink import SmtpSink
from devtools.smtp_sink import airflow_connection as smtp_conn
from tests.scenarios.crashkit import assert_one_message_window, fresh_dag, ledger_states, outcome, seed_day
from tests.world import SP

DAY = dt.date(2026, 11, 27)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=SP)
CRASH_AT = 12  # the n-th message of the day: inside the first of two batches of 20
RESTART_AFTER = 2.0  # seconds the server stays dead


def test_postgres_killed_mid_batch_nothing_lost_at_most_the_message_in_flight_twice(
        airflow_db, own_pg, monkeypatch):
    with own_pg.connect() as conn:
        expected = seed_day(conn, DAY, entities=20, users_per_entity=2)  # 40 digests
    crash: dict[str, object] = {}
    restarted = threading.Event()
    seen = {"n": 0}

    def restart() -> None:
        own_pg.restart()
        restarted.set()

    def crash_postgres_at_the_nth_message(envelope) -> None:
        seen["n"] += 1
        if seen["n"] == CRASH_AT:
            crash["open_connections"] = sink.open_connections
            crash["received_before"] = len(sink.messages)
            crash["pids"] = own_pg.crash()  # postmaster + every child, SIGKILL
            crash["at"] = time.monotonic()
            threading.Timer(RESTART_AFTER, restart).start()
        return None  # then the message is accepted: the ledger is already gone

    with SmtpSink(delay=0.02) as sink:
        sink.faults.on_data = crash_postgres_at_the_nth_message
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", own_pg.airflow_connection())
        monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(smtp_conn(sink.port)))
        monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "2")
        monkeypatch.setenv("BILLING_DIGEST_MIN_BATCH_SIZE", "10")
        monkeypatch.setenv("BILLING_DIGEST_SMTP_BACKOFF_SECONDS", "0.1")
        run = fresh_dag(retry_seconds=3).test(logical_date=RUN_AFTER)
        counts = sink.counts()

    assert crash, "the crash never happened"
    assert restarted.wait(30)
    result = outcome(counts, expected)
    print(f"\nPostgreSQL SIGKILLed ({len(crash['pids'])} processes) after {crash['received_before']} of "
          f"{len(expected)} messages, {crash['open_connections']} SMTP connection(s) open: {result}")
    assert run.state == "success"
    assert crash["open_connections"] == 1
    assert_one_message_window(result, crash["open_connections"])
    with own_pg.connect() as conn:
        assert ledger_states(conn, DAY) == {"sent": len(expected)}
    tries = {(ti.task_id, ti.map_index): ti.try_number for ti in run.get_task_instances()}
    assert tries[("deliver", 0)] >= 2, tries  # the crashed batch was completed by the task's retry
