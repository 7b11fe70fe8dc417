"""Send one batch of digests: one e-mail per (user, entity), exactly once, over one SMTP connection.

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
- every ledger write is durable when its commit returns (``synchronous_commit`` is never
  ``off`` on this session): a crash of the worker, of PostgreSQL or of the SMTP server leaves
  at most the message in flight sent but not recorded, and the retry sends only that one again.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg

from billing_digest import NOTIFICATION_KIND, sql
from billing_digest.bounces import verp_sender
from billing_digest.delivery import suppression
from billing_digest.delivery.eligibility import ineligible_reason
from billing_digest.delivery.ledger import LOCK_KEY, State, sendable_states
from billing_digest.delivery.ledger_writer import LedgerUnavailable, LedgerWriter, make_durable
from billing_digest.delivery.smtp import PermanentError, SmtpClient, SmtpSettings, TransientError
from billing_digest.delivery.suppression import SuppressionPolicy
from billing_digest.handoffs import BatchReport
from billing_digest.mail.addresses import parse
from billing_digest.mail.render import Recipient, Renderer
from billing_digest.payload import EntityDigest

log = logging.getLogger(__name__)


class DeliveryIncomplete(RuntimeError):
    """Some digests of the batch were deferred (transient SMTP failures): retry the task."""


@dataclass(frozen=True)
class DeliveryOptions:
    run_id: str = "manual"
    dry_run: bool = False            # render every message, send nothing, change nothing
    redirect_to: str | None = None   # send every digest of the day (any state but skipped) to this address;
    #                                  the ledger is not changed
    resend: bool = False             # deliberately send again digests already sent (recorded)
    entity_ids: tuple[int, ...] | None = None
    attempts: int = 3                # per message, on transient failures
    backoff_seconds: float = 2.0     # doubled after each transient failure
    max_consecutive_deferred: int = 5  # then stop the batch: the server is struggling
    chunk_size: int = 200
    lookahead: int = 32              # messages rendered ahead of the SMTP connection
    held_rows_wait_seconds: float = 300.0  # rows another session holds: wait this long for it to let go
    suppression: SuppressionPolicy = SuppressionPolicy()  # bounces and the suppression list (issue 15)


# What the preparing thread hands the sender thread, in order.
@dataclass(frozen=True)
class Send:
    """Send this message, then record the outcome."""

    row: dict[str, Any]
    message_id: str
    message: bytes
    envelope_to: str
    smtputf8: bool = False  # a non-ASCII address: sent only if the server offers SMTPUTF8
    envelope_from: str | None = None  # a VERP sender naming this digest (setting bounce_address), else the From


@dataclass(frozen=True)
class Mark:
    """Record an outcome without sending (skipped, or a failure decided before sending)."""

    row: dict[str, Any]
    state: State
    reason: str | None
    attempts: int = 0


@dataclass(frozen=True)
class Unlock:
    """Release a chunk's row locks: every outcome of the chunk is recorded."""

    ids: list[int]


@dataclass(frozen=True)
class Lift:
    """Lift the suppressions of these users' former addresses (their address changed; recorded)."""

    user_ids: list[int]
    addresses: list[str]


Job = Send | Mark | Unlock | Lift


def _chunks(rows: list[tuple[int, int]], size: int) -> Iterator[list[int]]:
    """Ids in chunks of about ``size``, never splitting one entity's recipients."""
    chunk: list[int] = []
    last_entity = None
    for row_id, entity_id in rows:
        if len(chunk) >= size and entity_id != last_entity:
            yield chunk
            chunk = []
        chunk.append(row_id)
        last_entity = entity_id
    if chunk:
        yield chunk


