"""The cluster's send rate: every ``deliver`` task of every run, backfill and worker paces itself on one
shared limiter row in the billing PostgreSQL, so that together they stay under the provider's rate.

Why PostgreSQL (docs/provider-pace.md): every worker already reaches it (the ledger is there), a row
lock makes each update atomic, and it is as available as delivery itself: when it cannot be reached
the ledger cannot either, and the batch stops. Nothing is ever sent without a slot from the row, so
an unreachable limiter makes delivery slower (stopped), never faster.

How: a sender takes a *lease* of a few send slots at a time (about 20 ms of the cluster's rate, at
most 100) in one round trip; the slots are moments on a shared timeline (GCRA: the row's ``tat`` is
the next free slot), spaced 1/rate apart, and the sender sends each message in its own slot. A slot
more than ``late_seconds`` past when the sender gets to it is forfeited, not caught up: over any span
T the cluster sends at most rate x (T + late_seconds). A sender killed while holding a lease just
leaves its slots unused.

Throttle replies adapt the rate (as TCP's congestion control): one cut per burst, to ``decrease`` x the
lower of the rate in force and what the server was accepting (reported with each lease; at most
halved at once), then growing back by ``increase`` per second (compounded, so that a cut too deep is
soon made up) up to the cap; with no cap (0) the rate is unlimited until the first throttle. The
throttled connection itself pauses ``throttle_pause_seconds`` (postfix counts refused attempts too:
retrying at once keeps you refused). SQL: include/sql/pace/, the row and its functions:
include/sql/schema/006_pace.sql.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from billing_digest import sql

log = logging.getLogger(__name__)


class PaceUnavailable(RuntimeError):
    """A send rate is configured but the limiter's table is missing: apply include/sql/schema."""


@dataclass(frozen=True)
class PaceConfig:
    name: str = "smtp"                    # one limiter per SMTP endpoint (host:port)
    max_per_second: float = 0.0           # the cluster's cap; 0: none (only throttle replies slow us down)
    throttle_pause_seconds: float = 60.0  # a throttled connection waits this long (postfix's anvil window)
    lease_seconds: float = 0.02           # slots taken per round trip: this much of the cluster's rate
    late_seconds: float = 0.03            # a slot may be used this long after its moment (then it is forfeited)
    unlimited_lease_seconds: float = 0.1  # no rate in force: a lease (50 slots) lasts at most this long
    increase: float = 0.1                 # past ``rejoin`` x where it was throttled, it grows by this share per second
    fast: float = 0.5                     # after a cut, it climbs back by this share per second up to there
    rejoin: float = 0.95                  # x the rate the server last throttled at (lower of ours and its accepted)
    decrease: float = 0.85                # a throttle cuts the rate to this x what the server was accepting
    min_gap_seconds: float = 1.0          # one cut per burst of throttle replies
    floor: float = 0.5                    # never below this many messages per second


@dataclass
class Lease:
    """Send slots of one lease, on this process's monotonic clock: the next at ``next_at``, then one
    every ``interval`` seconds (0: no limit), ``left`` of them. A slot may be used from its moment
    until ``late`` seconds after it (at least one interval): a sender a little slower than the
    cluster's rate (a commit, a busy core) still uses its slots, and over any span T the cluster sends
    at most rate x (T + late)."""

    next_at: float = 0.0
    interval: float = 0.0
    left: int = 0
    late: float = 0.0
    forfeited: int = 0
    until: float = math.inf  # an unlimited lease ends then (its sender reports what was accepted, sees cuts)

    def take(self, now: float) -> float | None:
        """The moment to send at (``now`` or later), using one slot; None when the lease is used up.
        Slots past by more than ``late`` are forfeited, not caught up: they were the cluster's, then."""
        if self.left <= 0 or now > self.until:
            return None
        late = max(self.late, self.interval)
        if self.interval > 0 and now > self.next_at + late:
            missed = min(self.left, math.ceil((now - self.next_at - late) / self.interval))
            self.left -= missed
            self.forfeited += missed
            self.next_at += missed * self.interval
            if self.left <= 0:
                return None
        at = self.next_at
        self.next_at += self.interval
        self.left -= 1
        return at


