"""The unsubscribe service's database side: read a user's billing-errors alert, turn it off (recorded in
``digest.unsubscribes``), and the health check. Blocking calls: the app runs them in its thread pool,
each on a connection from ``connect`` (a new one per request, or a pool's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import psycopg

from billing_digest import NOTIFICATION_KIND, sql
from billing_digest.text import first_name

log = logging.getLogger(__name__)

ALERT_LABEL = "Erros detectados nos faturamentos"  # billing.notification_kinds' label, if it is missing

# A connection for one request, as a context manager: ``psycopg.connect`` bound to a DSN (closed after
# the request) or a pool's ``connection`` (given back to the pool).
Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


@dataclass(frozen=True)
class Status:
    """The token's user as the pages show them."""

    first_name: str
    label: str
    enabled: bool


def _status(conn: psycopg.Connection, user_id: int) -> Status:
    row = conn.execute(sql.load("unsubscribe/status"), {"user_id": user_id, "kind": NOTIFICATION_KIND}).fetchone()
    if row is None:  # no such user: nothing is sent to them, the alert is as good as off
        return Status("", ALERT_LABEL, False)
    name, label, enabled = row
    return Status(first_name(name), label or ALERT_LABEL, bool(enabled))


def read_status(connect: Connect, user_id: int) -> Status:
    with connect() as conn:
        return _status(conn, user_id)


def turn_off(connect: Connect, user_id: int, source: str) -> Status:
    """Turn the alert off for the user (its own transaction); the status afterwards."""
    with connect() as conn:
        changed = conn.execute(sql.load("unsubscribe/turn_off"),
                               {"user_id": user_id, "kind": NOTIFICATION_KIND, "source": source}).fetchall()
        conn.commit()
        if changed:
            log.info("unsubscribe: user %d turned %s off (%s)", user_id, NOTIFICATION_KIND, source)
        else:
            log.info("unsubscribe: user %d, %s already off or no such user: nothing changed", user_id,
                     NOTIFICATION_KIND)
        return _status(conn, user_id)


def healthy(connect: Connect) -> bool:
    with connect() as conn:
        row = conn.execute(sql.load("unsubscribe/ping")).fetchone()
    return bool(row and row[0])
