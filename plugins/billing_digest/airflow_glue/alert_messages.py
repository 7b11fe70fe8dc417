"""What the data team's alerts say (pure text, no I/O): a failed run, a held day, a late run, the provider's
daily quota reached; and what they read from a callback's context (the digest day, the DAG, why a day was
held). Every alert names the digest day first (dd/mm/yyyy, the day whose errors the digest lists), then
the run. Sent by :mod:`billing_digest.airflow_glue.alerts`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from billing_digest import DAG_ID
from billing_digest.quality import DataQualityError
from billing_digest.summary import RunSummary
from billing_digest.window import TIMEZONE, run_window

HELD_BY_CHECKS, HELD_BY_LATE_DATA = "held by the data checks", "the billing data did not arrive"


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, cte="quoted-printable")  # reasons can be long lines (SMTP refuses > 998 octets)
    return msg


def digest_date_of(context: Mapping[str, Any]) -> dt.date | None:
    """The day the failed run reports (as its tasks resolve it), if the context says: a run without a
    date or data interval reported the last day closed when it was started (its ``run_after``)."""
    run = context.get("dag_run")
    started = run.get("run_after") if isinstance(run, Mapping) else getattr(run, "run_after", None)
    try:
        if isinstance(started, str):
            started = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
        if not isinstance(started, dt.datetime) or started.tzinfo is None:
            if not any(context.get(k) for k in ("logical_date", "data_interval_start")) and \
                    not (context.get("params") or {}).get("digest_date"):
                return None
            started = dt.datetime.now(dt.UTC)
        return run_window(context, started).digest_date
    except (TypeError, ValueError, AttributeError):
        return None


def day_label(day: dt.date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else "an unknown day"


def local_time(value: Any) -> str:
    """An instant (datetime or ISO text) as local time, "28/11/2026 07:15 (America/Sao_Paulo)"."""
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return f"{when.astimezone(ZoneInfo(TIMEZONE)):%d/%m/%Y %H:%M} ({TIMEZONE})"
    except (TypeError, ValueError):
        return str(value)


def run_day(dag_run: Mapping[str, Any]) -> dt.date | None:
    """The digest day of a run described by a callback's ``dag_run`` mapping (conf, dates as ISO text)."""
    return digest_date_of({"params": dag_run.get("conf") or {}, "logical_date": dag_run.get("logical_date"),
                           "data_interval_start": dag_run.get("data_interval_start"),
                           "data_interval_end": dag_run.get("data_interval_end")})


def dag_id_of(context: Mapping[str, Any]) -> str:
    run = context.get("dag_run")
    dag_id = run.get("dag_id") if isinstance(run, Mapping) else getattr(run, "dag_id", None)
    return dag_id or getattr(context.get("task_instance") or context.get("ti"), "dag_id", None) or DAG_ID


def held_by(exception: BaseException | None) -> tuple[str, tuple[str, ...]] | None:
    """(why, one line per problem) when the failure is a hold: a guard, or the data not arriving."""
    from airflow.sdk.exceptions import AirflowSensorTimeout

    if isinstance(exception, DataQualityError):
        return HELD_BY_CHECKS, tuple(p.text for p in exception.problems)
    if isinstance(exception, AirflowSensorTimeout):
        return HELD_BY_LATE_DATA, (str(exception),)
    return None


def held_reason(exception: BaseException | None) -> str | None:
    """Why the day was held, when the failure is a hold (a guard, or the data not arriving)."""
    held = held_by(exception)
    return None if held is None else f"{held[0]}:\n- " + "\n- ".join(held[1])