class SharedPace:
    """One connection's handle on the cluster's limiter. Not thread-safe: the SMTP sender thread's.

    :meth:`acquire` before each message (blocks until its slot), :meth:`accepted` after a 250,
    :meth:`throttled` on a throttle reply (cuts the cluster's rate, drops this lease)."""

    def __init__(self, conn: psycopg.Connection, config: PaceConfig, sleep: Callable[[float], object],
                 clock: Callable[[], float] = time.monotonic):
        self.conn, self.config, self.sleep, self.clock = conn, config, sleep, clock
        self._lease = Lease()
        self._accepted = 0      # accepted since the last lease, reported with the next
        self._accepted_total = 0
        self._first_at: float | None = None  # this connection's first slot (its own rate counts from there)
        self._disabled = False  # no limiter table and no cap: today's behaviour, with a warning
        self.waited_seconds = 0.0
        self.forfeited = 0      # slots of this connection's leases it was too late to use
        self.rate: float | None = config.max_per_second or None

    def _query(self, statement: str, **params: object) -> tuple | None:
        if self._disabled:
            return None
        try:
            return self.conn.execute(sql.load(statement), params).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            if self.config.max_per_second > 0:
                raise PaceUnavailable(
                    f"smtp_max_messages_per_second is {self.config.max_per_second:g} but the limiter's table is "
                    f"missing ({exc.diag.message_primary}): apply include/sql/schema/006_pace.sql") from None
            log.warning("the send-rate limiter's table is missing (apply include/sql/schema/006_pace.sql): "
                        "throttle replies will not slow the other deliver tasks down")
            self._disabled = True
            return None

    def acquire(self) -> None:
        """Until this connection may send one message."""
        if self._first_at is None:
            self._first_at = self.clock()
        at = self._lease.take(self.clock())
        while at is None:
            self._renew()
            at = self._lease.take(self.clock())
        delay = at - self.clock()
        if delay > 0:
            self.waited_seconds += delay
            self.sleep(delay)

    def _renew(self) -> None:
        c = self.config
        row = self._query("pace/take", name=c.name, cap=c.max_per_second, accepted=self._accepted,
                          lease_seconds=c.lease_seconds, increase=c.increase,
                          fast=c.fast, rejoin=c.rejoin)
        self._accepted = 0
        if row is None:  # no limiter (disabled): unlimited
            self._lease = Lease(self.clock(), 0.0, 1_000_000)
            return
        granted, wait_s, interval_s, self.rate = row
        self.forfeited += self._lease.forfeited
        now = self.clock()
        until = math.inf if interval_s else now + c.unlimited_lease_seconds
        self._lease = Lease(now + float(wait_s), float(interval_s), int(granted), c.late_seconds, until=until)

    def accepted(self) -> None:
        self._accepted += 1
        self._accepted_total += 1

    def _own_rate(self) -> float | None:
        elapsed = self.clock() - self._first_at if self._first_at is not None else 0.0
        return self._accepted_total / elapsed if self._accepted_total and elapsed > 0 else None

    def throttled(self) -> float | None:
        """Report a throttle reply: the cluster's rate is cut (once per burst); returns the rate now.
        This connection's lease is dropped: its slots are not used while it pauses."""
        c = self.config
        self._lease = Lease()
        row = self._query("pace/throttled", name=c.name, cap=c.max_per_second, decrease=c.decrease,
                          increase=c.increase, min_gap=c.min_gap_seconds, floor=c.floor,
                          accepted=self._accepted, own_rate=self._own_rate(), fast=c.fast, rejoin=c.rejoin)
        self._accepted = 0
        measured = None
        if row is not None:
            self.rate, measured = row
        cut = f" (cut from an accepted rate of {measured:.1f} msg/s)" if measured else ""
        log.warning("throttled by the SMTP server: the cluster's send rate is now %s msg/s%s",
                    f"{self.rate:.1f}" if self.rate else "unlimited", cut)
        return self.rate
