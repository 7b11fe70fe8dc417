"""The freshness gate: has the billing data caught up with the window's end? Until it has, wait.

Run by the DAG's first task, a sensor in reschedule mode (it holds no worker slot between pokes):
each poke runs the freshness query and compares its "complete up to" with the window's end
minus ``freshness_tolerance_hours``. The default query is the latest recorded attempt
(include/sql/freshness/watermark.sql); a deployment replaces it with the ``freshness_query`` setting
(one row, one ``timestamptz``). When the sensor's timeout passes, the task fails, the data team is
e-mailed (``alert_email``) and nothing is sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import psycopg

from billing_digest import sql
from billing_digest.handoffs import Handoff
from billing_digest.window import TIMEZONE, Window


class FreshnessQueryError(RuntimeError):
    """The freshness query does not return one timestamp: a configuration error, not a wait."""


@dataclasses.dataclass(frozen=True)
class Freshness(Handoff):
    complete_up_to: dt.datetime | None
    needed: dt.datetime            # the window's end minus the tolerance
    arrived: bool

    def describe(self, window: Window) -> str:
        tz = ZoneInfo(TIMEZONE)
        got = self.complete_up_to.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if self.complete_up_to else "nothing"
        return (f"billing data for {window.digest_date} complete up to {got}; "
                f"needed {self.needed.astimezone(tz):%Y-%m-%d %H:%M %Z} (window end minus the tolerance)")


def assess(window: Window, complete_up_to: dt.datetime | None, tolerance: dt.timedelta) -> Freshness:
    needed = window.end - tolerance
    return Freshness(complete_up_to, needed, complete_up_to is not None and complete_up_to >= needed)


def measure(conn: psycopg.Connection, window: Window, tolerance: dt.timedelta, query: str = "") -> Freshness:
    """Run the freshness query (``query``, or the default watermark) and assess it."""
    try:
        rows = conn.execute(query or sql.load("freshness/watermark"), window.as_params()).fetchall()
    except psycopg.Error as exc:
        raise FreshnessQueryError(f"the freshness query failed: {exc}") from exc
    if len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], dt.datetime | type(None)):
        raise FreshnessQueryError(f"the freshness query must return one row with one timestamptz, got {rows[:2]!r}")
    value = rows[0][0]
    if value is not None and value.tzinfo is None:
        raise FreshnessQueryError("the freshness query must return a timestamptz (with a time zone)")
    return assess(window, value, tolerance)
