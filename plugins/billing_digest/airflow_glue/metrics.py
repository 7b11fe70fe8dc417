"""What a run tells the metrics system (StatsD or OpenTelemetry, as Airflow's ``[metrics]`` says).

Pure: :func:`of_run` turns a run's summary and batch reports into metrics; ``airflow_glue.glue.emit``
sends them through Airflow's own interface (``airflow.sdk.observability.stats``), with Airflow's
prefix (``airflow.`` by default). Names:

- ``billing_digest.digests.<outcome>`` (counter): this run's deliveries by outcome: ``sent``,
  ``resent``, ``failed``, ``deferred``, ``redirected``, ``dry_run``, ``skipped`` (all reasons) and
  ``skipped.<reason>`` (``opted_out``, ``access_revoked``, ...);
- ``billing_digest.errors.<topic>`` (gauge): the day's errors per topic (``nfse``, ``boleto``,
  ``notification``) and ``billing_digest.errors.total``;
- ``billing_digest.delivery.duration`` (timer, ms): from the first batch's start to the last's end;
- ``billing_digest.run.held`` (counter): a day held before sending (by the checks or a late data load);
- ``billing_digest.guides.coverage`` (gauge, percent): the day's errors whose cause had a guide in the
  catalogue of known causes, and ``billing_digest.guides.errors_without_guide`` (gauge): how many did not
  (:func:`of_guides`; none on a day without errors);
- ``billing_digest.smtp.throttled`` (counter): throttle replies of the SMTP server ("too fast", issue 14);
- ``billing_digest.smtp.rate`` (gauge, e-mails/s): this run's effective send rate (:func:`of_pace`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from billing_digest.handoffs import BatchReport
from billing_digest.summary import RunSummary

PREFIX = "billing_digest"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Metric:
    kind: Literal["incr", "gauge", "timing"]
    name: str
    value: float


def _name(*parts: str) -> str:
    return ".".join([PREFIX, *(_UNSAFE.sub("_", p) for p in parts)])


def of_run(this_run: dict[str, int], errors_by_topic: dict[str, int],
           reports: Iterable[BatchReport]) -> list[Metric]:
    metrics: list[Metric] = []
    skipped = 0
    for outcome, n in sorted(this_run.items()):
        if outcome.startswith("skipped:"):
            skipped += n
            metrics.append(Metric("incr", _name("digests", "skipped", outcome.split(":", 1)[1]), n))
        else:
            metrics.append(Metric("incr", _name("digests", outcome), n))
    metrics.append(Metric("incr", _name("digests", "skipped"), skipped))
    for topic, n in errors_by_topic.items():
        metrics.append(Metric("gauge", _name("errors", topic), n))
    metrics.append(Metric("gauge", _name("errors", "total"), sum(errors_by_topic.values())))
    spans = [(r.started_at, r.finished_at) for r in reports if r.started_at and r.finished_at]
    if spans:
        seconds = (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()
        metrics.append(Metric("timing", _name("delivery", "duration"), round(seconds * 1000, 1)))
    return metrics


def held() -> list[Metric]:
    return [Metric("incr", _name("run", "held"), 1)]


def of_guides(errors: int, errors_with_guide: int) -> list[Metric]:
    """The guides' coverage of the day's errors (docs/cause-guides.md); nothing on a day without errors."""
    if errors <= 0:
        return []
    return [Metric("gauge", _name("guides", "coverage"), round(100 * errors_with_guide / errors, 1)),
            Metric("gauge", _name("guides", "errors_without_guide"), errors - errors_with_guide)]


def of_pace(summary: RunSummary) -> list[Metric]:
    """The provider's pace: throttle replies, and the effective send rate when anything was sent."""
    metrics = [Metric("incr", _name("smtp", "throttled"), summary.throttled)]
    if summary.delivery_seconds and summary.emails_sent_this_run:
        metrics.append(Metric("gauge", _name("smtp", "rate"), round(summary.send_rate, 2)))
    return metrics
