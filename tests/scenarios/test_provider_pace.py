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
