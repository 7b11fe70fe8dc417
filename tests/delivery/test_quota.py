"""The provider's daily quota (issue 14, ``smtp_max_messages_per_day``): several deliver tasks at once, on
their own PostgreSQL connections, against a real SMTP server, send exactly the quota and leave the rest
``deferred`` (reason quota) without failing; once the quota's window has passed, a re-run of the day sends
the rest, none twice; and the next day's run carries them over (only those, only within its look-back, only
the latest day's run). The window is the real one (24 h): the test ages the counters instead of waiting."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from billing_digest import plan, summary
from billing_digest.airflow_glue import run_note
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.quota import QUOTA_OUTCOME, DailyQuota
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.handoffs import BatchPlan, BatchReport, BuiltDay
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from devtools.throttle_sink import RateGate
from tests.scenarios.crashkit import seed_and_build_day

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="test-secret-of-sixteen", max_batches=3, min_batch_size=10)
QUOTA = 35  # of 60 digests, in 3 batches sent at once: the rest (25) fits in the next window


@pytest.fixture
def day(conn):
    return seed_and_build_day(conn, DAY, SETTINGS)


def _run_day_concurrently(db_dsn: str, port: int, run_id: str) -> list[BatchReport]:
    """Every batch of the day at once, each on its own connection (as parallel deliver tasks)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        batches = plan.plan_batches(conn, DAY)
    return [r for _, r in _deliver_concurrently(db_dsn, port, [(run_id, b) for b in batches], QUOTA)]


def _deliver_concurrently(db_dsn: str, port: int, plans: list[tuple[str, BatchPlan]],
                          quota: int) -> list[tuple[str, BatchReport]]:
    """Each (run id, planned batch) at once, each on its own connection (as parallel deliver tasks), as the DAG's
    deliver does: a carried-over batch with ``carried_over``; each report with its run's id."""
    reports: list[tuple[str, BatchReport]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(plans))

    def one(run_id: str, batch: BatchPlan) -> None:
        try:
            with psycopg.connect(db_dsn) as conn:
                start.wait()
                options = DeliveryOptions(run_id=run_id, max_messages_per_day=quota, carried_over=batch.carried)
                reports.append((run_id, deliver_batch(conn, SmtpSettings(host="127.0.0.1", port=port),
                                                      Renderer(SETTINGS), batch.digest_date, batch.batch, options)))
        except BaseException as exc:  # noqa: BLE001 - raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=p) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors  # no batch failed: the quota is not a task failure
    return reports


def test_the_daily_quota_sends_exactly_the_quota_defers_the_rest_and_a_run_after_the_window_sends_it(
        conn, db_dsn, day, smtp_sink):
    gate = RateGate(rate=0)  # counts every message that reaches end of data
    smtp_sink.faults.on_data = gate
    first = _run_day_concurrently(db_dsn, smtp_sink.port, "day-1")

    assert len(smtp_sink.messages) == QUOTA == sum(r.outcomes.get("sent", 0) for r in first)
    assert max(smtp_sink.counts().values()) == 1
    states = conn.execute("SELECT state, reason, count(*) FROM digest.deliveries GROUP BY 1, 2 ORDER BY 1").fetchall()
    assert states == [("deferred", "quota", len(day) - QUOTA), ("sent", None, QUOTA)]
    assert sum(r.outcomes.get(QUOTA_OUTCOME, 0) for r in first) == len(day) - QUOTA
    assert all("deferred" not in r.outcomes for r in first)
    rcpts = len(smtp_sink.messages)
    conn.execute("UPDATE digest.send_quota SET bucket = bucket - interval '23 hours'")  # still within 24 h
    again = _run_day_concurrently(db_dsn, smtp_sink.port, "day-1-again")  # a re-run inside the window: nothing
    assert len(smtp_sink.messages) == rcpts and sum(r.outcomes.get("sent", 0) for r in again) == 0

    # A day and an hour have passed (a bucket of an hour counts while any part of it is within the 24 h).
    conn.execute("UPDATE digest.send_quota SET bucket = bucket - interval '2 hours'")
    second = _run_day_concurrently(db_dsn, smtp_sink.port, "day-1-next")

    assert sum(r.outcomes.get("sent", 0) for r in second) == len(day) - QUOTA
    assert set(smtp_sink.counts()) == day and max(smtp_sink.counts().values()) == 1  # the rest, nothing twice
    assert conn.execute("SELECT count(*) FROM digest.deliveries WHERE state <> 'sent'").fetchone()[0] == 0


def test_a_message_not_accepted_gives_its_reservation_back(conn):
    quota = DailyQuota(conn, "x:25", limit=2)
    assert quota.reserve() and quota.remaining == 1
    quota.release()  # refused: it does not count
    assert quota.reserve() and quota.remaining == 1
    quota.consumed()
    assert quota.reserve() and quota.remaining == 0
    quota.consumed()
    assert not quota.reserve() and quota.reached.is_set()
    other = DailyQuota(conn, "y:25", limit=1)  # one quota per SMTP endpoint
    assert other.reserve()


def test_a_batch_s_refused_messages_do_not_count_toward_the_quota(conn, day, smtp_sink):
    refused = RateGate(rate=0, reply="550 5.1.1 no such user", refuse_nth=range(1, 6))  # the first 5 recipients
    smtp_sink.faults.on_rcpt = refused
    reports = [deliver_batch(conn, SmtpSettings(host="127.0.0.1", port=smtp_sink.port), Renderer(SETTINGS), DAY,
                             b.batch, DeliveryOptions(run_id="r", max_messages_per_day=1000))
               for b in plan.plan_batches(conn, DAY)]
    sent = sum(r.outcomes.get("sent", 0) for r in reports)
    assert refused.refused == 5 and sent == len(smtp_sink.messages) == 55
    assert conn.execute("SELECT sum(used) FROM digest.send_quota").fetchone()[0] == sent  # reserved 60, 5 given back


