"""Server-rendered SVG charts of the history page: no JavaScript, no CDN, nothing fetched at view time.

Each chart is one ``<svg>`` with a bar per day; every bar (and a held day's mark) is a link to that
day in the preview page and has a ``<title>`` tooltip. Text is escaped (markupsafe).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from billing_digest.history import OUTCOMES, Day, History

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 960, 52, 12, 14, 26
# The outcomes' fills (the digests chart and its legend); the errors chart is styled by CSS classes
# in templates/history.html.j2.
COLORS = {
    "sent": "#16a34a", "failed": "#dc2626", "deferred": "#f59e0b", "pending": "#60a5fa",
    "skipped_opted_out": "#9ca3af", "skipped_suppressed": "#6b7280", "skipped_invalid": "#a855f7",
    "skipped_other": "#d1d5db",
}
LABELS = {"sent": "sent", "failed": "failed", "deferred": "deferred", "pending": "pending",
          "skipped_opted_out": "skipped: opted out", "skipped_suppressed": "skipped: suppressed",
          "skipped_invalid": "skipped: invalid address", "skipped_other": "skipped: other"}


@dataclasses.dataclass(frozen=True)
class Frame:
    """The plot area of a chart of ``n`` days with values up to ``top``."""

    n: int
    top: float
    height: int

    @property
    def step(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.n, 1)

    def x(self, i: int) -> float:
        return LEFT + i * self.step

    def y(self, value: float) -> float:
        return TOP + (self.height - TOP - BOTTOM) * (1 - value / self.top)


def nice_top(value: float) -> float:
    """A round axis maximum at or above ``value`` (pure): 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _num(v: float) -> str:
    return f"{v:,.0f}".replace(",", ".")  # pt-BR thousands in a developer page: 1.234


def _axes(frame: Frame, days: Sequence[Day], link: Callable[[dt.date], str]) -> list[str]:
    parts = []
    for k in range(5):
        value = frame.top * k / 4
        y = frame.y(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_num(value)}</text>')
    every = max(1, math.ceil(len(days) / 12))
    for i, day in enumerate(days):
        if i % every == 0:
            x = frame.x(i) + frame.step / 2
            parts.append(f'<text x="{x:.1f}" y="{frame.height - 8}" class="tick" text-anchor="middle">'
                         f'{day.digest_date:%d/%m}</text>')
        if day.hold:
            # Held, nothing sent: the whole column, behind the bars. Held, then sent (accept_anomaly, or
            # fixed and re-run): a mark on top.
            y, height, css, what = ((TOP, frame.height - TOP - BOTTOM, "held", "HELD, nothing sent") if day.held
                                    else (TOP - 8, 6, "held-then", "held, then sent"))
            parts.append(f'<a href="{escape(link(day.digest_date))}"><rect x="{frame.x(i):.1f}" y="{y}" '
                         f'width="{max(frame.step - 1, 1):.1f}" height="{height}" class="{css}">'
                         f'<title>{day.digest_date:%d/%m/%Y}: {what}. {escape("; ".join(day.hold.problems))}'
                         f'</title></rect></a>')
    return parts


def _svg(frame: Frame, label: str, parts: list[str]) -> Markup:
    return Markup(f'<svg viewBox="0 0 {WIDTH} {frame.height}" width="100%" role="img" aria-label="{escape(label)}" '
                  f'xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>")


def _line(frame: Frame, points: list[tuple[int, float | None]], css: str) -> str:
    """A polyline through the days that have a value; a gap where one has none."""
    runs, run = [], []
    for i, value in points:
        if value is None:
            runs, run = (runs + [run] if run else runs), []
        else:
            run.append(f"{frame.x(i) + frame.step / 2:.1f},{frame.y(value):.1f}")
    runs += [run] if run else []
    return "".join(f'<polyline points="{" ".join(r)}" class="{css}"/>' for r in runs)


def errors_chart(history: History, topic: str, title: str, link: Callable[[dt.date], str]) -> Markup:
    """Errors of ``topic`` per reported day (bars), the guard's trailing median (line) and threshold
    (dashed): a bar reaching the dashed line is a held day unless sent with accept_anomaly."""
    days = history.days
    values = [d.errors.get(topic, 0) for d in days]
    thresholds = [d.baseline[topic].threshold if topic in d.baseline else None for d in days]
    frame = Frame(len(days), nice_top(max([*values, *(t or 0 for t in thresholds), 1]) * 1.05), 190)
    parts = _axes(frame, days, link)
    for i, (day, n) in enumerate(zip(days, values, strict=True)):
        if not day.reported:
            continue
        base = day.baseline.get(topic)
        tip = f"{day.digest_date:%d/%m/%Y}: {_num(n)} errors in {title}" + (
            f"; median {_num(base.median)}, threshold {_num(base.threshold)}" if base else "; no baseline yet")
        y = frame.y(n)
        parts.append(f'<a href="{escape(link(day.digest_date))}"><rect x="{frame.x(i) + 0.5:.1f}" y="{y:.1f}" '
                     f'width="{max(frame.step - 2, 1):.1f}" height="{frame.y(0) - y:.1f}" class="bar errors">'
                     f'<title>{escape(tip)}</title></rect></a>')
    parts.append(_line(frame, [(i, d.baseline[topic].median if topic in d.baseline else None)
                               for i, d in enumerate(days)], "median"))
    parts.append(_line(frame, list(enumerate(thresholds)), "threshold"))
    return _svg(frame, f"Errors per day, {title}", parts)


def digests_chart(history: History, link: Callable[[dt.date], str]) -> Markup:
    """The digests of each day by outcome, stacked: sent, failed, deferred, pending, skipped by why."""
    days = history.days
    frame = Frame(len(days), nice_top(max([sum(d.outcomes.values()) for d in days] + [1]) * 1.05), 230)
    parts = _axes(frame, days, link)
    for i, day in enumerate(days):
        if not day.reported:
            continue
        total, tip = 0, [f"{day.digest_date:%d/%m/%Y}"]
        for outcome in OUTCOMES:
            n = day.outcomes.get(outcome, 0)
            if not n:
                continue
            top, bottom = frame.y(total + n), frame.y(total)
            parts.append(f'<rect x="{frame.x(i) + 0.5:.1f}" y="{top:.1f}" width="{max(frame.step - 2, 1):.1f}" '
                         f'height="{bottom - top:.1f}" fill="{COLORS[outcome]}"/>')
            total += n
            tip.append(f"{LABELS[outcome]} {_num(n)}")
        parts.append(f'<a href="{escape(link(day.digest_date))}"><rect x="{frame.x(i):.1f}" y="{TOP}" '
                     f'width="{frame.step:.1f}" height="{frame.y(0) - TOP:.1f}" class="hit">'
                     f'<title>{escape(", ".join(tip))}</title></rect></a>')
    return _svg(frame, "Digests per day by outcome", parts)


def legend(keys: Sequence[str]) -> Markup:
    return Markup("".join(f'<span class="key"><i style="background:{COLORS[k]}"></i>{escape(LABELS.get(k, k))}</span>'
                          for k in keys))
