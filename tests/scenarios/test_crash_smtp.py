"""The SMTP server SIGKILLed in the middle of a batch, back on the same port a moment later; the DAG
run (real Airflow, dag.test) completes through the task's retry.

The server is a sink in its own process that journals each message before its 250 (as an MTA
queues a message, then replies). It is killed while it holds a message's DATA unanswered: that
message must not count as sent (marking a row 'sent' before the 250 loses it, and this test fails),
and it may arrive twice at most once per connection open at the crash.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from devtools.smtp_sink import airflow_connection as smtp_conn
from tests.scenarios.crashkit import SinkProcess, assert_one_message_window, fresh_dag, ledger_states, outcome, seed_day
from tests.world import SP

DAY = dt.date(2026, 11, 27)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=SP)
HOLD_AT = 12  # the sink never answers the 12th DATA: it is killed while it holds it
RESTART_AFTER = 2.0


def test_smtp_server_killed_mid_batch_nothing_lost_at_most_the_message_in_flight_twice(
        airflow_db, conn, db_dsn, tmp_path, monkeypatch):
    from devtools import embedded_pg

    expected = seed_day(conn, DAY, entities=20, users_per_entity=2)  # 40 digests, 2 batches
    sink = SinkProcess(tmp_path / "journal.jsonl", delay_ms=20, hold_at=HOLD_AT)
    crash: dict[str, object] = {}

    def kill_the_sink_while_it_holds_a_message() -> None:
        deadline = time.monotonic() + 120
        while not sink.read().held:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        before = sink.read()
        crash.update(open_connections=before.open_connections, received_before=before.messages)
        sink.kill()
        time.sleep(RESTART_AFTER)
        sink.start()  # same port, same journal, no hold this time
        crash["restarted"] = True

    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(smtp_conn(sink.port)))
    monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "2")
    monkeypatch.setenv("BILLING_DIGEST_MIN_BATCH_SIZE", "10")
    monkeypatch.setenv("BILLING_DIGEST_SMTP_BACKOFF_SECONDS", "0.1")
    with sink:
        killer = threading.Thread(target=kill_the_sink_while_it_holds_a_message, daemon=True)
        killer.start()
        run = fresh_dag(retry_seconds=3).test(logical_date=RUN_AFTER)
        killer.join(30)
        journal = sink.read()

    assert crash.get("restarted"), "the SMTP server was never killed mid-batch"
    result = outcome(journal.counts, expected)
    print(f"\nSMTP server SIGKILLed holding message {HOLD_AT} ({crash['received_before']} of {len(expected)} "
          f"accepted, {crash['open_connections']} connection(s) open): {result}")
    assert run.state == "success"
    assert crash["open_connections"] == 1
    assert_one_message_window(result, crash["open_connections"])
    assert ledger_states(conn, DAY) == {"sent": len(expected)}
    tries = {(ti.task_id, ti.map_index): ti.try_number for ti in run.get_task_instances()}
    assert tries[("deliver", 0)] >= 2, tries
