"""A batch's SMTP side (:class:`SmtpSender`): one thread that sends the prepared messages in order over
one SMTP connection, at the cluster's pace, and hands each outcome to the ledger writer thread.

A row is 'sent' only after the server's 250, and the next message's end of data waits for that
commit (``before_accept``), so a worker killed at any point leaves at most the message in flight
unrecorded, never an older one. Each chunk's locks are released after its last outcome is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from functools import partial

from billing_digest.delivery.accounting import Accounting
from billing_digest.delivery.jobs import Halt, Job, Mark, Send
from billing_digest.delivery.ledger_writer import LedgerWriter
from billing_digest.delivery.pace import SharedPace
from billing_digest.delivery.quota import QUOTA_REASON, DailyQuota
from billing_digest.delivery.retry import RetryPolicy, Verdict
from billing_digest.delivery.smtp import SmtpClient
from billing_digest.delivery.smtp_replies import PermanentError, ThrottledError, TransientError

log = logging.getLogger(__name__)


class SmtpSender:
    """Start with :meth:`start`, feed with :meth:`put` (blocks when ``lookahead`` jobs wait), end with
    :meth:`finish` (after the last outcome is committed). Failures go to ``halt``."""

    def __init__(self, name: str, client: SmtpClient, envelope_from: str, accounting: Accounting,
                 policy: RetryPolicy, pace: SharedPace, halt: Halt, sleep: Callable[[float], object],
                 lookahead: int, quota: DailyQuota, clock: Callable[[], float] = time.monotonic):
        self.name, self.client, self.envelope_from = name, client, envelope_from
        self.quota = quota
        self.accounting, self.policy, self.pace, self.halt = accounting, policy, pace, halt
        self.sleep, self.clock = sleep, clock
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, lookahead))
        self._ledger: LedgerWriter  # set when the thread starts
        self._last_progress = clock()  # the last message accepted (throttle patience counts from here)
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"billing-digest-smtp-{name}")

    def start(self) -> None:
        self._thread.start()

    def put(self, job: Job) -> None:
        self._jobs.put(job)

    def finish(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _loop(self) -> None:
        ledger = LedgerWriter(f"billing-digest-ledger-{self.name}")
        self._ledger = ledger
        try:
            while (job := self._jobs.get()) is not None:
                if isinstance(job, Send) and self.halt.is_set():
                    continue  # not sent, not marked: the row stays as it was (pending or deferred)
                try:
                    if ledger.error is not None:
                        raise ledger.error
                    if isinstance(job, Send):
                        self._send(job)
                    else:
                        ledger.submit(partial(self.accounting.record, job))
                except BaseException as exc:  # handed to the batch, which raises it
                    self.halt.fail(exc)
            ledger.wait()  # the last outcomes are committed before the batch reports
        except BaseException as exc:
            self.halt.fail(exc)
        finally:
            self.accounting.pace_wait_seconds = self.pace.waited_seconds
            log.info("batch %s: waited %.1fs for send slots of the cluster's rate, %d slot(s) too late to use",
                     self.name, self.pace.waited_seconds, self.pace.forfeited)
            ledger.close()

    def _send(self, job: Send) -> None:
        """Send one message until it is accepted or its outcome is decided; the outcome goes to the ledger."""
        if job.smtputf8 and not self._connected(job, tries=0):  # offers_smtputf8 needs the server's EHLO
            return
        if job.smtputf8 and not self.client.offers_smtputf8():
            self._skip_needs_smtputf8(job)
            return
        if not self.quota.reserve():
            # The provider's daily quota is reached: no RCPT; left for a later run of the day.
            self._ledger.submit(partial(self.accounting.record, Mark(job.row, "deferred", QUOTA_REASON)))
            return
        tries = failures = throttles = 0
        while True:
            if not self._connected(job, tries):  # reconnect after a drop (421 closes), through connect throttles
                self.quota.release()
                return
            self.pace.acquire()
            tries += 1
            try:
                # The server may accept this message only once every earlier outcome is committed.
                self.client.send(job.envelope_from or self.envelope_from, job.envelope_to, job.message,
                                 before_accept=self._ledger.wait, smtputf8=job.smtputf8)
            except ThrottledError as exc:
                throttles += 1
                reply, verdict = str(exc), self._throttled(job, exc, again=throttles > 1)
                if verdict.action == "retry":
                    self.sleep(verdict.delay)
                    if self.halt.is_set():
                        self.quota.release()
                        return  # the batch stopped while paused: not sent, not marked, left for the retry
                    continue
            except PermanentError as exc:
                log.warning("entity=%s user=%s refused permanently: %s", job.row["entity_id"], job.row["user_id"], exc)
                reply, verdict = str(exc), self.policy.permanent()
            except TransientError as exc:
                failures += 1
                reply, verdict = str(exc), self.policy.transient(failures)
                if verdict.action == "retry":
                    log.warning("entity=%s user=%s transient failure (%s), retry in %.1fs",
                                job.row["entity_id"], job.row["user_id"], exc, verdict.delay)
            else:
                self.pace.accepted()
                self.quota.consumed()
                self.policy.accepted()
                self._last_progress = self.clock()
                # Committed right after the 250, while the next message travels; before that one's end of data.
                self._ledger.submit(partial(self.accounting.mark_sent, job, tries))
                return
            if verdict.action == "retry":
                self.sleep(verdict.delay)
                continue
            self.quota.release()
            self._decided(job, verdict, reply, tries)
            return

    def _connected(self, job: Send, tries: int) -> bool:
        """The connection open, or False: the batch stopped while paused (the row is left as it was), or the
        throttle patience ran out (the digest is deferred and the batch stops, as for any throttle).

        A throttle reply to the greeting or EHLO (``421 4.7.0 Too many concurrent connections``: our other
        connections, or another application's, use up the provider's limit) is not an outage: the cluster's
        rate is cut, the connection waits ``smtp_throttle_pause_seconds`` (connections close at their pace, not
        ours: a quick retry would be refused again) and connects again. Any other failure to connect raises
        :class:`SmtpUnavailable` (the task fails, as before)."""
        while True:
            try:
                self.client.ensure_connected()
                return True
            except ThrottledError as exc:
                verdict = self._throttled(job, exc, again=True)
                if verdict.action != "retry":
                    self._decided(job, verdict, str(exc), tries)
                    return False
                self.sleep(verdict.delay)
                if self.halt.is_set():
                    return False

    def _skip_needs_smtputf8(self, job: Send) -> None:
        """A non-ASCII address (RFC 6531) and a server without SMTPUTF8: it cannot be sent (an
        ASCII-only server would refuse or mangle it), so no MAIL/RCPT; skipped, counted, shown."""
        log.warning("entity=%s user=%s: %s needs SMTPUTF8, which the server does not offer",
                    job.row["entity_id"], job.row["user_id"], job.envelope_to)
        self.policy.accepted()  # not the server struggling
        self._ledger.submit(partial(self.accounting.record, Mark(job.row, "skipped", "needs_smtputf8")))

    def _throttled(self, job: Send, exc: ThrottledError, again: bool) -> Verdict:
        self.accounting.throttled += 1
        self.pace.throttled()
        verdict = self.policy.throttled(self.clock() - self._last_progress, again)
        if verdict.action == "retry":
            self.accounting.throttle_pause_seconds += verdict.delay
            log.warning("entity=%s user=%s throttled (%s): pause %.1fs, then send it again",
                        job.row["entity_id"], job.row["user_id"], exc, verdict.delay)
        return verdict

    def _decided(self, job: Send, verdict: Verdict, reply: str, tries: int) -> None:
        """A failed or deferred outcome (not sent); a deferral may stop the batch."""
        self._ledger.submit(partial(self.accounting.record, Mark(job.row, verdict.action, reply[:500], tries)))
        self.accounting.bounced(job, reply)
        if verdict.stop_batch:
            self.halt.stop(early=True)  # the server is struggling: leave the rest for the retry
