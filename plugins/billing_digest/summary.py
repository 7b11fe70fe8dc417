"""Step 6, summarize: what was found, who was told, what failed and why (counts only, no addresses).

The summary is the last task's XCom, a table in its log, and is kept per day in
``digest.day_reports`` (the demo prints it from there with :func:`format_table`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import psycopg

from billing_digest import guides, sql
from billing_digest.delivery.ledger import DEFERRED
from billing_digest.delivery.quota import QUOTA_OUTCOME, QUOTA_REASON
from billing_digest.handoffs import BatchReport, BuiltDay, Handoff
from billing_digest.topics import TOPIC_BY_CODE


@dataclasses.dataclass(frozen=True)
class RunSummary(Handoff):
    digest_date: dt.date
    errors_by_topic: dict[str, int]
    entities_with_errors: int
    digests: int
    bad_input: dict[str, int]
    this_run: dict[str, int]                # outcome of this run's deliveries -> count
    ledger: dict[str, dict[str, int]]       # state -> reason ('-' for none) -> count, the whole day
    emails_sent_this_run: int
    run_id: str = ""
    accepted_anomaly: tuple[str, ...] = ()  # volume anomalies sent anyway (run parameter accept_anomaly)
    # -- run mode and volume verdict (issue 18) --
    mode: str = "normal"                    # "dry run: ...", "test: redirected to ...", "resend", "normal"
    volume_note: str = ""                   # why the volume was not judged, when it was not
    # -- guides (issue 19): errors whose cause had a guide, and the top causes without one --
    errors_with_guide: int = 0
    unguided_causes: tuple[dict[str, Any], ...] = ()  # {"cause", "invoices", "companies"}, biggest first
    # -- the provider's pace (issue 14) --
    delivery_seconds: float = 0.0           # from the first batch's start to the last one's end
    throttled: int = 0                      # throttle replies of the SMTP server ("too fast")
    # -- the daily quota's carry-over (issue 14): earlier days' digests this run sent first --
    carried: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # day (ISO) -> outcome -> count
    quota_waiting: dict[str, int] = dataclasses.field(default_factory=dict)  # earlier day (ISO) -> still deferred
    carry_over_days: int = 0                # the carry-over's look-back in force when this run summarized

    @property
    def errors(self) -> int:
        return sum(self.errors_by_topic.values())

    @property
    def quota_deferred(self) -> int:
        """Digests this run left deferred because the provider's daily quota was reached (issue 14), its day's
        and the carried-over days'."""
        return self.this_run.get(QUOTA_OUTCOME, 0) + sum(o.get(QUOTA_OUTCOME, 0) for o in self.carried.values())

    @property
    def carried_planned(self) -> int:
        """Earlier days' digests this run carried over (each carried batch's outcomes, all of them)."""
        return sum(sum(o.values()) for o in self.carried.values())

    @property
    def carried_sent(self) -> int:
        return sum(o.get("sent", 0) for o in self.carried.values())

    @property
    def quota_waiting_beyond(self) -> dict[str, int]:
        """Earlier days still waiting for the quota that the next day's run will not carry over (past its
        look-back of ``carry_over_days``): only a re-run of that day sends them."""
        since = (self.digest_date + dt.timedelta(days=1 - self.carry_over_days)).isoformat()
        return {day: n for day, n in self.quota_waiting.items() if day < since}

    @property
    def outcomes_with_carried(self) -> dict[str, int]:
        """This run's outcomes, its day's and the carried-over days' together (the metrics count digests)."""
        total = Counter(self.this_run)
        for outcomes in self.carried.values():
            total.update(outcomes)
        return dict(sorted(total.items()))

    @property
    def send_rate(self) -> float:
        """E-mails sent per second of delivery, carried-over ones included (0 when nothing was sent)."""
        sent = self.emails_sent_this_run + self.carried_sent
        return sent / self.delivery_seconds if self.delivery_seconds > 0 else 0.0


