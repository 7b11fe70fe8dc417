"""Facts of the delivery ledger ``digest.deliveries``, stated once.

A ledger row is one digest: (digest day, company, user). Its ``state`` moves
``pending -> sent | failed | deferred | skipped``; ``deferred -> sent | failed | deferred``.
See docs/delivery.md for what each state promises.
"""

from __future__ import annotations

from typing import Final, Literal

State = Literal["pending", "deferred", "sent", "failed", "skipped"]

#: Every state, in the order the data team reads them (the preview page's columns).
STATES: Final[tuple[State, ...]] = ("sent", "failed", "deferred", "pending", "skipped")
#: A transient failure outlasted the in-task retries, or the provider's daily quota was reached (reason quota).
DEFERRED: Final[State] = "deferred"
#: States a normal run sends: never sent, or left for a retry after transient SMTP failures.
SENDABLE_STATES: Final[tuple[State, ...]] = ("pending", "deferred")
#: States a deliberate re-send (run parameter ``resend``) or a redirect (``redirect_to``) sends as well.
RESEND_STATES: Final[tuple[State, ...]] = ("sent", "failed")

#: First key of the PostgreSQL advisory locks of this project (``pg_try_advisory_lock(LOCK_KEY, n)``):
#: ``n`` is a ledger row id while a batch sends it, ``SCHEMA_LOCK`` while the schema is applied.
LOCK_KEY: Final = 727274
SCHEMA_LOCK: Final = -1  # ledger row keys are never negative (id % 2147483647)


def sendable_states(resend: bool = False, redirect: bool = False) -> list[State]:
    """The states a run sends: :data:`SENDABLE_STATES`, plus :data:`RESEND_STATES` on a deliberate
    re-send or a redirect to a test address (which shows the day's digests whatever their state,
    and changes no ledger row)."""
    return [*SENDABLE_STATES, *(RESEND_STATES if resend or redirect else ())]
