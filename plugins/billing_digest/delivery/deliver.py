"""Send one batch of digests: one e-mail per (user, entity), over one SMTP connection, at the cluster's
pace; a digest is recorded 'sent' once, and at most the message in flight at a crash is sent twice.

Guarantees (see docs/delivery.md):
- a ledger row becomes 'sent' only after the SMTP server accepted its message, and a row
  already 'sent' is never sent again (unless a deliberate re-send is asked for);
- rows are held by PostgreSQL session advisory locks while they are sent, so two runs of
  the same day at once never send the same row, and a killed worker's locks vanish with it;
  rows another session holds are waited for and read again, so a batch succeeds only when
  every row it was given has an outcome (the holder may die without sending them);
- who receives is decided now: a user who lost access or turned the alert off since the
  digests were built is skipped;
- 5xx for one recipient fails that digest only; 4xx and dropped connections are retried
  with backoff, then left 'deferred' for the task's retry; no SMTP server -> the task fails;
  a throttle reply pauses the connection and cuts the cluster's rate, and the message is sent
  again in this run (delivery/retry.py, delivery/pace.py, docs/provider-pace.md);
- every ledger write is durable when its commit returns (``synchronous_commit`` is never
  ``off`` on this session): a crash of the worker, of PostgreSQL or of the SMTP server leaves
  at most the message in flight sent but not recorded, and the retry sends only that one again.

The parts: this module locks, reads, decides and renders (the calling thread); ``sender`` sends over
SMTP (its own thread) with ``retry``'s policy and ``pace``'s slots; ``accounting`` counts and records
each outcome (on the ``ledger_writer`` thread); ``jobs`` is what passes between them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from billing_digest import NOTIFICATION_KIND
from billing_digest.delivery.accounting import Accounting, query
from billing_digest.delivery.eligibility import ineligible_reason
from billing_digest.delivery.jobs import Halt, Job, Mark, Send, Unlock, chunks
from billing_digest.delivery.ledger import LOCK_KEY, sendable_states
from billing_digest.delivery.ledger_writer import LedgerUnavailable, make_durable
from billing_digest.delivery.options import DeliveryOptions
from billing_digest.delivery.pace import PaceConfig, SharedPace
from billing_digest.delivery.retry import RetryPolicy
from billing_digest.delivery.sender import SmtpSender
from billing_digest.delivery.smtp import SmtpClient, SmtpSettings
from billing_digest.handoffs import BatchReport
from billing_digest.mail.render import Recipient, Renderer
from billing_digest.payload import EntityDigest

log = logging.getLogger(__name__)

__all__ = ["BatchSender", "DeliveryIncomplete", "DeliveryOptions", "deliver_batch"]


class DeliveryIncomplete(RuntimeError):
    """Some digests of the batch were deferred (transient SMTP failures): retry the task."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pace_config(smtp: SmtpSettings, options: DeliveryOptions) -> PaceConfig:
    """One limiter per SMTP endpoint: every batch sending there shares its rate."""
    return PaceConfig(name=f"{smtp.host}:{smtp.port}", max_per_second=options.max_messages_per_second,
                      throttle_pause_seconds=options.throttle_pause_seconds)


