"""The ledger's side of a delivery: every write durable when its commit returns, in order, in a
thread of its own (:class:`LedgerWriter`), and what a batch raises when the ledger's PostgreSQL is
lost mid-batch (:class:`LedgerUnavailable`). See docs/delivery.md, "Why nothing else is sent twice".
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)


class LedgerUnavailable(RuntimeError):
    """The ledger's PostgreSQL connection failed mid-batch (e.g. the server crashed): retry the task.

    Every outcome recorded before the failure is durable; only the message in flight, if the SMTP
    server accepted it, is sent again by the retry (same Message-ID)."""


def make_durable(conn: psycopg.Connection) -> None:
    """Ledger writes on ``conn`` are on disk when their commit returns.

    ``synchronous_commit = off`` (a server, database or role default) would let a PostgreSQL crash
    forget the last 'sent' marks, whose messages the retry would then send again; an fsync costs
    ~0.1 ms, a message ~1 ms. A stronger setting (``remote_apply``, ...) is kept."""
    if conn.execute("SHOW synchronous_commit").fetchone() == ("off",):
        conn.execute("SET synchronous_commit = on")
    if conn.execute("SHOW fsync").fetchone() == ("off",):
        log.warning("the ledger's PostgreSQL runs with fsync = off: an operating-system crash can lose "
                    "'sent' marks, and their digests would be sent again")


class LedgerWriter:
    """The batch's ledger writes, in order, in a thread of their own: a message's 'sent' mark commits
    while the next message travels to the SMTP server, and :meth:`wait` (called just before that next
    message's end-of-data mark, the moment the server may accept it) makes sure it has. So at most one
    message, the one in flight, is ever accepted but not yet recorded, and the fsync of each mark
    costs no time of its own. The first failed write stops every later one and is raised by
    :meth:`wait`."""

    def __init__(self, name: str):
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._done = threading.Condition()
        self._submitted = self._finished = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)
        self._thread.start()

    def submit(self, write: Callable[[], None]) -> None:
        with self._done:
            self._submitted += 1
        self._jobs.put(write)

    def _loop(self) -> None:
        while (write := self._jobs.get()) is not None:
            try:
                if self.error is None:
                    write()
            except BaseException as exc:  # raised to the batch by wait()
                self.error = exc
            with self._done:
                self._finished += 1
                self._done.notify_all()

    def wait(self) -> None:
        """Until every write submitted so far is committed; raises the first that failed."""
        with self._done:
            target = self._submitted
            self._done.wait_for(lambda: self._finished >= target)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()
