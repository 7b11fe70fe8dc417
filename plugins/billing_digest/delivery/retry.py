"""What to do after a refused or failed send (:class:`RetryPolicy`): pure, apart from its counters.

- a permanent refusal (5xx) fails that digest only;
- a transient one (other 4xx, a dropped connection) is retried with exponential backoff, then the
  digest is left 'deferred' for the task's retry; so many deferred in a row mean the server is
  struggling: the batch stops and leaves the rest for the task's retry;
- a throttle reply ("too fast") is not the message's failure: the message is sent again, without limit of
  tries, in this task run: at once at the cluster's cut rate the first time, after a pause when refused again; it never
  counts toward "the server is struggling".
  Only when nothing has been accepted for ``throttle_patience_seconds`` is the digest deferred and the
  batch stopped (an account paused by the provider does not fix itself within a run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from billing_digest.delivery.options import DeliveryOptions


@dataclass(frozen=True)
class Verdict:
    action: Literal["retry", "failed", "deferred"]
    delay: float = 0.0         # before the retry
    stop_batch: bool = False   # leave the rest of the batch for the task's retry


class RetryPolicy:
    def __init__(self, options: DeliveryOptions):
        self.options = options
        self.consecutive_deferred = 0

    def accepted(self) -> None:
        self.consecutive_deferred = 0

    def permanent(self) -> Verdict:
        self.consecutive_deferred = 0
        return Verdict("failed")

    def transient(self, failures: int) -> Verdict:
        """After the ``failures``-th transient failure of one message."""
        if failures < self.options.attempts:
            return Verdict("retry", self.options.backoff_seconds * 2 ** (failures - 1))
        self.consecutive_deferred += 1
        return Verdict("deferred", stop_batch=self.consecutive_deferred >= self.options.max_consecutive_deferred)

    def throttled(self, throttled_for: float, again: bool = True) -> Verdict:
        """After a throttle reply, ``throttled_for`` seconds after this connection's last accepted message
        (or its first try). The cluster's rate has just been cut (delivery/pace.py): the message's first
        throttle (``again`` False) is retried at that rate after ``throttle_first_retry_seconds``; refused
        again, the cut was not enough (a per-minute window, an account limit): the connection pauses."""
        if throttled_for >= self.options.throttle_patience_seconds:
            return Verdict("deferred", stop_batch=True)
        pause = self.options.throttle_pause_seconds
        return Verdict("retry", pause if again else min(pause, self.options.throttle_first_retry_seconds))
