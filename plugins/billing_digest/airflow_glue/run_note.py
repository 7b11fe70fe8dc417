"""What the data team sees of a run in the Airflow UI without opening a log: the day it reported
and its counts, as the run's note (markdown, shown on the run's page and behind the note icon of
the runs list) and as the label of the ``summarize`` task (the task list's "Map Index" column).

Pure text; ``airflow_glue.glue.publish_run_note`` sets the note through Airflow's REST API.
"""

from __future__ import annotations

import datetime as dt

from billing_digest import guides
from billing_digest.summary import RunSummary
from billing_digest.topics import TOPICS

NOTE_LIMIT = 1000   # Airflow's limit for a run note
LABEL_LIMIT = 250   # and for a rendered map index


def _day(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _counts(summary: RunSummary) -> str:
    runs = summary.this_run
    return (f"{summary.emails_sent_this_run} sent · {runs.get('failed', 0)} failed · {runs.get('deferred', 0)} deferred"
            f" · {sum(summary.errors_by_topic.values())} errors")


def _mode(summary: RunSummary) -> str:
    return "" if summary.mode == "normal" else f" ({summary.mode.split(':')[0].upper()})"


def _others(summary: RunSummary) -> str:
    n = summary.this_run.get("locked_by_other_run", 0)
    carried = (f" · {summary.carried_sent} of {summary.carried_planned} carried over sent"
               if summary.carried else "")
    quota = f" · {summary.quota_deferred} waiting for the daily quota" if summary.quota_deferred else ""
    return (f" · {n} held by another run of the day" if n else "") + carried + quota


def _days(days: dict[str, int]) -> str:
    return ", ".join(f"{dt.date.fromisoformat(day):%d/%m} {n}" for day, n in days.items())


def quota_line(summary: RunSummary) -> str:
    """The provider's daily quota was reached (issue 14): what waits, and what to do."""
    then = (f"the next day's run sends them first (carry-over of {summary.carry_over_days} days)"
            if summary.carry_over_days else "run the day again once the quota frees up (24 h after the first "
            "messages counted) and it sends them")
    return (f"- **the provider's daily quota was reached**: {summary.quota_deferred} digests left deferred "
            f"(reason quota), nothing failed; {then}, none twice")


def carried_line(summary: RunSummary) -> str:
    """Earlier days' digests the daily quota had left waiting, which this run carried over and sent first."""
    days = "; ".join(f"{dt.date.fromisoformat(day):%d/%m} {o.get('sent', 0)} of {sum(o.values())}"
                     for day, o in summary.carried.items())
    return f"- carried over from earlier days (daily quota), sent: {days}"


def waiting_line(summary: RunSummary) -> str:
    """Earlier days' digests still waiting for the quota: those the next run carries, those past the carry-over."""
    beyond = summary.quota_waiting_beyond
    soon = {day: n for day, n in summary.quota_waiting.items() if day not in beyond}
    parts = []
    if soon:
        parts.append(f"{_days(soon)} (the next day's run carries them)")
    if beyond:
        parts.append(f"**{_days(beyond)} past the {summary.carry_over_days}-day carry-over: no run carries them; "
                     "run each of those days again (digest_date) to send them**")
    return "- earlier days still waiting for the daily quota: " + "; ".join(parts)


def label(summary: RunSummary) -> str:
    """One line, e.g. "27/11/2026: 78 sent · 0 failed · 0 deferred · 114 errors"."""
    return _cut(f"{_day(summary.digest_date)}{_mode(summary)}: {_counts(summary)}{_others(summary)}", LABEL_LIMIT)


def note(summary: RunSummary) -> str:
    """The run's note: the day, errors per topic, this run's outcomes, the day's ledger."""
    errors = " · ".join(f"{t.title} {summary.errors_by_topic.get(t.code, 0)}" for t in TOPICS)
    this_run = ", ".join(f"{k} {v}" for k, v in summary.this_run.items()) or "nothing to send"
    ledger = ", ".join(f"{state} {sum(r.values())}" for state, r in summary.ledger.items()) or "empty"
    lines = [  # the UI shows the first line next to the run; the rest when the note is opened
        f"**Digest of {_day(summary.digest_date)}{_mode(summary)}**: {_counts(summary)}{_others(summary)}",
        f"- errors: {sum(summary.errors_by_topic.values())} ({errors}) in {summary.entities_with_errors} companies",
        f"- this run: {this_run}",
        f"- the day's ledger ({summary.digests} digests): {ledger}",
    ]
    if summary.delivery_seconds:
        lines.append(f"- delivery: {summary.delivery_seconds:.1f} s, {summary.send_rate:.1f} e-mails/s, "
                     f"{summary.throttled} throttle replies")
    if summary.quota_waiting:
        lines.insert(1, waiting_line(summary))
    if summary.carried:
        lines.insert(1, carried_line(summary))
    if summary.quota_deferred:
        lines.insert(1, quota_line(summary))
    if summary.mode != "normal":
        lines.insert(1, f"- mode: {summary.mode}")
    if summary.this_run.get("locked_by_other_run"):
        lines.append(f"- {summary.this_run['locked_by_other_run']} digests were being sent by another run of "
                     f"{_day(summary.digest_date)} at the same time: that run sent them (see its note); none twice")
    if summary.volume_note:
        lines.append(f"- volume not judged: {summary.volume_note}")
    if summary.accepted_anomaly:
        verb = "volume anomaly accepted, but nothing sent (dry run)" if summary.mode.startswith("dry run") \
            else "sent despite a volume anomaly"
        lines.append(f"- **{verb}** (accept_anomaly): {'; '.join(summary.accepted_anomaly)}")
    if summary.bad_input:
        lines.append("- bad input rows: " + ", ".join(f"{k} {v}" for k, v in summary.bad_input.items()))
    if summary.errors:
        lines.append(_guides_line(summary))
    return _cut("\n".join(lines), NOTE_LIMIT)


def _guides_line(summary: RunSummary) -> str:
    """Which guide to write next: the share of errors with one, the top 3 causes without."""
    line = f"- errors with a guide: {guides.share_text(summary.errors, summary.errors_with_guide)}"
    top = guides.unguided_text(summary.unguided_causes[:3])
    return line + (f"; without one: {top}" if top else "")


def held_note(digest_date: dt.date | None, task_id: str, reason: str, sent_before: int = 0) -> str:
    """The note of a run stopped before sending (a guard held the day, or the data did not arrive):
    ``reason`` is a headline (the first line, shown next to the run) and the details. ``sent_before``:
    digests of that day an earlier run sent (then the day was not "nothing sent", only this run)."""
    day = _day(digest_date) if digest_date else "the day"
    headline, _, details = reason.partition("\n")
    status = (f"HELD in this run, which sent nothing ({sent_before} digests of that day were sent earlier)"
              if sent_before else "HELD, nothing sent")
    return _cut(f"**Digest of {day} {status}**: {headline.rstrip(':')} (task `{task_id}`)\n\n{details}",
                NOTE_LIMIT)


def failed_note(digest_date: dt.date | None, task_id: str, error: str) -> str:
    """The note of a run that failed (not a hold): where it stopped and why, e.g. an unsafe setting
    refused by the first task, so the data team sees it without opening a log."""
    day = _day(digest_date) if digest_date else "the day"
    return _cut(f"**Digest of {day} FAILED in task `{task_id}`**\n\n- {error}\n- digests already recorded as "
                "sent are never sent again; fix the cause, then clear the failed task", NOTE_LIMIT)
