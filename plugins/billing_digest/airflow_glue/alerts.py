"""Tell the data team (``alert_email``) when a run fails, when a day is held before sending, and
when the day's run is late (the DAG's failure callback and its Deadline Alert).

A held day also gets a run note in the UI and the ``billing_digest.run.held`` metric.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

from billing_digest import DAG_ID
from billing_digest.airflow_glue import glue, metrics, run_note
from billing_digest.delivery.smtp import SmtpClient, SmtpError, SmtpSettings
from billing_digest.window import run_window

log = logging.getLogger(__name__)
HELD_BY = {"DataQualityError": "held by the data checks", "AirflowSensorTimeout": "the billing data did not arrive"}


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, cte="quoted-printable")  # reasons can be long lines (SMTP refuses > 998 octets)
    return msg


def digest_date_of(context: Mapping[str, Any]) -> dt.date | None:
    """The day the failed run reports (as its tasks resolve it), if the context says."""
    try:
        return run_window(context, dt.datetime.now(dt.UTC)).digest_date
    except (TypeError, ValueError, AttributeError):
        return None


def dag_id_of(context: Mapping[str, Any]) -> str:
    run = context.get("dag_run")
    dag_id = run.get("dag_id") if isinstance(run, Mapping) else getattr(run, "dag_id", None)
    return dag_id or getattr(context.get("task_instance") or context.get("ti"), "dag_id", None) or DAG_ID


def held_reason(exception: BaseException | None) -> str | None:
    """Why the day was held, when the failure is a hold (a guard, or the data not arriving)."""
    if exception is None or type(exception).__name__ not in HELD_BY:
        return None
    reasons = str(exception).split(" | ")  # one line per problem found
    return f"{HELD_BY[type(exception).__name__]}:\n- " + "\n- ".join(reasons)


def failure_message(sender: str, to: str, context: Mapping[str, Any]) -> EmailMessage:
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", context.get("run_id", "?"))
    dag_id = dag_id_of(context)
    task_id = getattr(ti, "task_id", "?")
    exception = context.get("exception") or context.get("reason")
    day = digest_date_of(context)
    held = held_reason(exception if isinstance(exception, BaseException) else None)
    if held:
        why = HELD_BY[type(exception).__name__]
        return _message(sender, to, f"[{dag_id}] digest of {day or '?'} HELD, nothing sent: {why}",
                        f"The digest of {day or '?'} was held before anything was sent (run {run_id}, "
                        f"task {task_id}).\n\n{held}\n\n"
                        "Nothing was e-mailed to customers' billing staff for that day. Once the cause is fixed, run\n"
                        "the day again (clear the run, or trigger with the parameter digest_date).\n")
    return _message(sender, to, f"[{dag_id}] run {run_id} failed in task {task_id}",
                    f"DAG {dag_id}, run {run_id}, task {task_id} failed.\n\n"
                    f"Error: {type(exception).__name__}: {exception}\n\n"
                    "Digests already accepted by the SMTP server are recorded as sent and will not be sent again;\n"
                    "clear the failed task (or re-run the day) once the cause is fixed.\n")


def late_message(sender: str, to: str, dag_run: Mapping[str, Any], deadline_time: Any) -> EmailMessage:
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    dag_id = dag_run.get("dag_id") or DAG_ID
    return _message(sender, to, f"[{dag_id}] run {run_id} is late: not finished by {deadline_time}",
                    f"The run {run_id} of {dag_id} (state: {dag_run.get('state', '?')}, queued at "
                    f"{dag_run.get('queued_at', '?')}, started at {dag_run.get('start_date', '?')}) had not "
                    f"finished by its deadline, {deadline_time}.\n\n"
                    "Billing staff may not have their digest yet. Look at the run in the Airflow UI: a sensor still\n"
                    "waiting for the billing data, a task queued for a pool or a worker, or a task hung on the SMTP\n"
                    "server. Digests already sent are recorded and are never sent twice.\n")


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message with CRLF line ends, as SMTP wants it: with ``as_bytes()``'s bare LFs a server
    reads the whole message as one line and refuses it once it passes 1000 bytes."""
    return msg.as_bytes(policy=SMTP)


def _send(msg: EmailMessage, smtp: SmtpSettings) -> None:
    with SmtpClient(smtp) as client:
        client.send(msg["From"].addresses[0].addr_spec, str(msg["To"]), wire_bytes(msg))


def notify_failure(context: Mapping[str, Any]) -> None:
    """A task failed after its retries: e-mail the data team; a held day also gets a note and a metric."""
    exception = context.get("exception")
    held = held_reason(exception if isinstance(exception, BaseException) else None)
    try:
        if held:
            ti = context.get("task_instance") or context.get("ti")
            glue.emit(metrics.held())
            note = run_note.held_note(digest_date_of(context), getattr(ti, "task_id", "?"), held)
            glue.publish_run_note(dag_id_of(context), str(context.get("run_id", "")), note)
        settings = glue.settings(check=False)  # also when the run failed on the secret
        if not settings.alert_email:
            log.warning("run failed; no alert_email configured, nobody is e-mailed")
            return
        _send(failure_message(settings.sender, settings.alert_email, context), glue.smtp_settings())
        log.info("failure alert sent to the data team")
    except (SmtpError, ValueError, OSError) as exc:  # an alert must never hide the original failure
        log.error("could not send the failure alert: %s", exc)


async def run_is_late(context: Mapping[str, Any] | None = None, **_: Any) -> None:
    """The Deadline Alert's callback (runs in the triggerer): the day's run has not finished in time.

    Settings and the SMTP connection are read here, in the triggerer's event loop (Airflow's
    Variable/Connection lookups need it); the blocking SMTP exchange runs in a thread."""
    context = context or {}
    dag_run, deadline = context.get("dag_run") or {}, (context.get("deadline") or {}).get("deadline_time")
    settings = glue.settings(check=False)  # an alert must reach the data team whatever the secret
    if not settings.alert_email:
        log.warning("run %s is late; no alert_email configured, nobody is e-mailed", dag_run.get("dag_run_id"))
        return
    smtp = glue.smtp_settings()
    await asyncio.to_thread(_send, late_message(settings.sender, settings.alert_email, dag_run, deadline), smtp)
    log.info("late-run alert sent to the data team for run %s", dag_run.get("dag_run_id"))
