"""Which day a run covers: the window [D 06:30, D+1 06:30) in America/Sao_Paulo, reported as day D.

One meaning of a date (docs/runs-and-dates.md): whatever command starts a run, the date a person
names is the digest day, the day whose errors are listed. In order: the ``digest_date`` parameter;
a logical date without a time of day (``airflow dags test billing_error_digest 2026-11-29``, the
Trigger form with a bare date: midnight UTC or midnight local) names that day; a run's one-day data
interval (the scheduled run and backfills: their logical date is the window's start, D 06:30, so
the UI's date is the digest day); else the last window closed when the run started.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

TIMEZONE = "America/Sao_Paulo"
SEND_TIME = dt.time(6, 30)
#: The DAG's schedule: every day at SEND_TIME, in TIMEZONE (the DAG's timetable is built from these).
CRON = f"{SEND_TIME.minute} {SEND_TIME.hour} * * *"


@dataclass(frozen=True)
class Window:
    """A closed-open interval of aware datetimes and the local day it reports on."""

    start: dt.datetime
    end: dt.datetime

    @property
    def digest_date(self) -> dt.date:
        """The local date the window starts on: the day whose errors the digest lists."""
        return self.start.astimezone(ZoneInfo(TIMEZONE)).date()

    def as_params(self) -> dict[str, object]:
        return {"window_start": self.start, "window_end": self.end, "digest_date": self.digest_date}


def window_for_date(digest_date: dt.date, tz: str = TIMEZONE) -> Window:
    """The window whose errors are reported as ``digest_date``'s."""
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(digest_date, SEND_TIME, tzinfo=zone)
    end = dt.datetime.combine(digest_date + dt.timedelta(days=1), SEND_TIME, tzinfo=zone)
    return Window(start, end)


def last_closed_window(now: dt.datetime, tz: str = TIMEZONE) -> Window:
    """The most recent window that has ended at or before ``now`` (for manual runs)."""
    local = now.astimezone(ZoneInfo(tz))
    end_day = local.date() if local.time() >= SEND_TIME else local.date() - dt.timedelta(days=1)
    return window_for_date(end_day - dt.timedelta(days=1), tz)


def named_day(logical_date: dt.datetime | None, tz: str = TIMEZONE) -> dt.date | None:
    """The day a bare logical date names: a logical date at midnight UTC (how the CLI and the REST API
    read ``2026-11-29``) or at local midnight names that day. ``None`` for a moment of the day (a
    scheduled or backfill run's 06:30, a Trigger at the current time): its data interval decides."""
    if logical_date is None or logical_date.tzinfo is None:
        return None
    for zone in (dt.UTC, ZoneInfo(tz)):
        local = logical_date.astimezone(zone)
        if local.time() == dt.time(0, 0):
            return local.date()
    return None


def resolve_window(
    data_interval_start: dt.datetime | None,
    data_interval_end: dt.datetime | None,
    now: dt.datetime,
    digest_date: dt.date | None = None,
    logical_date: dt.datetime | None = None,
) -> Window:
    """The window of a run: an explicit date wins, then a bare logical date (:func:`named_day`), then a
    real data interval, else the last closed day.

    A data interval shorter than a day (a manual or cron-trigger run, where start == end)
    is not a window: the last window closed at its end is used instead.
    """
    if digest_date is not None:
        return window_for_date(digest_date)
    if (named := named_day(logical_date)) is not None:
        return window_for_date(named)
    if data_interval_start is not None and data_interval_end is not None:
        if data_interval_end - data_interval_start >= dt.timedelta(hours=23):
            return Window(data_interval_start, data_interval_end)
        return last_closed_window(data_interval_end)
    return last_closed_window(now)


def run_window(context: Mapping[str, Any], now: dt.datetime) -> Window:
    """The window an Airflow run reports, from its context: the ``digest_date`` parameter, else its
    logical date if it names a day, else its data interval, else the last window closed at ``now``
    (what every task and alert of a run uses)."""
    requested = (context.get("params") or {}).get("digest_date")
    return resolve_window(_instant(context.get("data_interval_start")), _instant(context.get("data_interval_end")),
                          now, dt.date.fromisoformat(requested) if requested else None,
                          _instant(context.get("logical_date")))


def _instant(value: Any) -> dt.datetime | None:
    """A context value as an aware datetime (callbacks get ISO strings)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def not_ended_yet(window: Window, now: dt.datetime) -> str | None:
    """Why a window cannot be reported yet (it has not ended), with the first moment it can; else ``None``."""
    if window.end <= now:
        return None
    local = window.end.astimezone(ZoneInfo(TIMEZONE))
    return (f"the digest of {window.digest_date:%d/%m/%Y} cannot run yet: its window ends on "
            f"{local:%d/%m/%Y at %H:%M} ({TIMEZONE}); run it then, or name an earlier day "
            f"(the latest day that can run now is {last_closed_window(now).digest_date:%d/%m/%Y})")
