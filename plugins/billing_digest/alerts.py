"""Tell the data team by e-mail when a run fails (the DAG's on_failure_callback)."""

from __future__ import annotations

import datetime as dt
import logging
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

from billing_digest import airflow_glue
from billing_digest.smtp import SmtpClient, SmtpError

log = logging.getLogger(__name__)


def failure_message(sender: str, to: str, context: dict[str, Any]) -> EmailMessage:
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", context.get("run_id", "?"))
    task_id = getattr(ti, "task_id", "?")
    exception = context.get("exception") or context.get("reason")
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = f"[billing_error_digest] run {run_id} failed in task {task_id}"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"DAG billing_error_digest, run {run_id}, task {task_id} failed.\n\n"
        f"Error: {type(exception).__name__}: {exception}\n\n"
        "Digests already accepted by the SMTP server are recorded as sent and will not be sent again;\n"
        "clear the failed task (or re-run the day) once the cause is fixed.\n")
    return msg


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message with CRLF line ends, as SMTP wants it: with ``as_bytes()``'s bare LFs a server
    reads the whole message as one line and refuses it once it passes 1000 bytes."""
    return msg.as_bytes(policy=SMTP)


def notify_failure(context: dict[str, Any]) -> None:
    try:
        settings = airflow_glue.settings(check=False)  # also when the run failed on the secret
        if not settings.alert_email:
            log.warning("run failed; no alert_email configured, nobody is e-mailed")
            return
        msg = failure_message(settings.sender, settings.alert_email, context)
        with SmtpClient(airflow_glue.smtp_settings()) as client:
            client.send(msg["From"].addresses[0].addr_spec, settings.alert_email, wire_bytes(msg))
        log.info("failure alert sent to the data team")
    except (SmtpError, ValueError, OSError) as exc:  # an alert must never hide the original failure
        log.error("could not send the failure alert: %s", exc)
