"""How one ``deliver`` task sends its batch (:class:`DeliveryOptions`), built by the glue from the run's
parameters and the settings; re-exported by ``delivery.deliver``, the public entry point."""

from __future__ import annotations

from dataclasses import dataclass

from billing_digest.delivery.suppression import SuppressionPolicy


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
    # -- the provider's pace (issue 14; delivery/pace.py, docs/provider-pace.md) --
    max_messages_per_second: float = 0.0   # the whole cluster's send rate; 0: no cap (throttle replies still slow it)
    throttle_pause_seconds: float = 60.0   # a throttled connection waits this long, then sends the message again
    throttle_patience_seconds: float = 1800.0  # throttled this long without a message accepted: defer, stop the batch
    throttle_first_retry_seconds: float = 0.1  # a message's first throttle: retried this soon, at the cut rate
    max_messages_per_day: int = 0          # the provider's quota per window, cluster-wide; 0: none
    quota_window_seconds: float = 86400.0  # the quota's trailing window (24 h; shorter in tests)
    carried_over: bool = False             # an earlier day's batch: only its digests the daily quota left deferred
