"""A batch's accounting: each outcome counted for the batch's report and written to the ledger.

The writes run on the batch's :class:`~billing_digest.delivery.ledger_writer.LedgerWriter` thread, in
order, each in its own commit; a 'sent' mark is written only after the server's 250 (see deliver.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable

import psycopg

from billing_digest import sql
from billing_digest.delivery import suppression
from billing_digest.delivery.jobs import Lift, Mark, Send, Unlock
from billing_digest.delivery.ledger import LOCK_KEY
from billing_digest.delivery.options import DeliveryOptions
from billing_digest.delivery.quota import QUOTA_OUTCOME, QUOTA_REASON
from billing_digest.handoffs import BatchReport
from billing_digest.mail.addresses import parse

log = logging.getLogger(__name__)


class Accounting:
    """Outcome -> count (thread-safe), the pace's figures, and the ledger writes of outcomes."""

    def __init__(self, conn: psycopg.Connection, options: DeliveryOptions,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.conn, self.options, self.now = conn, options, now
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.throttled = 0              # throttle replies received
        self.throttle_pause_seconds = 0.0
        self.pace_wait_seconds = 0.0    # waited for a send slot of the cluster's rate
        self.bounces: list[tuple[Send, suppression.Bounce]] = []  # refusals to record when the batch ends

    def count(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.outcomes[outcome] += n

    def mark_sent(self, job: Send, attempts: int) -> None:
        if self.options.redirect_to:
            self.count("redirected")
            return
        try:
            sql.rows(self.conn, "deliver/mark_sent", id=job.row["id"], attempts=attempts, message_id=job.message_id,
                  sent_to=job.envelope_to, run_id=self.options.run_id)
        except psycopg.Error:
            # The one window of at-least-once: the server has the message, the ledger does not.
            log.error("entity=%s user=%s: accepted by the SMTP server as %s but the 'sent' mark was not "
                      "recorded; the retry sends it again with the same Message-ID",
                      job.row["entity_id"], job.row["user_id"], job.message_id)
            raise
        self.count("resent" if job.row["state"] == "sent" else "sent")

    @property
    def writes_ledger(self) -> bool:
        """A dry run or a redirect to a test address changes no ledger row (nor the suppression list)."""
        return not (self.options.dry_run or self.options.redirect_to)

    def record(self, job: Mark | Unlock | Lift) -> None:
        """One ledger write without a send: an outcome (failed, deferred, skipped), a chunk's unlock, or
        the lifting of suppressions of changed addresses."""
        if isinstance(job, Unlock):
            sql.rows(self.conn, "deliver/unlock_rows", ids=job.ids, lock_key=LOCK_KEY)
            return
        if isinstance(job, Lift):
            for address in suppression.lift(self.conn, "address_changed", user_ids=job.user_ids,
                                            addresses=job.addresses, now=self.now()):
                log.info("suppression of %s lifted: its user's address changed", address)
            return
        if job.state == "deferred" and job.reason == QUOTA_REASON:
            self.count(QUOTA_OUTCOME)  # not a failure: the day waits for the provider's daily quota
        else:
            self.count(job.state if job.state != "skipped" else f"skipped:{job.reason}")
        if not self.writes_ledger:
            return
        sql.rows(self.conn, "deliver/mark_outcome", id=job.row["id"], state=job.state, reason=job.reason,
              attempts=job.attempts, run_id=self.options.run_id)

    # -- the suppression list (issue 15) -----------------------------------------------------------
    def bounced(self, job: Send, reply: str) -> None:
        """A refusal that says the mailbox is dead or full is kept for the suppression list (sender thread)."""
        bounce = suppression.classify(reply)
        if bounce is not None and self.writes_ledger:
            self.bounces.append((job, bounce))

    def record_bounces(self, name: str, digest_date: dt.date) -> None:
        """The batch's bounces into the suppression list, once its threads are done (so no transaction
        spans another thread's ledger writes). Unless they look systemic (:func:`suppression.looks_systemic`:
        most recipients refused as unknown: a relay's fault, not the mailboxes'), then none is recorded."""
        if not self.bounces:
            return
        hard = sum(1 for _, b in self.bounces if b.kind == "hard")
        accepted = sum(self.outcomes.get(k, 0) for k in ("sent", "resent"))
        if suppression.looks_systemic(hard, accepted):
            self.count("bounces_not_recorded", len(self.bounces))
            log.error("%s: %d recipients refused as unknown and %d accepted: that looks like the SMTP server's "
                      "fault, not the mailboxes'; nothing suppressed (docs/bounces-and-addresses.md)",
                      name, hard, accepted)
            return
        try:
            for job, bounce in self.bounces:
                address = parse(job.envelope_to)
                if address is None:
                    continue
                standing = suppression.record_bounce(self.conn, address.key, job.row["user_id"], bounce, "smtp",
                                                     self.options.suppression, at=self.now(), digest_day=digest_date)
                if standing.newly_suppressed:
                    self.count("newly_suppressed")
                    log.warning("entity=%s user=%s: %s suppressed (%s %s)", job.row["entity_id"],
                                job.row["user_id"], address.key, standing.reason, bounce.status or "")
        except psycopg.Error as exc:  # the ledger's own failure is reported by the batch; the next refusal re-learns
            log.warning("%s: bounces not recorded in the suppression list: %s", name, exc)

    def report(self, digest_date: dt.date, batch: int, smtp_connections: int, started_at: dt.datetime,
               finished_at: dt.datetime) -> BatchReport:
        return BatchReport(digest_date, batch, dict(sorted(self.outcomes.items())), smtp_connections,
                           round((finished_at - started_at).total_seconds(), 3), started_at, finished_at,
                           throttled=self.throttled, throttle_pause_seconds=round(self.throttle_pause_seconds, 3),
                           pace_wait_seconds=round(self.pace_wait_seconds, 3))
