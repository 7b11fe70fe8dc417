"""Which day a run covers: the window [D-1 06:30, D 06:30) in America/Sao_Paulo."""

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


def resolve_window(
    data_interval_start: dt.datetime | None,
    data_interval_end: dt.datetime | None,
    now: dt.datetime,
    digest_date: dt.date | None = None,
) -> Window:
    """The window of a run: an explicit date wins, then a real data interval, else the last closed day.

    A data interval shorter than a day (a manual or cron-trigger run, where start == end)
    is not a window: the last window closed at its end is used instead.
    """
    if digest_date is not None:
        return window_for_date(digest_date)
    if data_interval_start is not None and data_interval_end is not None:
        if data_interval_end - data_interval_start >= dt.timedelta(hours=23):
            return Window(data_interval_start, data_interval_end)
        return last_closed_window(data_interval_end)
    return last_closed_window(now)


def run_window(context: Mapping[str, Any], now: dt.datetime) -> Window:
    """The window an Airflow run reports, from its context: the ``digest_date`` parameter, else its
    data interval, else the last window closed at ``now`` (what every task and alert of a run uses)."""
    requested = (context.get("params") or {}).get("digest_date")
    return resolve_window(context.get("data_interval_start"), context.get("data_interval_end"), now,
                          dt.date.fromisoformat(requested) if requested else None)
