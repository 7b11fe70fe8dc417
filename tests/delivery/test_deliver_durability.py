"""The ledger's writes are durable, a ledger lost mid-batch fails the batch cleanly with only the
message in flight unrecorded, and a batch is done only when every row it was given has an outcome,
even rows another session held (the crash tests in tests/scenarios/ do the same with real crashes)."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from billing_digest import build, extract
from billing_digest.delivery.deliver import DeliveryIncomplete, DeliveryOptions, deliver_batch
from billing_digest.delivery.ledger import LOCK_KEY
from billing_digest.delivery.ledger_writer import LedgerUnavailable
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings
from billing_digest.window import window_for_date
from tests.scenarios.crashkit import ledger_states, outcome, seed_day

DAY = dt.date(2026, 11, 27)
SETTINGS = Settings(unsubscribe_secret="test")


def test_a_batch_on_a_database_that_defaults_to_async_commit_still_commits_each_mark(conn, db_dsn, smtp_sink):
    conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET synchronous_commit = off')
    with psycopg.connect(db_dsn, autocommit=True) as session:
        expected = seed_day(session, DAY, entities=2)
        extract.stage_errors(session, window_for_date(DAY))
        build.build_and_stage(session, window_for_date(DAY), SETTINGS)
        deliver_batch(session, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, 0, DeliveryOptions())
        assert session.execute("SHOW synchronous_commit").fetchone() == ("on",)
    assert set(smtp_sink.counts()) == expected


def test_ledger_lost_mid_batch_fails_the_batch_and_leaves_only_the_message_in_flight_unsent(
        conn, db_dsn, smtp_sink):
    expected = seed_day(conn, DAY, entities=6)
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), SETTINGS)
    with psycopg.connect(db_dsn, autocommit=True) as session:
        calls = {"n": 0}

        def ledger_dies_at_the_third_message(envelope) -> None:
            calls["n"] += 1
            if calls["n"] == 3:  # the server holds message 3 when the ledger's backend dies
                conn.execute("SELECT pg_terminate_backend(%s)", (session.info.backend_pid,))
            return None

        smtp_sink.faults.on_data = ledger_dies_at_the_third_message
        with pytest.raises(LedgerUnavailable, match="batch 0 of 2026-11-27: the ledger's PostgreSQL connection"):
            deliver_batch(session, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, 0,
                          DeliveryOptions(run_id="first", chunk_size=2))
    assert len(smtp_sink.messages) == 3
    assert ledger_states(conn, DAY) == {"sent": 2, "pending": 4}  # message 3 accepted, not recorded

    smtp_sink.faults.on_data = None
    deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, 0,
                  DeliveryOptions(run_id="retry"))
    result = outcome(smtp_sink.counts(), expected)
    assert (result.lost, result.duplicates, result.unexpected) == (0, 1, 0)  # message 3, same Message-ID
    assert ledger_states(conn, DAY) == {"sent": 6}
    ids = [m.message["Message-ID"] for m in smtp_sink.messages]
    assert ids[2] in ids[3:]


def _hold(dsn: str, ids: list[int]) -> psycopg.Connection:
    """Another session (a concurrent run, or an orphaned task runner) holding these rows' locks."""
    holder = psycopg.connect(dsn, autocommit=True)
    for row_id in ids:
        holder.execute("SELECT pg_advisory_lock(%s::int, (%s::bigint %% 2147483647)::int)", (LOCK_KEY, row_id))
    return holder


def test_rows_held_by_a_session_that_dies_without_sending_them_are_sent_by_the_batch(conn, db_dsn, smtp_sink):
    expected = seed_day(conn, DAY, entities=4)
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), SETTINGS)
    ids = [r[0] for r in conn.execute("SELECT id FROM digest.deliveries ORDER BY id").fetchall()]
    holder = _hold(db_dsn, ids[1:3])
    threading.Timer(1.0, holder.close).start()  # it dies, its locks vanish, it sent nothing
    report = deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, 0,
                           DeliveryOptions(chunk_size=1))
    assert report.outcomes == {"locked_by_other_run": 2, "sent": 4}
    assert smtp_sink.counts() == {key: 1 for key in expected}
    assert ledger_states(conn, DAY) == {"sent": 4}


def test_rows_held_too_long_fail_the_batch_and_its_retry_sends_them(conn, db_dsn, smtp_sink):
    expected = seed_day(conn, DAY, entities=4)
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), SETTINGS)
    ids = [r[0] for r in conn.execute("SELECT id FROM digest.deliveries ORDER BY id").fetchall()]
    with _hold(db_dsn, ids[:1]):
        with pytest.raises(DeliveryIncomplete, match="1 digest.s. still held by another session"):
            deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, 0,
                          DeliveryOptions(held_rows_wait_seconds=0.5))
        assert ledger_states(conn, DAY) == {"sent": 3, "pending": 1}
    deliver_batch(conn, SmtpSettings(port=smtp_sink.port), Renderer(SETTINGS), DAY, 0, DeliveryOptions())
    assert smtp_sink.counts() == {key: 1 for key in expected}


def test_no_message_is_accepted_before_the_previous_one_is_recorded(conn, db_dsn, smtp_sink):
    """The 'sent' mark of message N commits while message N+1 travels, but N+1's end of data waits for
    it: a crash can leave at most one accepted message unrecorded. Here N's mark is blocked (another
    session holds its row): N+1 must not be accepted until the mark goes through."""
    seed_day(conn, DAY, entities=3)
    extract.stage_errors(conn, window_for_date(DAY))
    build.build_and_stage(conn, window_for_date(DAY), SETTINGS)
    first_id = conn.execute("SELECT min(id) FROM digest.deliveries WHERE state = 'pending'").fetchone()[0]
    blocker = psycopg.connect(db_dsn)
    blocker.execute("SELECT 1 FROM digest.deliveries WHERE id = %s FOR UPDATE", (first_id,))  # the mark waits
    done = threading.Event()
    with psycopg.connect(db_dsn, autocommit=True) as session:
        worker = threading.Thread(target=lambda: (deliver_batch(
            session, SmtpSettings(port=smtp_sink.port, timeout=10), Renderer(SETTINGS), DAY, 0, DeliveryOptions()),
            done.set()))
        worker.start()
        deadline = dt.datetime.now() + dt.timedelta(seconds=10)
        while len(smtp_sink.messages) < 1 and dt.datetime.now() < deadline:
            threading.Event().wait(0.05)
        threading.Event().wait(1.0)  # time enough for message 2 to be accepted, were it not gated
        accepted_while_blocked = len(smtp_sink.messages)
        blocker.rollback()
        blocker.close()
        worker.join(30)
    assert accepted_while_blocked == 1
    assert done.is_set() and ledger_states(conn, DAY) == {"sent": len(smtp_sink.messages)}
