"""A batch's accounting: each outcome counted for the batch's report and written to the ledger.

The writes run on the batch's :class:`~billing_digest.delivery.ledger_writer.LedgerWriter` thread, in
order, each in its own commit; a 'sent' mark is written only after the server's 250 (see deliver.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from typing import Any

import psycopg

from billing_digest import sql
from billing_digest.delivery.jobs import Mark, Send, Unlock
from billing_digest.delivery.ledger import LOCK_KEY
from billing_digest.delivery.options import DeliveryOptions
from billing_digest.handoffs import BatchReport

log = logging.getLogger(__name__)


def query(conn: psycopg.Connection, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run ``include/sql/<name>.sql`` with ``params``; its rows as dicts (none for a write)."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.load(name), params)
        return cur.fetchall() if cur.description else []


class Accounting:
    """Outcome -> count (thread-safe), the pace's figures, and the ledger writes of outcomes."""

    def __init__(self, conn: psycopg.Connection, options: DeliveryOptions):
        self.conn, self.options = conn, options
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.throttled = 0              # throttle replies received
        self.throttle_pause_seconds = 0.0
        self.pace_wait_seconds = 0.0    # waited for a send slot of the cluster's rate

    def count(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.outcomes[outcome] += n

    def mark_sent(self, job: Send, attempts: int) -> None:
        if self.options.redirect_to:
            self.count("redirected")
            return
        try:
            query(self.conn, "deliver/mark_sent", id=job.row["id"], attempts=attempts, message_id=job.message_id,
                  sent_to=job.envelope_to, run_id=self.options.run_id)
        except psycopg.Error:
            # The one window of at-least-once: the server has the message, the ledger does not.
            log.error("entity=%s user=%s: accepted by the SMTP server as %s but the 'sent' mark was not "
                      "recorded; the retry sends it again with the same Message-ID",
                      job.row["entity_id"], job.row["user_id"], job.message_id)
            raise
        self.count("resent" if job.row["state"] == "sent" else "sent")

    def record(self, job: Mark | Unlock) -> None:
        """One ledger write without a send: an outcome (failed, deferred, skipped) or a chunk's unlock."""
        if isinstance(job, Unlock):
            query(self.conn, "deliver/unlock_rows", ids=job.ids, lock_key=LOCK_KEY)
            return
        self.count(job.state if job.state != "skipped" else f"skipped:{job.reason}")
        if self.options.dry_run or self.options.redirect_to:
            return
        query(self.conn, "deliver/mark_outcome", id=job.row["id"], state=job.state, reason=job.reason,
              attempts=job.attempts, run_id=self.options.run_id)

    def report(self, digest_date: dt.date, batch: int, smtp_connections: int, started_at: dt.datetime,
               finished_at: dt.datetime) -> BatchReport:
        return BatchReport(digest_date, batch, dict(sorted(self.outcomes.items())), smtp_connections,
                           round((finished_at - started_at).total_seconds(), 3), started_at, finished_at,
                           throttled=self.throttled, throttle_pause_seconds=round(self.throttle_pause_seconds, 3),
                           pace_wait_seconds=round(self.pace_wait_seconds, 3))