class BatchSender:
    """Sends one batch; construct, then :meth:`run`.

    Two threads, so that rendering overlaps the SMTP round trips:

    - this one locks and reads the ledger rows chunk by chunk, decides who may receive, and
      renders the messages (at most ``lookahead`` ahead of the SMTP connection);
    - the sender thread sends them in order over one SMTP connection; each outcome is written by
      the :class:`LedgerWriter` thread, in order, in its own commit: a row is 'sent' only after the
      server's 250, and the next message's end of data waits for that commit, so a worker killed at
      any point leaves at most the message in flight unrecorded, never an older one. Each chunk's
      locks are released after its last outcome is committed.
    """

    def __init__(self, conn: psycopg.Connection, smtp: SmtpSettings, renderer: Renderer,
                 digest_date: dt.date, batch: int, options: DeliveryOptions,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.conn, self.smtp_settings, self.renderer = conn, smtp, renderer
        self.digest_date, self.batch, self.options = digest_date, batch, options
        self.sleep, self.now = sleep, now
        self.outcomes: Counter[str] = Counter()
        self.smtp_connections = 0
        self._consecutive_deferred = 0
        self._envelope_from = renderer.sender_addr
        self._outcomes_lock = threading.Lock()
        self._to_sender: queue.Queue[Job | None] | None = None
        self._ledger: LedgerWriter  # the sender thread's (set when it starts)
        self._stop = threading.Event()  # a thread gave up: nothing more is prepared or sent
        self._error: BaseException | None = None
        self._stopped_early = False
        self._entity_of: dict[int, int] = {}
        self._held_elsewhere: set[int] = set()  # rows another session held when this batch reached them
        self._ever_held_elsewhere: set[int] = set()
        self._bounces: list[tuple[Send, suppression.Bounce]] = []  # refusals to record when the batch ends

    def _q(self, name: str, **params: Any) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute(sql.load(name), params)
            return cur.fetchall() if cur.description else []

    def _count(self, outcome: str, n: int = 1) -> None:
        with self._outcomes_lock:
            self.outcomes[outcome] += n

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._stop.set()

    def run(self) -> BatchReport:
        started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
        self.conn.autocommit = True  # each outcome in its own commit
        make_durable(self.conn)
        states = sendable_states(self.options.resend, redirect=bool(self.options.redirect_to))
        candidates = self._q("deliver/batch_candidates", digest_date=self.digest_date, batch=self.batch,
                             states=states, entity_ids=list(self.options.entity_ids)
                             if self.options.entity_ids else None)
        rows = [(r["id"], r["entity_id"]) for r in candidates]
        self._entity_of = dict(rows)
        self._lift_expired()
        log.info("batch %s of %s: %d digests to consider", self.batch, self.digest_date, len(rows))
        client = SmtpClient(self.smtp_settings)
        sender = None
        if not self.options.dry_run:
            self._to_sender = queue.Queue(maxsize=max(1, self.options.lookahead))
            sender = threading.Thread(target=self._sender_loop, args=(client,), daemon=True,
                                      name=f"billing-digest-smtp-{self.batch}")
            sender.start()
        try:
            for chunk in _chunks(rows, self.options.chunk_size):
                if self._stop.is_set():
                    break
                self._run_chunk(chunk, states)
            self._take_rows_held_elsewhere(states)
        except BaseException as exc:
            self._stop.set()  # e.g. the task is being killed: send nothing more that is queued
            if isinstance(exc, psycopg.OperationalError):
                raise self._ledger_lost(exc) from exc
            raise
        finally:
            if sender is not None:
                assert self._to_sender is not None
                self._to_sender.put(None)
                sender.join()
            client.close()
            self.smtp_connections = client.connections
            self._record_bounces()
        if isinstance(self._error, psycopg.OperationalError):
            raise self._ledger_lost(self._error) from self._error
        if self._error is not None:
            raise self._error
        if self._stopped_early:
            self._count("stopped_early")
        log.info("batch %s of %s done: %s", self.batch, self.digest_date, dict(self.outcomes))
        deferred = self.outcomes.get("deferred", 0)
        if deferred or self.outcomes.get("stopped_early"):
            raise DeliveryIncomplete(
                f"batch {self.batch} of {self.digest_date}: {deferred} digest(s) deferred after transient "
                f"SMTP failures; the task retry will send them (nothing already accepted is sent again)")
        return BatchReport(self.digest_date, self.batch, dict(sorted(self.outcomes.items())),
                           self.smtp_connections, round(time.perf_counter() - started, 3),
                           started_at, dt.datetime.now(dt.UTC))

    def _ledger_lost(self, exc: BaseException) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"batch {self.batch} of {self.digest_date}: the ledger's PostgreSQL connection failed "
            f"({type(exc).__name__}: {str(exc).strip()[:300]}); the task retry sends the digests not recorded as "
            f"sent (outcomes so far: {dict(self.outcomes)})")

    # -- this thread: lock, read, decide, render ----------------------------------------------
    def _take_rows_held_elsewhere(self, states: list[str]) -> None:
        """A batch is done only when each of its rows has an outcome. Rows another session held when
        the batch reached them (a concurrent run of the day, or the task runner a killed worker left
        behind) are waited for, then locked and read again: those the other session sent drop out,
        those it left (it died) are sent now. Still held after ``held_rows_wait_seconds``: the task
        fails, and its retry looks again."""
        deadline = time.monotonic() + self.options.held_rows_wait_seconds
        pause = 0.2
        while self._held_elsewhere and not self._stop.is_set():
            if time.monotonic() > deadline:
                raise DeliveryIncomplete(
                    f"batch {self.batch} of {self.digest_date}: {len(self._held_elsewhere)} digest(s) still held by "
                    f"another session after {self.options.held_rows_wait_seconds:.0f}s; the task retry looks again")
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            held = sorted(self._held_elsewhere, key=lambda i: (self._entity_of[i], i))
            self._held_elsewhere.clear()
            for chunk in _chunks([(i, self._entity_of[i]) for i in held], self.options.chunk_size):
                if self._stop.is_set():
                    break
                self._run_chunk(chunk, states)

    def _run_chunk(self, ids: list[int], states: list[str]) -> None:
        locked = [r["id"] for r in self._q("deliver/lock_rows", ids=ids, lock_key=LOCK_KEY)]
        if len(ids) > len(locked):
            held = set(ids) - set(locked)
            self._count("locked_by_other_run", len(held - self._ever_held_elsewhere))
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
            self._check_suppressions(status)
            seen: set[tuple[int, str]] = set()
            for row in rows:
                if self._stop.is_set():
                    return
                self._prepare(row, payloads.get(row["entity_id"]), status[(row["entity_id"], row["user_id"])], seen)
        finally:
            # The locks are released after the chunk's last outcome is recorded.
            self._emit(Unlock(locked))

    # -- the suppression list (issue 15) ---------------------------------------------------------
    @property
    def _writes_ledger(self) -> bool:
        return not (self.options.dry_run or self.options.redirect_to)

    def _lift_expired(self) -> None:
        """Suppressions past their TTL are lifted, recorded (the send-time check already ignores them)."""
        if self._writes_ledger:
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
        if self._writes_ledger and keys:
            users = {status[k]["user_id"]: key for k, key in keys.items()}
            self._emit(Lift(list(users), list(users.values())))

    def _verp_sender(self, row: dict[str, Any]) -> str | None:
        """``bounces+d<row id>-<tag>@domain`` when the setting ``bounce_address`` is set: a bounce that
        comes back later by e-mail names its digest (:mod:`billing_digest.bounces`)."""
        settings = self.renderer.settings
        if not settings.bounce_address or self.options.redirect_to:
            return None
        return verp_sender(settings.bounce_address, row["id"], settings.unsubscribe_secrets[0])

    def _record_bounce(self, job: Send, reply: str) -> None:
        """A refusal that says the mailbox is dead or full is kept for the suppression list (sender thread)."""
        bounce = suppression.classify(reply)
        if bounce is not None and self._writes_ledger:
            self._bounces.append((job, bounce))

    def _record_bounces(self) -> None:
        """The batch's bounces into the suppression list, once its threads are done (so no transaction
        spans another thread's ledger writes). Unless they look systemic (:func:`suppression.looks_systemic`:
        most recipients refused as unknown: a relay's fault, not the mailboxes'), then none is recorded."""
        if not self._bounces:
            return
        hard = sum(1 for _, b in self._bounces if b.kind == "hard")
        accepted = sum(self.outcomes.get(k, 0) for k in ("sent", "resent"))
        if suppression.looks_systemic(hard, accepted):
            self._count("bounces_not_recorded", len(self._bounces))
            log.error("batch %s of %s: %d recipients refused as unknown and %d accepted: that looks like the SMTP "
                      "server's fault, not the mailboxes'; nothing suppressed (docs/bounces-and-addresses.md)",
                      self.batch, self.digest_date, hard, accepted)
            return
        try:
            for job, bounce in self._bounces:
                address = parse(job.envelope_to)
                if address is None:
                    continue
                standing = suppression.record_bounce(self.conn, address.key, job.row["user_id"], bounce, "smtp",
                                                     self.options.suppression, at=self.now(),
                                                     digest_day=self.digest_date)
                if standing.newly_suppressed:
                    self._count("newly_suppressed")
                    log.warning("entity=%s user=%s: %s suppressed (%s %s)", job.row["entity_id"],
                                job.row["user_id"], address.key, standing.reason, bounce.status or "")
        except psycopg.Error as exc:  # the ledger's own failure is reported by run(); the next refusal re-learns
            log.warning("batch %s: bounces not recorded in the suppression list: %s", self.batch, exc)

    def _emit(self, job: Job) -> None:
        if self._to_sender is None:  # nothing is sent (dry run): record here
            self._record(job)
        else:
            self._to_sender.put(job)

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
        recipient = Recipient(row["user_id"], status["user_name"] or row["recipient_name"] or "", address.smtp)
        envelope_to = self.options.redirect_to or address.smtp
        message_id, message = self.renderer.message(payload, recipient, self.now(),
                                                    envelope_to=self.options.redirect_to)
        if self.options.dry_run:
            self._count("dry_run")
            return
        self._emit(Send(row, message_id, message, envelope_to, smtputf8=not envelope_to.isascii(),
                        envelope_from=self._verp_sender(row)))

    # -- sender thread: SMTP and the ledger, in order ---------------------------------------------
    def _sender_loop(self, client: SmtpClient) -> None:
        assert self._to_sender is not None
        ledger = LedgerWriter(f"billing-digest-ledger-{self.batch}")
        self._ledger = ledger
        try:
            while (job := self._to_sender.get()) is not None:
                if isinstance(job, Send) and self._stop.is_set():
                    continue  # not sent, not marked: the row stays as it was (pending or deferred)
                try:
                    if ledger.error is not None:
                        raise ledger.error
                    if isinstance(job, Send):
                        self._send(client, job)
                    else:
                        ledger.submit(partial(self._record, job))
                except BaseException as exc:  # handed to run(), which raises it
                    self._fail(exc)
            ledger.wait()  # the last outcomes are committed before the batch reports
        except BaseException as exc:
            self._fail(exc)
        finally:
            ledger.close()

    def _send(self, client: SmtpClient, job: Send) -> None:
        row, attempts = job.row, 0
        while True:
            attempts += 1
            try:
                if job.smtputf8 and not client.offers_smtputf8():
                    self._skip_needs_smtputf8(job)
                    return
                # The server may accept this message only once every earlier outcome is committed.
                client.send(job.envelope_from or self._envelope_from, job.envelope_to, job.message,
                            before_accept=self._ledger.wait, smtputf8=job.smtputf8)
            except PermanentError as exc:
                log.warning("entity=%s user=%s refused permanently: %s", row["entity_id"], row["user_id"], exc)
                self._consecutive_deferred = 0
                self._ledger.submit(partial(self._record, Mark(row, "failed", str(exc)[:500], attempts)))
                self._record_bounce(job, str(exc))
                return
            except TransientError as exc:
                if attempts < self.options.attempts:
                    delay = self.options.backoff_seconds * 2 ** (attempts - 1)
                    log.warning("entity=%s user=%s transient failure (%s), retry in %.1fs",
                                row["entity_id"], row["user_id"], exc, delay)
                    self.sleep(delay)
                    continue
                self._consecutive_deferred += 1
                self._ledger.submit(partial(self._record, Mark(row, "deferred", str(exc)[:500], attempts)))
                self._record_bounce(job, str(exc))
                if self._consecutive_deferred >= self.options.max_consecutive_deferred:
                    self._stopped_early = True  # the server is struggling: leave the rest for the retry
                    self._stop.set()
                return
            break
        self._consecutive_deferred = 0
        # Committed right after the 250, while the next message travels; before that one's end of data.
        self._ledger.submit(partial(self._mark_sent, job, attempts))

    def _skip_needs_smtputf8(self, job: Send) -> None:
        """A non-ASCII address (RFC 6531) and a server without SMTPUTF8: it cannot be sent (an
        ASCII-only server would refuse or mangle it), so no MAIL/RCPT; skipped, counted, shown."""
        log.warning("entity=%s user=%s: %s needs SMTPUTF8, which the server does not offer",
                    job.row["entity_id"], job.row["user_id"], job.envelope_to)
        self._consecutive_deferred = 0
        self._ledger.submit(partial(self._record, Mark(job.row, "skipped", "needs_smtputf8")))

    def _mark_sent(self, job: Send, attempts: int) -> None:
        if self.options.redirect_to:
            self._count("redirected")
            return
        try:
            self._q("deliver/mark_sent", id=job.row["id"], attempts=attempts, message_id=job.message_id,
                    sent_to=job.envelope_to, run_id=self.options.run_id)
        except psycopg.Error:
            # The one window of at-least-once: the server has the message, the ledger does not.
            log.error("entity=%s user=%s: accepted by the SMTP server as %s but the 'sent' mark was not "
                      "recorded; the retry sends it again with the same Message-ID",
                      job.row["entity_id"], job.row["user_id"], job.message_id)
            raise
        self._count("resent" if job.row["state"] == "sent" else "sent")

    def _record(self, job: Mark | Unlock | Lift) -> None:
        """One ledger write without a send: an outcome (failed, deferred, skipped), a chunk's unlock, or
        the lifting of suppressions of changed addresses."""
        if isinstance(job, Unlock):
            self._q("deliver/unlock_rows", ids=job.ids, lock_key=LOCK_KEY)
            return
        if isinstance(job, Lift):
            for address in suppression.lift(self.conn, "address_changed", user_ids=job.user_ids,
                                            addresses=job.addresses, now=self.now()):
                log.info("suppression of %s lifted: its user's address changed", address)
            return
        self._count(job.state if job.state != "skipped" else f"skipped:{job.reason}")
        if self.options.dry_run or self.options.redirect_to:
            return
        self._q("deliver/mark_outcome", id=job.row["id"], state=job.state, reason=job.reason,
                attempts=job.attempts, run_id=self.options.run_id)


def deliver_batch(conn: psycopg.Connection, smtp: SmtpSettings, renderer: Renderer, digest_date: dt.date,
                  batch: int, options: DeliveryOptions, **kwargs: Any) -> BatchReport:
    return BatchSender(conn, smtp, renderer, digest_date, batch, options, **kwargs).run()
