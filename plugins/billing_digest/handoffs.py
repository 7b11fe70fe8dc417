"""What one task hands to the next through XCom: small typed values, never DataFrames or bodies.

Each is a frozen dataclass. :meth:`Handoff.to_xcom` gives the JSON-safe dict Airflow stores
(dates as ISO strings); :meth:`Handoff.from_xcom` parses it back, once, at the start of the
receiving task. Nothing else in the package sees the dict form, but for one kept copy: the run's
summary (``summary.RunSummary``) is saved as that dict in ``digest.day_reports``, where the history
page (:mod:`billing_digest.history`) reads it back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import typing
from collections.abc import Mapping
from typing import Any, Self

from billing_digest.window import Window


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dump(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


def _load(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if kind is dt.datetime or dt.datetime in typing.get_args(kind):
        return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    if kind is dt.date or dt.date in typing.get_args(kind):
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    if typing.get_origin(kind) is tuple:
        return tuple(value)
    return value


@dataclasses.dataclass(frozen=True)
class Handoff:
    def to_xcom(self) -> dict[str, Any]:
        return {f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_xcom(cls, raw: Mapping[str, Any]) -> Self:
        hints = _hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _load(hints[k], v) for k, v in raw.items() if k in names})


@dataclasses.dataclass(frozen=True)
class RunWindow(Handoff):
    """``wait_for_billing_data`` -> ``extract_errors``: the window the run reports, its data arrived."""

    window_start: dt.datetime
    window_end: dt.datetime

    @property
    def window(self) -> Window:
        return Window(self.window_start, self.window_end)


@dataclasses.dataclass(frozen=True)
class StagedDay(Handoff):
    """``extract_errors`` -> the checks and ``build_digests``: the window and what was staged."""

    digest_date: dt.date
    window_start: dt.datetime
    window_end: dt.datetime
    failed_steps: int
    missing_steps: int

    @property
    def window(self) -> Window:
        return Window(self.window_start, self.window_end)


@dataclasses.dataclass(frozen=True)
class BuiltDay(Handoff):
    """``build_digests`` -> ``plan_batches`` and ``summarize``: what the day's digests hold."""

    digest_date: dt.date
    errors: int
    errors_by_topic: dict[str, int]
    entities_with_errors: int
    entities_without_recipient: int
    digests: int
    problems: dict[str, int]
    # -- guides: what to do per cause (issue 19); every error counts, listed in an e-mail or not --
    errors_with_guide: int = 0
    unguided_causes: tuple[dict[str, Any], ...] = ()  # top causes without a guide: cause, invoices, companies


@dataclasses.dataclass(frozen=True)
class BatchPlan(Handoff):
    """``plan_batches`` -> one mapped ``deliver``: a batch of whole companies, labelled for the UI."""

    digest_date: dt.date
    batch: int
    digests: int
    label: str
    # An earlier day's batch the latest run carries over: only its digests the daily quota left deferred (issue 14).
    carried: bool = False


@dataclasses.dataclass(frozen=True)
class BatchReport(Handoff):
    """``deliver`` -> ``summarize``: what one batch did (outcome -> count; no addresses)."""

    digest_date: dt.date
    batch: int
    outcomes: dict[str, int]
    smtp_connections: int = 0
    seconds: float = 0.0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    # -- the provider's pace (issue 14) --
    throttled: int = 0                  # throttle replies the SMTP server gave
    throttle_pause_seconds: float = 0.0  # the connection paused after them
    pace_wait_seconds: float = 0.0      # waited for send slots of the cluster's rate
