"""The ledger's writes: durable on commit, in order in their own thread, the first failure stops the rest."""

from __future__ import annotations

import threading

import psycopg
import pytest

from billing_digest.delivery.ledger_writer import LedgerWriter, make_durable


def test_the_ledger_session_never_commits_asynchronously(conn, db_dsn):
    dbname = conn.info.dbname
    conn.execute(f'ALTER DATABASE "{dbname}" SET synchronous_commit = off')  # a server/database default
    with psycopg.connect(db_dsn, autocommit=True) as session:
        assert session.execute("SHOW synchronous_commit").fetchone() == ("off",)
        make_durable(session)
        assert session.execute("SHOW synchronous_commit").fetchone() == ("on",)
        session.execute("SET synchronous_commit = remote_apply")  # stronger: kept
        make_durable(session)
        assert session.execute("SHOW synchronous_commit").fetchone() == ("remote_apply",)


def test_writes_run_in_order_and_wait_returns_once_all_are_done():
    done: list[int] = []
    gate = threading.Event()
    writer = LedgerWriter("test-ledger")
    writer.submit(lambda: (gate.wait(5), done.append(1)))
    writer.submit(lambda: done.append(2))
    waited = threading.Thread(target=writer.wait)
    waited.start()
    waited.join(0.3)
    assert waited.is_alive() and done == []  # wait() blocks while a write is outstanding
    gate.set()
    waited.join(5)
    assert done == [1, 2]
    writer.close()


def test_the_first_failed_write_stops_every_later_one_and_is_raised_by_wait():
    done: list[str] = []
    writer = LedgerWriter("test-ledger")
    writer.submit(lambda: done.append("a"))
    writer.submit(lambda: (_ for _ in ()).throw(psycopg.OperationalError("server closed the connection")))
    writer.submit(lambda: done.append("c"))
    with pytest.raises(psycopg.OperationalError, match="server closed"):
        writer.wait()
    writer.close()
    assert done == ["a"]
