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

The parts: this module runs a batch; ``prepare`` locks, reads, decides and renders (the calling thread);
``sender`` sends over SMTP (its own thread) with ``retry``'s policy and ``pace``'s slots; ``accounting``
counts and records each outcome (on the ``ledger_writer`` thread); ``jobs`` is what passes between them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from billing_digest import sql
from billing_digest.delivery.accounting import Accounting
from billing_digest.delivery.jobs import Halt
from billing_digest.delivery.ledger import DEFERRED, sendable_states
from billing_digest.delivery.ledger_writer import LedgerUnavailable, make_durable
from billing_digest.delivery.options import DeliveryOptions
from billing_digest.delivery.pace import PaceConfig, SharedPace
from billing_digest.delivery.prepare import DeliveryIncomplete, Preparer
from billing_digest.delivery.quota import QUOTA_OUTCOME, QUOTA_REASON, DailyQuota
from billing_digest.delivery.retry import RetryPolicy
from billing_digest.delivery.sender import SmtpSender
from billing_digest.delivery.smtp import SmtpClient, SmtpSettings
from billing_digest.handoffs import BatchReport
from billing_digest.mail.render import Renderer

log = logging.getLogger(__name__)

__all__ = ["BatchSender", "DeliveryIncomplete", "DeliveryOptions", "deliver_batch"]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pace_config(smtp: SmtpSettings, options: DeliveryOptions) -> PaceConfig:
    """One limiter per SMTP endpoint: every batch sending there shares its rate."""
    return PaceConfig(name=smtp.endpoint, max_per_second=options.max_messages_per_second,
                      throttle_pause_seconds=options.throttle_pause_seconds)


class BatchSender:
    """Sends one batch; construct, then :meth:`run`.

    Two threads, so that rendering overlaps the SMTP round trips: on this one the :class:`Preparer`
    locks and reads the ledger rows chunk by chunk, decides who may receive, and renders the messages
    (at most ``lookahead`` ahead of the SMTP connection); the :class:`SmtpSender` thread sends them in
    order.

    ``sleep`` (default: a pause the batch's stop interrupts) and ``now`` are the seams tests inject.
    """

    def __init__(self, conn: psycopg.Connection, smtp: SmtpSettings, renderer: Renderer,
                 digest_date: dt.date, batch: int, options: DeliveryOptions,
                 sleep: Callable[[float], object] | None = None, now: Callable[[], dt.datetime] = _utc_now):
        self.conn, self.smtp_settings, self.renderer = conn, smtp, renderer
        self.digest_date, self.batch, self.options = digest_date, batch, options
        self.halt = Halt()
        self.sleep, self.now = sleep or self.halt.wait, now
        self.accounting = Accounting(conn, options, now)
        self.smtp_connections = 0
        self._sender: SmtpSender | None = None
        self.quota = DailyQuota(conn, smtp.endpoint, options.max_messages_per_day,
                                options.quota_window_seconds)

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(self.accounting.outcomes)

    def run(self) -> BatchReport:
        started_at = self.now()
        self.conn.autocommit = True  # each outcome in its own commit
        make_durable(self.conn)
        states = sendable_states(self.options.resend, redirect=bool(self.options.redirect_to))
        if self.options.carried_over:  # the daily quota's leftovers of an earlier day (plan.plan_carry_over)
            states = [DEFERRED]
        candidates = sql.rows(self.conn, "deliver/batch_candidates", digest_date=self.digest_date, batch=self.batch,
                           states=states, entity_ids=list(self.options.entity_ids) if self.options.entity_ids else None,
                           only_reason=QUOTA_REASON if self.options.carried_over else None,
                           run_id=self.options.run_id)
        rows = [(r["id"], r["entity_id"]) for r in candidates]
        log.info("batch %s of %s: %d digests to consider", self.batch, self.digest_date, len(rows))
        client = SmtpClient(self.smtp_settings)
        if not self.options.dry_run:
            self._sender = SmtpSender(
                str(self.batch), client, self.renderer.sender_addr, self.accounting, RetryPolicy(self.options),
                SharedPace(self.conn, pace_config(self.smtp_settings, self.options), self.sleep),
                self.halt, self.sleep, self.options.lookahead, quota=self.quota)
            self._sender.start()
        try:
            self._prepare_rows(rows, states)
        finally:
            if self._sender is not None:
                self._sender.finish()
            client.close()
            self.smtp_connections = client.connections
            self.accounting.record_bounces(f"batch {self.batch} of {self.digest_date}", self.digest_date)
        return self._report(started_at)

    def _prepare_rows(self, rows: list[tuple[int, int]], states: list[str]) -> None:
        preparer = Preparer(f"batch {self.batch} of {self.digest_date}", self.conn, self.renderer, self.digest_date,
                            self.options, self.accounting, self.halt, self._sender, self.sleep, self.now,
                            quota_reached=self.quota.reached)
        try:
            preparer.prepare_all(rows, states)
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
        if outcomes.get(QUOTA_OUTCOME):  # not a failure: a retry could not send them before the quota frees up
            log.warning("batch %s of %s: %d digest(s) left deferred by the provider's daily quota (%d per %.0f s); "
                        "a later run of the day sends them", self.batch, self.digest_date, outcomes[QUOTA_OUTCOME],
                        self.options.max_messages_per_day, self.options.quota_window_seconds)
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


def deliver_batch(conn: psycopg.Connection, smtp: SmtpSettings, renderer: Renderer, digest_date: dt.date,
                  batch: int, options: DeliveryOptions, **kwargs: Any) -> BatchReport:
    return BatchSender(conn, smtp, renderer, digest_date, batch, options, **kwargs).run()