def delivery_seconds(reports: Iterable[BatchReport]) -> float:
    """From the first batch's start to the last one's end (batches run in parallel)."""
    spans = [(r.started_at, r.finished_at) for r in reports if r.started_at and r.finished_at]
    if not spans:
        return 0.0
    return round((max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds(), 3)


def summarize(conn: psycopg.Connection, built: BuiltDay, batch_reports: Iterable[BatchReport],
              run_id: str = "", accepted_anomaly: Iterable[str] = (), mode: str = "normal",
              volume_note: str = "", carry_over_days: int = 0) -> RunSummary:
    """``carry_over_days``: the carry-over's look-back in force (``Settings.quota_carry_over_look_back``)."""
    ledger: dict[str, dict[str, int]] = {}
    for state, reason, n in conn.execute(sql.load("summary/ledger_by_state"), {"digest_date": built.digest_date}):
        ledger.setdefault(state, {})[reason or "-"] = int(n)
    batch_reports = list(batch_reports)
    this_run: Counter[str] = Counter()
    carried: dict[str, Counter[str]] = {}
    for report in batch_reports:  # a report of another day is a batch this run carried over (plan.plan_carry_over)
        if report.digest_date == built.digest_date:
            this_run.update(report.outcomes)
        else:
            carried.setdefault(report.digest_date.isoformat(), Counter()).update(report.outcomes)
    waiting = {day.isoformat(): int(n) for day, n in conn.execute(
        sql.load("summary/quota_waiting"), {"digest_date": built.digest_date, "state": DEFERRED,
                                            "reason": QUOTA_REASON})}
    return RunSummary(
        digest_date=built.digest_date,
        errors_by_topic=built.errors_by_topic,
        entities_with_errors=built.entities_with_errors,
        digests=built.digests,
        bad_input=built.problems,
        this_run=dict(sorted(this_run.items())),
        ledger=ledger,
        emails_sent_this_run=this_run.get("sent", 0) + this_run.get("resent", 0),
        run_id=run_id,
        accepted_anomaly=tuple(accepted_anomaly),
        mode=mode,
        volume_note=volume_note,
        errors_with_guide=built.errors_with_guide,
        unguided_causes=built.unguided_causes,
        delivery_seconds=delivery_seconds(batch_reports),
        throttled=sum(r.throttled for r in batch_reports),
        carried={day: dict(sorted(c.items())) for day, c in sorted(carried.items())},
        quota_waiting=waiting,
        carry_over_days=carry_over_days,
    )


def save(conn: psycopg.Connection, summary: RunSummary) -> None:
    """Keep the summary as the day's latest report (``digest.day_reports``)."""
    with conn.transaction():
        conn.execute(sql.load("summary/save_report"), {
            "digest_date": summary.digest_date, "run_id": summary.run_id,
            "summary": json.dumps(summary.to_xcom(), ensure_ascii=False)})


def latest(conn: psycopg.Connection, digest_date: dt.date) -> RunSummary | None:
    """The day's latest saved summary, if any run of that day got as far as summarizing."""
    row = conn.execute(sql.load("summary/load_report"), {"digest_date": digest_date}).fetchone()
    return RunSummary.from_xcom(row[0]) if row else None


def format_table(summary: RunSummary) -> str:
    """A readable table of the summary (task log, demo)."""
    run = f" (run {summary.run_id})" if summary.run_id else ""
    lines = [f"Billing error digest for {summary.digest_date:%d/%m/%Y}{run}", ""]  # the digest day first
    rows: list[tuple[str, str]] = []
    for code, n in summary.errors_by_topic.items():
        rows.append((f"errors: {TOPIC_BY_CODE[code].title}", str(n)))
    rows += [("entities with errors", str(summary.entities_with_errors)),
             ("digests (user x entity)", str(summary.digests)),
             ("e-mails sent by this run", str(summary.emails_sent_this_run))]
    for outcome, n in summary.this_run.items():
        rows.append((f"this run: {outcome}", str(n)))
    if summary.delivery_seconds:
        rows += [("delivery: seconds", f"{summary.delivery_seconds:.1f}"),
                 ("delivery: e-mails per second", f"{summary.send_rate:.1f}"),
                 ("delivery: throttle replies", str(summary.throttled))]
    for day, outcomes in summary.carried.items():
        rows.append((f"carried over from {dt.date.fromisoformat(day):%d/%m/%Y}: sent",
                     f"{outcomes.get('sent', 0)} of {sum(outcomes.values())}"))
    if summary.quota_deferred:
        rows.append(("DAILY QUOTA REACHED: left deferred", str(summary.quota_deferred)))
    beyond = summary.quota_waiting_beyond
    for day, n in summary.quota_waiting.items():
        where = "PAST THE CARRY-OVER: re-run the day" if day in beyond else "the next day's run carries them"
        rows.append((f"waiting for the quota from {dt.date.fromisoformat(day):%d/%m/%Y}", f"{n} ({where})"))
    for state, reasons in summary.ledger.items():
        for reason, n in reasons.items():
            rows.append((f"ledger: {state}" + ("" if reason == "-" else f" ({reason})"), str(n)))
    for reason, n in summary.bad_input.items():
        rows.append((f"bad input: {reason}", str(n)))
    if summary.mode != "normal":
        rows.append(("mode", summary.mode))
    if summary.volume_note:
        rows.append(("volume not judged", summary.volume_note))
    for anomaly in summary.accepted_anomaly:
        rows.append(("SENT DESPITE A VOLUME ANOMALY" if not summary.mode.startswith("dry run")
                     else "volume anomaly accepted (dry run: nothing sent)", anomaly))
    rows.append(("errors with a guide", guides.share_text(summary.errors, summary.errors_with_guide)))
    for cause in summary.unguided_causes:
        rows.append((f"no guide: {cause['cause']}", f"{cause['invoices']} invoices, {cause['companies']} companies"))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k.ljust(width)}  {v.rjust(8)}" if len(v) <= 8 else f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)
