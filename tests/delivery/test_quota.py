"""The provider's daily quota (issue 14, ``smtp_max_messages_per_day``): several deliver tasks at once, on
their own PostgreSQL connections, against a real SMTP server, send exactly the quota and leave the rest
``deferred`` (reason quota) without failing; once the quota's window has passed, a re-run of the day sends
the rest, none twice. The window is the real one (24 h): the test ages the counters instead of waiting."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from billing_digest import plan
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.quota import QUOTA_OUTCOME, DailyQuota
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.handoffs import BatchReport
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
        batches = [b.batch for b in plan.plan_batches(conn, DAY)]
    reports: list[BatchReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def one(batch: int) -> None:
        try:
            with psycopg.connect(db_dsn) as conn:
                start.wait()
                reports.append(deliver_batch(conn, SmtpSettings(host="127.0.0.1", port=port), Renderer(SETTINGS),
                                             DAY, batch, DeliveryOptions(run_id=run_id, max_messages_per_day=QUOTA)))
        except BaseException as exc:  # noqa: BLE001 - raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(b,)) for b in batches]
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