class BatchSender:
    """Sends one batch; construct, then :meth:`run`.

    Two threads, so that rendering overlaps the SMTP round trips: this one locks and reads the ledger
    rows chunk by chunk, decides who may receive, and renders the messages (at most ``lookahead``
    ahead of the SMTP connection); the :class:`SmtpSender` thread sends them in order.

    ``sleep`` (default: a pause the batch's stop interrupts) and ``now`` are the seams tests inject.
    """

    def __init__(self, conn: psycopg.Connection, smtp: SmtpSettings, renderer: Renderer,
                 digest_date: dt.date, batch: int, options: DeliveryOptions,
                 sleep: Callable[[float], object] | None = None, now: Callable[[], dt.datetime] = _utc_now):
        self.conn, self.smtp_settings, self.renderer = conn, smtp, renderer
        self.digest_date, self.batch, self.options = digest_date, batch, options
        self.halt = Halt()
        self.sleep, self.now = sleep or self.halt.wait, now
        self.accounting = Accounting(conn, options)
        self.smtp_connections = 0
        self._sender: SmtpSender | None = None
        self._entity_of: dict[int, int] = {}
        self._held_elsewhere: set[int] = set()  # rows another session held when this batch reached them
        self._ever_held_elsewhere: set[int] = set()

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(self.accounting.outcomes)

    def _q(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return query(self.conn, name, **params)

    def run(self) -> BatchReport:
        started_at = self.now()
        self.conn.autocommit = True  # each outcome in its own commit
        make_durable(self.conn)
        states = sendable_states(self.options.resend, redirect=bool(self.options.redirect_to))
        candidates = self._q("deliver/batch_candidates", digest_date=self.digest_date, batch=self.batch,
                             states=states, entity_ids=list(self.options.entity_ids)
                             if self.options.entity_ids else None)
        rows = [(r["id"], r["entity_id"]) for r in candidates]
        self._entity_of = dict(rows)
        log.info("batch %s of %s: %d digests to consider", self.batch, self.digest_date, len(rows))
        client = SmtpClient(self.smtp_settings)
        if not self.options.dry_run:
            self._sender = SmtpSender(
                str(self.batch), client, self.renderer.sender_addr, self.accounting, RetryPolicy(self.options),
                SharedPace(self.conn, pace_config(self.smtp_settings, self.options), self.sleep),
                self.halt, self.sleep, self.options.lookahead)
            self._sender.start()
        try:
            self._prepare_rows(rows, states)
        finally:
            if self._sender is not None:
                self._sender.finish()
            client.close()
            self.smtp_connections = client.connections
        return self._report(started_at)

    def _prepare_rows(self, rows: list[tuple[int, int]], states: list[str]) -> None:
        try:
            for chunk in chunks(rows, self.options.chunk_size):
                if self.halt.is_set():
                    break
                self._run_chunk(chunk, states)
            self._take_rows_held_elsewhere(states)
        except BaseException as exc:
            self.halt.stop()  # e.g. the task is being killed: send nothing more that is queued
            if isinstance(exc, psycopg.OperationalError):
                raise self._ledger_lost(exc) from exc
            raise

    def _report(self, started_at: dt.datetime) -> BatchReport:
        error = self.halt.error
        if isinstance(error, psycopg.OperationalError):
            raise self._ledger_lost(error) from error
        if error is not None:
            raise error
        if self.halt.stopped_early:
            self.accounting.count("stopped_early")
        outcomes = self.accounting.outcomes
        log.info("batch %s of %s done: %s", self.batch, self.digest_date, dict(outcomes))
        deferred = outcomes.get("deferred", 0)
        if deferred or outcomes.get("stopped_early"):
            raise DeliveryIncomplete(
                f"batch {self.batch} of {self.digest_date}: {deferred} digest(s) deferred after transient "
                f"SMTP failures; the task retry will send them (nothing already accepted is sent again)")
        return self.accounting.report(self.digest_date, self.batch, self.smtp_connections, started_at, self.now())

    def _ledger_lost(self, exc: BaseException) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"batch {self.batch} of {self.digest_date}: the ledger's PostgreSQL connection failed "
            f"({type(exc).__name__}: {str(exc).strip()[:300]}); the task retry sends the digests not recorded as "
            f"sent (outcomes so far: {self.outcomes})")

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
                    f"batch {self.batch} of {self.digest_date}: {len(self._held_elsewhere)} digest(s) still held by "
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
        locked = [r["id"] for r in self._q("deliver/lock_rows", ids=ids, lock_key=LOCK_KEY)]
        if len(ids) > len(locked):
            held = set(ids) - set(locked)
            self.accounting.count("locked_by_other_run", len(held - self._ever_held_elsewhere))
            self._ever_held_elsewhere |= held
            self._held_elsewhere |= held
        if not locked:
            return
        try:
            rows = self._q("deliver/load_locked", ids=locked, states=states,
                           resend=self.options.resend, run_id=self.options.run_id)
            if not rows:
                return
            entity_ids = sorted({r["entity_id"] for r in rows})
            payloads = {r["entity_id"]: r["payload"] for r in
                        self._q("deliver/load_payloads", digest_date=self.digest_date, entity_ids=entity_ids)}
            status = {(r["entity_id"], r["user_id"]): r for r in self._q(
                "deliver/recipient_status", entity_ids=[r["entity_id"] for r in rows],
                user_ids=[r["user_id"] for r in rows], kind=NOTIFICATION_KIND)}
            seen: set[tuple[int, str]] = set()
            for row in rows:
                if self.halt.is_set():
                    return
                self._prepare(row, payloads.get(row["entity_id"]), status[(row["entity_id"], row["user_id"])], seen)
        finally:
            # The locks are released after the chunk's last outcome is recorded.
            self._emit(Unlock(locked))

    def _emit(self, job: Job) -> None:
        if self._sender is None:  # nothing is sent (dry run): record here
            assert not isinstance(job, Send)
            self.accounting.record(job)
        else:
            self._sender.put(job)

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
        email = status["email"].strip()
        if (row["entity_id"], email.lower()) in seen:
            self._emit(Mark(row, "skipped", "duplicate_address"))
            return
        seen.add((row["entity_id"], email.lower()))
        recipient = Recipient(row["user_id"], status["user_name"] or row["recipient_name"] or "", email)
        envelope_to = self.options.redirect_to or email
        message_id, message = self.renderer.message(payload, recipient, self.now(),
                                                    envelope_to=self.options.redirect_to)
        if self.options.dry_run:
            self.accounting.count("dry_run")
            return
        self._emit(Send(row, message_id, message, envelope_to))


def deliver_batch(conn: psycopg.Connection, smtp: SmtpSettings, renderer: Renderer, digest_date: dt.date,
                  batch: int, options: DeliveryOptions, **kwargs: Any) -> BatchReport:
    return BatchSender(conn, smtp, renderer, digest_date, batch, options, **kwargs).run()