NEXT = DAY + dt.timedelta(days=1)


def test_the_next_day_s_run_carries_the_quota_s_leftovers_over_and_sends_each_digest_once(conn, db_dsn, smtp_sink):
    first = seed_and_build_day(conn, DAY, SETTINGS)  # 60 digests in 3 batches
    _run_day_concurrently(db_dsn, smtp_sink.port, "day-1")  # the quota (35) reached: 25 wait
    other = conn.execute("UPDATE digest.deliveries SET reason = '452 4.2.2 Mailbox full' WHERE id = (SELECT min(id) "
                         "FROM digest.deliveries WHERE reason = 'quota') RETURNING entity_id, user_id").fetchone()
    second = seed_and_build_day(conn, NEXT, SETTINGS, first_id=5000)  # the next day: 60 digests of its own
    conn.execute("UPDATE digest.send_quota SET bucket = bucket - interval '25 hours'")  # the quota freed up

    carried = plan.plan_carry_over(conn, NEXT, days=3)
    own = plan.plan_batches(conn, NEXT)
    assert carried and all(b.carried and b.digest_date == DAY for b in carried)
    assert sum(b.digests for b in carried) == 24  # the quota's 25 but the row deferred for another reason
    assert carried[0].label.startswith("carried over from 27/11: batch ")
    # The next day's run (carried batches first, as the DAG maps them), and the same run twice at once (a second
    # trigger): the advisory locks keep each row to one of them.
    plans = [("day-2", b) for b in [*carried, *own]] + [("day-2-twin", b) for b in carried]
    runs = _deliver_concurrently(db_dsn, smtp_sink.port, plans, quota=70)
    reports = [r for run, r in runs if run == "day-2"]

    counts = smtp_sink.counts()
    assert max(counts.values()) == 1  # none twice
    assert sum(r.outcomes.get("sent", 0) for _, r in runs) == 70 == len(counts) - QUOTA  # the new window's quota
    assert (DAY.isoformat(), *other) not in counts  # deferred for another reason: its own run's retry's business
    states = dict(conn.execute("SELECT digest_date = %s, count(*) FILTER (WHERE state = 'sent') FROM digest.deliveries "
                               "GROUP BY 1", (DAY,)).fetchall())
    waiting = conn.execute("SELECT count(*) FROM digest.deliveries WHERE reason = 'quota'").fetchone()[0]
    assert states[True] + states[False] == QUOTA + 70 and waiting == len(first) + len(second) - 1 - QUOTA - 70
    assert {k for k in counts if k[0] == DAY.isoformat()} <= first and {k for k in counts if k[0] != DAY.isoformat()} \
        <= second

    # The run's summary and note say what it carried and sent, per day.
    built = BuiltDay(NEXT, errors=60, errors_by_topic={"nfse": 60}, entities_with_errors=30,
                     entities_without_recipient=0, digests=60, problems={})
    result = summary.summarize(conn, built, reports, "day-2", carry_over_days=3)
    assert result.carried_planned == sum(sum(r.outcomes.values()) for r in reports if r.digest_date == DAY) > 0
    assert result.carried_sent == sum(r.outcomes.get("sent", 0) for r in reports if r.digest_date == DAY)
    assert result.emails_sent_this_run == states[False]  # the run's own day, apart from what it carried
    note = run_note.note(result)
    assert f"{result.carried_sent} of {result.carried_planned} carried over sent" in note.splitlines()[0]
    assert f"carried over from earlier days (daily quota), sent: 27/11 {result.carried_sent} of " in note
    assert "carried over from 27/11/2026: sent" in summary.format_table(result)


def test_only_the_latest_day_s_run_carries_over_and_only_within_its_look_back(conn):
    seed_and_build_day(conn, DAY, SETTINGS, entities=5, users_per_entity=1)
    conn.execute("UPDATE digest.deliveries SET state = 'deferred', reason = 'quota'")  # as the quota left them
    seed_and_build_day(conn, NEXT, SETTINGS, entities=5, users_per_entity=1, first_id=3000)

    assert [(b.digest_date, b.digests) for b in plan.plan_carry_over(conn, NEXT, days=1)] == [(DAY, 5)]
    assert plan.plan_carry_over(conn, NEXT, days=0) == []  # the setting turned off
    third = DAY + dt.timedelta(days=3)
    seed_and_build_day(conn, third, SETTINGS, entities=5, users_per_entity=1, first_id=6000)
    assert plan.plan_carry_over(conn, NEXT, days=3) == []  # a later day exists: a re-run or backfill carries nothing
    assert plan.plan_carry_over(conn, third, days=2) == []  # 27/11 is 3 days back: past a 2-day look-back
    assert [b.digest_date for b in plan.plan_carry_over(conn, third, days=3)] == [DAY]

    # Past the look-back the digests stay deferred, and every run's note names their day and what to do.
    built = BuiltDay(third, errors=5, errors_by_topic={"nfse": 5}, entities_with_errors=5,
                     entities_without_recipient=0, digests=5, problems={})
    result = summary.summarize(conn, built, [], "day-4", carry_over_days=2)
    assert result.quota_waiting == {DAY.isoformat(): 5} and result.quota_waiting_beyond == {DAY.isoformat(): 5}
    assert "27/11 5 past the 2-day carry-over: no run carries them; run each of those days again" in \
        run_note.note(result)
    assert "PAST THE CARRY-OVER" in summary.format_table(result)
    within = summary.summarize(conn, built, [], "day-4", carry_over_days=4)
    assert within.quota_waiting_beyond == {} and "27/11 5 (the next day's run carries them)" in run_note.note(within)