def failure_message(sender: str, to: str, context: Mapping[str, Any], sent_before: int = 0) -> EmailMessage:
    """The alert of a failed task; ``sent_before``: digests of that day an earlier run already sent."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", context.get("run_id", "?"))
    dag_id = dag_id_of(context)
    task_id = getattr(ti, "task_id", "?")
    exception = context.get("exception") or context.get("reason")
    day = day_label(digest_date_of(context))
    why = held_by(exception if isinstance(exception, BaseException) else None)
    if why:
        held = held_reason(exception)  # type: ignore[arg-type]
        if sent_before:
            return _message(
                sender, to, f"[{dag_id}] digest of {day} held in run {run_id}: this run sent nothing; "
                            f"{sent_before} digests of that day were already sent",
                f"Run {run_id} (task {task_id}) held the digest of {day} and sent nothing.\n\n{held}\n\n"
                f"{sent_before} digests of {day} had already been sent by an earlier run: their recipients have\n"
                "them, and nothing is ever sent twice. Nothing else to do unless the earlier digests were wrong.\n")
        return _message(sender, to, f"[{dag_id}] digest of {day} HELD, nothing sent: {why[0]}",
                        f"The digest of {day} was held before anything was sent (run {run_id}, "
                        f"task {task_id}).\n\n{held}\n\n"
                        "Nothing was e-mailed to customers' billing staff for that day. Once the cause is fixed, run\n"
                        "the day again (clear the run, or trigger with the parameter digest_date).\n")
    return _message(sender, to, f"[{dag_id}] digest of {day}: run {run_id} failed in task {task_id}",
                    f"The digest of {day}: DAG {dag_id}, run {run_id}, task {task_id} failed.\n\n"
                    f"Error: {type(exception).__name__}: {exception}\n\n"
                    "Digests already accepted by the SMTP server are recorded as sent and will not be sent again;\n"
                    "clear the failed task (or re-run the day) once the cause is fixed.\n")


def late_message(sender: str, to: str, dag_run: Mapping[str, Any], deadline_time: Any,
                 state: str | None = None) -> EmailMessage:
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    dag_id = dag_run.get("dag_id") or DAG_ID
    day = day_label(run_day(dag_run))
    return _message(sender, to, f"[{dag_id}] digest of {day} is late: run {run_id} not finished by "
                                f"{local_time(deadline_time)}",
                    f"The digest of {day}: run {run_id} of {dag_id} (state now: "
                    f"{state or dag_run.get('state', '?')}, queued at {local_time(dag_run.get('queued_at', '?'))}, "
                    f"started at {local_time(dag_run.get('start_date', '?'))}) had not finished by its deadline, "
                    f"{local_time(deadline_time)}.\n\n"
                    "Billing staff may not have their digest yet. Look at the run in the Airflow UI: a sensor still\n"
                    "waiting for the billing data, a task queued for a pool or a worker, or a task hung on the SMTP\n"
                    "server. Digests already sent are recorded and are never sent twice.\n")


def quota_message(sender: str, to: str, dag_id: str, summary: RunSummary, limit: int) -> EmailMessage:
    """The provider's daily quota was reached (issue 14): the run succeeded, part of the day waits."""
    day = day_label(summary.digest_date)
    return _message(sender, to, f"[{dag_id}] digest of {day}: the provider's daily quota was reached, "
                                f"{summary.quota_deferred} digests wait (run {summary.run_id})",
                    f"The digest of {day}: run {summary.run_id} of {dag_id} sent {summary.emails_sent_this_run} "
                    f"digests, then reached the mail provider's quota of {limit} messages per 24 hours "
                    "(setting smtp_max_messages_per_day,\ncounted for every run together).\n\n"
                    f"{summary.quota_deferred} digests were left deferred (reason quota). Nothing failed, and no "
                    "task retry was spent.\nThe next day's scheduled run sends them first (setting "
                    f"quota_carry_over_days, now {summary.carry_over_days}; 0: off). Or run the day again once\n"
                    "the quota frees up (24 hours after the first messages counted: clear the run, or trigger with "
                    "the\nparameter digest_date): it sends them, the worst first. Nothing is ever sent twice.\n"
                    "If this happens often, ask the provider for a larger quota (docs/provider-pace.md).\n")


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message with CRLF line ends, as SMTP wants it: with ``as_bytes()``'s bare LFs a server
    reads the whole message as one line and refuses it once it passes 1000 bytes."""
    return msg.as_bytes(policy=SMTP)
