"""Tell the data team (``alert_email``) when a run fails, when a day is held before sending, and
when the day's run is late (the DAG's failure callback and its Deadline Alert).

A held day also gets a run note in the UI and the ``billing_digest.run.held`` metric. Every alert
names the digest day first (dd/mm/yyyy, the day whose errors the digest lists), then the run.

The late-run alert is only true for a run still queued or running: Airflow keeps a failed run's
deadline and fires it anyway, and the context it hands the callback is a snapshot, so the callback
asks Airflow for the run's state now (:func:`current_run_state`) and stays silent for an ended run.
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
from zoneinfo import ZoneInfo

from billing_digest import DAG_ID
from billing_digest.airflow_glue import glue, metrics, run_note
from billing_digest.delivery.smtp import SmtpClient, SmtpSettings
from billing_digest.delivery.smtp_replies import SmtpError
from billing_digest.quality import DataQualityError
from billing_digest.summary import RunSummary
from billing_digest.window import TIMEZONE, run_window

log = logging.getLogger(__name__)
HELD_BY_CHECKS, HELD_BY_LATE_DATA = "held by the data checks", "the billing data did not arrive"
STILL_ACTIVE = ("queued", "running")  # the only states a late-run alert is true for


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


def notify_quota(dag_id: str, summary: RunSummary) -> None:
    """E-mail ``alert_email`` that the daily quota left digests waiting; never fails the run."""
    if not summary.quota_deferred:
        return
    try:
        settings = glue.settings(check=False)
        if not settings.alert_email:
            log.warning("daily quota reached; no alert_email configured, nobody is e-mailed")
            return
        _send(quota_message(settings.sender, settings.alert_email, dag_id, summary,
                            settings.smtp_max_messages_per_day), glue.smtp_settings())
        log.info("daily-quota alert sent to the data team")
    except (SmtpError, ValueError, OSError) as exc:
        log.error("could not send the daily-quota alert: %s", exc)


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message with CRLF line ends, as SMTP wants it: with ``as_bytes()``'s bare LFs a server
    reads the whole message as one line and refuses it once it passes 1000 bytes."""
    return msg.as_bytes(policy=SMTP)


def _send(msg: EmailMessage, smtp: SmtpSettings) -> None:
    with SmtpClient(smtp) as client:
        client.send(msg["From"].addresses[0].addr_spec, str(msg["To"]), wire_bytes(msg))


def sent_digests(day: dt.date | None) -> int:
    """How many digests of ``day`` the ledger records as sent (0 when unknown): a held re-run must not
    say "nothing sent" of a day whose digests went out."""
    if day is None:
        return 0
    try:
        from billing_digest import sql

        with glue.billing_db() as conn:
            rows = conn.execute(sql.load("summary/ledger_by_state"), {"digest_date": day}).fetchall()
        return sum(int(n) for state, _reason, n in rows if state == "sent")
    except Exception as exc:  # noqa: BLE001 - an alert must never hide the original failure
        log.warning("could not read the ledger of %s: %s", day, exc)
        return 0


def record_late_data(exception: BaseException | None, day: dt.date | None) -> None:
    """The data never arrived (the sensor gave up): remember the held day for the history page and the
    preview (the quality checks record their own holds). Never hides the failure being reported."""
    from airflow.sdk.exceptions import AirflowSensorTimeout

    if not isinstance(exception, AirflowSensorTimeout) or day is None:
        return
    from billing_digest import holds

    try:
        with glue.billing_db() as conn:
            holds.record(conn, day, [f"the billing data did not arrive: {exception}"], guard="freshness")
    except Exception as exc:  # noqa: BLE001 - a record must never hide the original failure
        log.error("could not record the held day: %s", exc)


def notify_failure(context: Mapping[str, Any]) -> None:
    """A task failed after its retries: e-mail the data team; a held day also gets a note and a metric;
    any other failure gets a note too (where the run stopped, and why)."""
    exception = context.get("exception")
    held = held_reason(exception if isinstance(exception, BaseException) else None)
    day = digest_date_of(context)
    sent_before = sent_digests(day) if held else 0
    try:
        ti = context.get("task_instance") or context.get("ti")
        if held:
            glue.emit(metrics.held())
            note = run_note.held_note(day, getattr(ti, "task_id", "?"), held, sent_before=sent_before)
        else:
            note = run_note.failed_note(day, getattr(ti, "task_id", "?"), f"{type(exception).__name__}: {exception}")
        record_late_data(exception if isinstance(exception, BaseException) else None, day)
        glue.publish_run_note(dag_id_of(context), str(context.get("run_id", "")), note)
        settings = glue.settings(check=False)  # also when the run failed on the secret
        if not settings.alert_email:
            log.warning("run failed; no alert_email configured, nobody is e-mailed")
            return
        _send(failure_message(settings.sender, settings.alert_email, context, sent_before), glue.smtp_settings())
        log.info("failure alert sent to the data team")
    except (SmtpError, ValueError, OSError) as exc:  # an alert must never hide the original failure
        log.error("could not send the failure alert: %s", exc)


async def run_is_late(context: Mapping[str, Any] | None = None, **_: Any) -> None:
    """The Deadline Alert's callback (runs in the triggerer): the day's run has not finished in time.

    Settings and the SMTP connection are read here, in the triggerer's event loop (Airflow's
    Variable/Connection lookups need it); the blocking SMTP exchange runs in a thread."""
    context = context or {}
    dag_run, deadline = context.get("dag_run") or {}, (context.get("deadline") or {}).get("deadline_time")
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    state = await current_run_state(dag_run.get("dag_id") or DAG_ID, run_id) if run_id else None
    if not is_late(state, dag_run.get("state")):
        log.info("run %s reached its deadline already ended (state %s): no late-run alert", run_id,
                 state or dag_run.get("state"))
        return
    settings = glue.settings(check=False)  # an alert must reach the data team whatever the secret
    if not settings.alert_email:
        log.warning("run %s is late; no alert_email configured, nobody is e-mailed", run_id)
        return
    smtp = glue.smtp_settings()
    message = late_message(settings.sender, settings.alert_email, dag_run, deadline, state)
    await asyncio.to_thread(_send, message, smtp)
    log.info("late-run alert sent to the data team for run %s", run_id)


def is_late(state_now: str | None, snapshot_state: str | None) -> bool:
    """A late-run alert is true only for a run still queued or running. The state looked up now wins;
    when it cannot be looked up, the callback's snapshot decides (an unknown state alerts: a missed
    late run is worse than a doubtful alert)."""
    state = state_now or snapshot_state
    return state is None or str(state) in STILL_ACTIVE


async def current_run_state(dag_id: str, run_id: str) -> str | None:
    """The run's state now, asked of Airflow through the Task SDK's channel to the triggerer's
    supervisor (the Execution API); ``None`` when it cannot be asked (outside a triggerer)."""
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetDagRunState

        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
        if comms is None:
            return None
        reply = await comms.asend(GetDagRunState(dag_id=dag_id, run_id=run_id))
        state = getattr(reply, "state", None)
        return None if state is None else str(getattr(state, "value", state))
    except Exception as exc:  # noqa: BLE001 - fall back to the snapshot, never lose the alert
        log.warning("could not look up the state of run %s: %s", run_id, exc)
        return None
