"""A whole run (dag.test) against a provider that throttles: past its rate it answers SES's ``454 Throttling
failure``. The day arrives once per digest in the same task tries (throttling is not a failure), and the
run's summary and note say how long delivery took, at what rate, and how many throttle replies came. And a provider's
daily quota: the rest of the day waits (deferred, reason quota) without a task failing, and the run says so in its note,
its summary and an e-mail to alert_email."""

from __future__ import annotations

import datetime as dt

from billing_digest import summary
from billing_digest.airflow_glue import run_note
from devtools.throttle_sink import RateGate
from tests.scenarios.crashkit import fresh_dag, seed_day
from tests.world import SP

DAY = dt.date(2026, 11, 27)
RUN_AFTER = dt.datetime(2026, 11, 28, 6, 30, tzinfo=SP)
RATE = 40.0


def test_a_throttling_provider_slows_the_day_down_without_failing_a_task(airflow_env, conn, smtp_sink,
                                                                        monkeypatch):
    expected = seed_day(conn, DAY, entities=30, users_per_entity=2)  # 60 digests, 2 batches
    gate = RateGate(rate=RATE, burst=4)
    smtp_sink.faults.on_data = gate
    monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "2")
    monkeypatch.setenv("BILLING_DIGEST_MIN_BATCH_SIZE", "10")
    monkeypatch.setenv("BILLING_DIGEST_SMTP_ATTEMPTS", "1")  # a throttle must not need attempts
    monkeypatch.setenv("BILLING_DIGEST_SMTP_THROTTLE_PAUSE_SECONDS", "0.2")

    run = fresh_dag(retry_seconds=1).test(logical_date=RUN_AFTER)  # a needless retry would come fast, and show

    assert run.state == "success"
    assert set(smtp_sink.counts()) == expected and max(smtp_sink.counts().values()) == 1
    assert gate.refused > 0  # the provider did throttle
    tries = {(ti.task_id, ti.map_index): ti.try_number for ti in run.get_task_instances()}
    assert tries[("deliver", 0)] == tries[("deliver", 1)] == 1, tries  # no task retry was needed
    day = summary.latest(conn, DAY)
    assert day is not None and day.throttled == gate.refused and day.emails_sent_this_run == len(expected)
    assert day.delivery_seconds > 0
    assert f"{day.throttled} throttle replies" in run_note.note(day)


def test_the_daily_quota_leaves_the_rest_deferred_without_failing_and_says_so_in_note_summary_and_alert(
        airflow_env, conn, smtp_sink, monkeypatch):
    expected = seed_day(conn, DAY, entities=30, users_per_entity=2)  # 60 digests, 2 batches
    monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "2")
    monkeypatch.setenv("BILLING_DIGEST_MIN_BATCH_SIZE", "10")
    monkeypatch.setenv("BILLING_DIGEST_SMTP_MAX_MESSAGES_PER_DAY", "45")
    monkeypatch.setenv("BILLING_DIGEST_ALERT_EMAIL", "dados@fintera.com.br")

    run = fresh_dag(retry_seconds=1).test(logical_date=RUN_AFTER)

    assert run.state == "success"
    tries = {(ti.task_id, ti.map_index): ti.try_number for ti in run.get_task_instances()}
    assert tries[("deliver", 0)] == tries[("deliver", 1)] == 1, tries  # the quota is no task failure
    digests = [m for m in smtp_sink.messages if m.key is not None]
    alerts = [m for m in smtp_sink.messages if m.key is None]
    assert len(digests) == 45 and {m.key for m in digests} <= expected
    day = summary.latest(conn, DAY)
    assert day is not None and day.quota_deferred == 15 and day.ledger["deferred"] == {"quota": 15}
    assert "15 waiting for the daily quota" in run_note.note(day).splitlines()[0]
    assert len(alerts) == 1 and alerts[0].rcpt_tos == ["dados@fintera.com.br"]
    assert "daily quota was reached, 15 digests wait" in alerts[0].message["Subject"]


NEXT_DAY = DAY + dt.timedelta(days=1)
NEXT_RUN_AFTER = RUN_AFTER + dt.timedelta(days=1)


def test_the_next_day_s_run_carries_the_quota_s_leftovers_over_unless_its_parameters_narrow_it(
        airflow_env, conn, smtp_sink, monkeypatch):
    first = seed_day(conn, DAY, entities=30, users_per_entity=2)  # 60 digests, 2 batches
    second = seed_day(conn, NEXT_DAY, entities=10, users_per_entity=2, first_id=5000)  # 20 digests
    monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "2")
    monkeypatch.setenv("BILLING_DIGEST_MIN_BATCH_SIZE", "10")
    monkeypatch.setenv("BILLING_DIGEST_SMTP_MAX_MESSAGES_PER_DAY", "45")

    assert fresh_dag(retry_seconds=1).test(logical_date=RUN_AFTER).state == "success"  # 45 sent, 15 wait
    conn.execute("UPDATE digest.send_quota SET bucket = bucket - interval '25 hours'")  # a day later: quota free

    # A run of the next day for some companies only carries nothing over, not even theirs: it was asked for
    # those companies' digests of its own day (one has some, the other has digests of 27/11 waiting).
    one = sorted({entity for _, entity, _ in second})[0]
    waiting = conn.execute("SELECT min(entity_id) FROM digest.deliveries WHERE reason = 'quota'").fetchone()[0]
    narrowed = fresh_dag(retry_seconds=1).test(logical_date=NEXT_RUN_AFTER,
                                               run_conf={"entity_ids": [one, waiting]})
    assert narrowed.state == "success"
    assert conn.execute("SELECT count(*) FROM digest.deliveries WHERE reason = 'quota'").fetchone()[0] == 15

    run = fresh_dag(retry_seconds=1).test(logical_date=NEXT_RUN_AFTER)  # the next day's run as scheduled

    assert run.state == "success"
    counts = smtp_sink.counts()
    assert set(counts) == first | second and max(counts.values()) == 1  # both days whole, each digest once
    assert conn.execute("SELECT count(*) FROM digest.deliveries WHERE state <> 'sent'").fetchone()[0] == 0
    labels = [ti.rendered_map_index or "" for ti in sorted(run.get_task_instances(), key=lambda ti: ti.map_index)
              if ti.task_id == "deliver"]
    carried = [label for label in labels if label.startswith("carried over from 27/11: batch ")]
    assert carried and labels[:len(carried)] == carried and len(labels) > len(carried)  # planned first, then its own
    day = summary.latest(conn, NEXT_DAY)
    assert day is not None and day.carried == {DAY.isoformat(): {"sent": 15}} and day.quota_waiting == {}
    assert day.emails_sent_this_run == len(second) - 2  # its own day: the rest after the narrowed run's company
    assert "15 of 15 carried over sent" in run_note.note(day).splitlines()[0]
