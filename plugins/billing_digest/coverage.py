"""Is the window covered by the attempt history? If not, every invoice would look "missing".

The digest calls a required step "missing" when no attempt of it is recorded. That is only true
when the attempt history covers the window: attempts older than the product's retention are gone,
attempts of a day not yet loaded are not there yet, and before the first recorded attempt nothing
is known. A window that is not covered is held (the run fails before sending, and says why).

Decided from the data itself (:func:`assess`, pure), with two documented settings:

- the window must end after the history's first recorded attempt: a window entirely before it
  (older than the retention, or before the data starts) is held;
- few of the window's invoices may be "silent" (no step recorded at all): more than
  ``max_silent_invoice_share`` of them (and at least ``MIN_SILENT_INVOICES``) means a gap in the
  history: a purge that cut through the window, or attempts not loaded while invoices were. (A
  window that merely starts before the first attempt, such as the history's first day, is judged
  by this rule: a quiet morning is not a gap.)

Whether the data has arrived up to the window's end is the freshness gate's business
(:mod:`billing_digest.freshness`), which runs before the extraction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import psycopg

from billing_digest import sql
from billing_digest.handoffs import Handoff
from billing_digest.window import TIMEZONE, Window

MIN_SILENT_INVOICES = 20  # below this, silent invoices are a few real errors, not a gap


@dataclasses.dataclass(frozen=True)
class Coverage(Handoff):
    first_attempt: dt.datetime | None
    last_attempt: dt.datetime | None
    window_invoices: int
    silent_invoices: int
    problems: tuple[str, ...] = ()


def _when(value: dt.datetime | None, tz: dt.tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if value else "none"


def assess(window: Window, first_attempt: dt.datetime | None, last_attempt: dt.datetime | None,
           window_invoices: int, silent_invoices: int, *, max_silent_share: float) -> Coverage:
    """The verdict (pure): ``problems`` empty when the history covers the window."""
    tz = ZoneInfo(TIMEZONE)
    day = window.digest_date.isoformat()
    bounds = f"the attempt history runs from {_when(first_attempt, tz)} to {_when(last_attempt, tz)}"
    problems: list[str] = []
    if first_attempt is None or last_attempt is None:
        problems.append(f"{day}: the attempt history is empty (billing.step_attempts has no rows): "
                        "load the billing data, then run the day again")
    elif window.end <= first_attempt:
        problems.append(f"{day} is older than the attempt history ({bounds}; window {_when(window.start, tz)} "
                        f"to {_when(window.end, tz)}): attempts of that day were purged (retention) or never "
                        "loaded, so every invoice would look missing. Do not report this day; restore its "
                        "attempts first if it must be reported")
    if silent_invoices >= MIN_SILENT_INVOICES and window_invoices \
            and silent_invoices / window_invoices > max_silent_share:
        problems.append(f"{day}: {silent_invoices} of {window_invoices} invoices billed in the window have no "
                        f"recorded step at all (more than {max_silent_share:.0%}, setting max_silent_invoice_share): "
                        f"the attempt history has a gap ({bounds}). Reload the window's attempts, then run again")
    return Coverage(first_attempt, last_attempt, window_invoices, silent_invoices, tuple(problems))


def measure(conn: psycopg.Connection, window: Window, *, max_silent_share: float) -> Coverage:
    """Read the history's bounds and the window's silent invoices (the day must be staged), then assess."""
    first, last = conn.execute(sql.load("coverage/history_bounds")).fetchone() or (None, None)
    window_invoices, silent = conn.execute(sql.load("coverage/silent_invoices"), window.as_params()).fetchone()
    return assess(window, first, last, int(window_invoices), int(silent), max_silent_share=max_silent_share)
