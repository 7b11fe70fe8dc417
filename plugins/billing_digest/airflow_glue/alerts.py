"""Tell the data team (``alert_email``) when a run fails, when a day is held before sending, when the
provider's daily quota leaves digests waiting, and when the day's run is late (the DAG's failure
callback and its Deadline Alert). What the e-mails say: :mod:`billing_digest.airflow_glue.alert_messages`.

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
from typing import Any

from billing_digest import DAG_ID
from billing_digest.airflow_glue import glue, metrics, run_note
from billing_digest.airflow_glue.alert_messages import (
    dag_id_of,
    digest_date_of,
    failure_message,
    held_reason,
    late_message,
    quota_message,
    wire_bytes,
)
from billing_digest.delivery.smtp import SmtpClient, SmtpSettings
from billing_digest.delivery.smtp_replies import SmtpError
from billing_digest.summary import RunSummary

log = logging.getLogger(__name__)
STILL_ACTIVE = ("queued", "running")  # the only states a late-run alert is true for


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
