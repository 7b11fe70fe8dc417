"""A batch's preparing side (:class:`Preparer`), on the calling thread: lock the ledger rows chunk by
chunk, read them again, decide who may receive now, render the messages, and hand each outcome or
message to the SMTP sender thread (or record it directly when nothing is sent: a dry run).

Rows another session holds (a concurrent run of the day, or what a killed worker left behind) are
waited for and read again, so a batch is done only when every row it was given has an outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from billing_digest import NOTIFICATION_KIND, sql
from billing_digest.bounces import verp_sender
from billing_digest.delivery import suppression
from billing_digest.delivery.accounting import Accounting
from billing_digest.delivery.eligibility import ineligible_reason
from billing_digest.delivery.jobs import Halt, Job, Lift, Mark, Send, Unlock, chunks
from billing_digest.delivery.ledger import LOCK_KEY
from billing_digest.delivery.options import DeliveryOptions
from billing_digest.delivery.quota import QUOTA_REASON
from billing_digest.delivery.sender import SmtpSender
from billing_digest.mail.addresses import parse
from billing_digest.mail.render import Recipient, Renderer
from billing_digest.payload import EntityDigest

log = logging.getLogger(__name__)


class DeliveryIncomplete(RuntimeError):
    """Some digests of the batch were deferred (transient SMTP failures): retry the task."""


class Preparer:
    """Prepares the rows ``(id, entity_id)`` of one batch, in their sending order: :meth:`prepare_all`."""

    def __init__(self, name: str, conn: psycopg.Connection, renderer: Renderer, digest_date: dt.date,
                 options: DeliveryOptions, accounting: Accounting, halt: Halt, sender: SmtpSender | None,
                 sleep: Callable[[float], object], now: Callable[[], dt.datetime],
                 quota_reached: threading.Event):
        self.quota_reached = quota_reached  # the daily quota's (DailyQuota.reached), set by the sender thread
        self.name, self.conn, self.renderer, self.digest_date = name, conn, renderer, digest_date
        self.options, self.accounting, self.halt, self.sender = options, accounting, halt, sender
        self.sleep, self.now = sleep, now
        self._entity_of: dict[int, int] = {}
        self._held_elsewhere: set[int] = set()  # rows another session held when this batch reached them
        self._ever_held_elsewhere: set[int] = set()

    def prepare_all(self, rows: list[tuple[int, int]], states: list[str]) -> None:
        self._entity_of = dict(rows)
        self._lift_expired()
        for chunk in chunks(rows, self.options.chunk_size):
            if self.halt.is_set():
                break
            self._run_chunk(chunk, states)
        self._take_rows_held_elsewhere(states)

    def _take_rows_held_elsewhere(self, states: list[str]) -> None:
        """A batch is done only when each of its rows has an outcome. Rows another session held when
        the batch reached them (a concurrent run of the day, or the task runner a killed worker left
        behind) are waited for, then locked and read again: those the other session sent drop out,
        those it left (it died) are sent now. Still held after ``held_rows_wait_seconds``: the task
        fails, and its retry looks again."""
        deadline = self.now() + dt.timedelta(seconds=self.options.held_rows_wait_seconds)
        pause = 0.2
        while self._held_elsewhere and not self.halt.is_set():
            if self.now() > deadline:
                raise DeliveryIncomplete(
                    f"{self.name}: {len(self._held_elsewhere)} digest(s) still held by "
                    f"another session after {self.options.held_rows_wait_seconds:.0f}s; the task retry looks again")
            self.sleep(pause)
            pause = min(pause * 2, 5.0)
            held = [i for i in self._entity_of if i in self._held_elsewhere]  # in the batch's sending order
            self._held_elsewhere.clear()
            for chunk in chunks([(i, self._entity_of[i]) for i in held], self.options.chunk_size):
                if self.halt.is_set():
                    break
                self._run_chunk(chunk, states)

    def _run_chunk(self, ids: list[int], states: list[str]) -> None:
        locked = [r["id"] for r in sql.rows(self.conn, "deliver/lock_rows", ids=ids, lock_key=LOCK_KEY)]
        if len(ids) > len(locked):
            held = set(ids) - set(locked)
            self.accounting.count("locked_by_other_run", len(held - self._ever_held_elsewhere))
            self._ever_held_elsewhere |= held
            self._held_elsewhere |= held
        if not locked:
            return
        try:
            rows = sql.rows(self.conn, "deliver/load_locked", ids=locked, states=states,
                           resend=self.options.resend, run_id=self.options.run_id)
            if not rows:
                return
            entity_ids = sorted({r["entity_id"] for r in rows})
            payloads = {r["entity_id"]: r["payload"] for r in sql.rows(
                self.conn, "deliver/load_payloads", digest_date=self.digest_date, entity_ids=entity_ids)}
            status = {(r["entity_id"], r["user_id"]): r for r in sql.rows(
                self.conn, "deliver/recipient_status", entity_ids=[r["entity_id"] for r in rows],
                user_ids=[r["user_id"] for r in rows], kind=NOTIFICATION_KIND)}
            self._check_suppressions(status)
            seen: set[tuple[int, str]] = set()
            for row in rows:
                if self.halt.is_set():
                    return
                self._prepare(row, payloads.get(row["entity_id"]), status[(row["entity_id"], row["user_id"])], seen)
        finally:
            # The locks are released after the chunk's last outcome is recorded.
            self._emit(Unlock(locked))

    # -- the suppression list (issue 15) ---------------------------------------------------------
    def _lift_expired(self) -> None:
        """Suppressions past their TTL are lifted, recorded (the send-time check already ignores them)."""
        if self.accounting.writes_ledger:
            lifted = suppression.lift(self.conn, "ttl", now=self.now())
            if lifted:
                log.info("suppression TTL over, mailed again: %d address(es)", len(lifted))

    def _check_suppressions(self, status: dict[tuple[int, int], dict[str, Any]]) -> None:
        """Marks ``status`` rows whose mailbox is suppressed now (read here; written only by the ledger
        thread: a user's former address, suppressed, is lifted there, recorded, as ``address_changed``).
        A redirect to a test address mails no recipient's mailbox: nothing is suppressed then."""
        if self.options.redirect_to:
            return
        keys = {k: a.key for k, s in status.items() if (a := parse(s["email"])) is not None}
        found = suppression.active(self.conn, sorted(set(keys.values())), now=self.now())
        for k, key in keys.items():
            status[k]["suppressed"] = key in found
        if self.accounting.writes_ledger and keys:
            users = {status[k]["user_id"]: key for k, key in keys.items()}
            self._emit(Lift(list(users), list(users.values())))

    def _verp_sender(self, row: dict[str, Any]) -> str | None:
        """``bounces+d<row id>-<tag>@domain`` when the setting ``bounce_address`` is set: a bounce that
        comes back later by e-mail names its digest (:mod:`billing_digest.bounces`)."""
        settings = self.renderer.settings
        if not settings.bounce_address or self.options.redirect_to:
            return None
        return verp_sender(settings.bounce_address, row["id"], settings.unsubscribe_secrets[0])

    def _emit(self, job: Job) -> None:
        if self.sender is None:  # nothing is sent (dry run): record here
            assert not isinstance(job, Send)
            self.accounting.record(job)
        else:
            self.sender.put(job)

    def _prepare(self, row: dict[str, Any], payload: EntityDigest | None, status: dict[str, Any],
                 seen: set[tuple[int, str]]) -> None:
        """Who may receive is decided here, now; the message is rendered and handed to the sender."""
        if payload is None:
            self._emit(Mark(row, "skipped", "no_digest"))
            return
        reason = ineligible_reason(status)
        if reason:
            log.info("skip entity=%s user=%s: %s", row["entity_id"], row["user_id"], reason)
            self._emit(Mark(row, "skipped", reason))
            return
        address = parse(status["email"])
        assert address is not None  # ineligible_reason said it is valid
        if (row["entity_id"], address.key) in seen:
            self._emit(Mark(row, "skipped", "duplicate_address"))
            return
        seen.add((row["entity_id"], address.key))
        if self.quota_reached.is_set():  # the daily quota: nothing more is rendered or sent in this batch
            self._emit(Mark(row, "deferred", QUOTA_REASON))
            return
        recipient = Recipient(row["user_id"], status["user_name"] or row["recipient_name"] or "", address.smtp)
        envelope_to = self.options.redirect_to or address.smtp
        message_id, message = self.renderer.message(payload, recipient, self.now(),
                                                    envelope_to=self.options.redirect_to)
        if self.options.dry_run:
            self.accounting.count("dry_run")
            return
        self._emit(Send(row, message_id, message, envelope_to, smtputf8=not envelope_to.isascii(),
                        envelope_from=self._verp_sender(row)))
