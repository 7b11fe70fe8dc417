"""The provider's daily quota (SES's "maximum send quota", messages per rolling 24 hours), cluster-wide:
``smtp_max_messages_per_day``. Every message is reserved on the shared limiter in the billing PostgreSQL
before it is sent (include/sql/pace/quota_take.sql: a counter per time bucket, serialised on the limiter's
row), and given back when it is not accepted. So all ``deliver`` tasks of all runs together never send
past the quota; a worker killed with a reservation leaves it counted (fewer, never more).

When the quota is reached the batch's remaining digests are left ``deferred`` with reason ``quota``, without
RCPT: the day merely has to wait, so the batch ends successfully (no task retry is spent) and the run says
so (note, summary, ``alert_email``). Deferred rows are sendable: a later run of the day sends them.
Why a trailing window rather than the provider's calendar day: docs/provider-pace.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import psycopg

from billing_digest import sql
from billing_digest.delivery.pace import PaceUnavailable

log = logging.getLogger(__name__)

QUOTA_REASON = "quota"
QUOTA_OUTCOME = "deferred_quota"  # the batch report's outcome for digests left for the quota


class DailyQuota:
    """One batch's handle on the cluster's daily quota (``limit`` 0: none). :meth:`reserve` before a message
    (False: the quota is reached, from then on for the whole batch), :meth:`release` when it was not
    accepted. ``reached`` is shared with the batch's preparing thread (no message rendered past it)."""

    def __init__(self, conn: psycopg.Connection, name: str, limit: int, window_seconds: float = 86400.0):
        self.conn, self.name, self.limit, self.window = conn, name, limit, window_seconds
        self.reached = threading.Event()
        self._bucket: dt.datetime | None = None  # of the reservation in hand
        self.remaining: int | None = None

    def reserve(self) -> bool:
        if self.limit <= 0:
            return True
        if self.reached.is_set():
            return False
        try:
            row = self.conn.execute(sql.load("pace/quota_take"), {"name": self.name, "limit": self.limit,
                                                                  "window": self.window, "n": 1}).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            raise PaceUnavailable(f"smtp_max_messages_per_day is {self.limit} but the quota's table is missing "
                                  f"({exc.diag.message_primary}): apply include/sql/schema/006_pace.sql") from None
        assert row is not None
        granted, self._bucket, self.remaining = row
        if granted < 1:
            self.reached.set()
            log.warning("the daily quota of %d messages per %.0f s is reached (%s): the rest of the batch is "
                        "left deferred (reason %s) for a later run", self.limit, self.window, self.name, QUOTA_REASON)
            return False
        return True

    def release(self) -> None:
        """The reserved message was not accepted: it does not count toward the quota."""
        if self.limit <= 0 or self._bucket is None:
            return
        self.conn.execute(sql.load("pace/quota_release"), {"name": self.name, "bucket": self._bucket, "n": 1})
        self._bucket = None

    def consumed(self) -> None:
        """The reserved message was accepted: it stays counted."""
        self._bucket = None
