"""The ``summarize`` task: the run's counts (:mod:`billing_digest.summary`) saved and told.

The counts go to the log (a table), the day's report (``digest.day_reports``, not on a dry run), the
metrics (:mod:`billing_digest.airflow_glue.metrics`), the run's note and its label in the UI
(:mod:`billing_digest.airflow_glue.run_note`), and an e-mail to ``alert_email`` when the provider's daily
quota left digests waiting (:func:`billing_digest.airflow_glue.alerts.notify_quota`).
"""

from __future__ import annotations

import logging
from typing import Any

from billing_digest import summary
from billing_digest.airflow_glue import alerts, glue, metrics, run_note
from billing_digest.airflow_glue.run_params import RunParams
from billing_digest.handoffs import BatchReport, BuiltDay
from billing_digest.quality import DayCheck

log = logging.getLogger("billing_digest")


def summarize_run(ctx: Any, built: dict, checked: dict, reports: list[dict] | None) -> dict:
    """Summarise the run of ``ctx`` (its task context) from its tasks' XCom values; the summary's."""
    params = RunParams.from_context(ctx)
    check = DayCheck.from_xcom(checked)
    # One slice request: iterating the lazy sequence would probe past its end (a logged 404).
    batch_reports = [BatchReport.from_xcom(r) for r in (reports[:] if reports else [])]
    with glue.billing_db() as conn:
        result = summary.summarize(conn, BuiltDay.from_xcom(built), batch_reports, ctx["run_id"],
                                   check.accepted_anomaly, mode=params.mode, volume_note=check.volume_note,
                                   carry_over_days=glue.settings().quota_carry_over_look_back)
        if not params.dry_run:  # a dry run leaves the day's report (and the volume baseline) alone
            summary.save(conn, result)
    log.info("run summary\n%s", summary.format_table(result))
    glue.emit(metrics.of_run(result.outcomes_with_carried, result.errors_by_topic, batch_reports))
    glue.emit(metrics.of_guides(result.errors, result.errors_with_guide))
    glue.emit(metrics.of_pace(result))
    glue.publish_run_note(ctx["dag"].dag_id, ctx["run_id"], run_note.note(result))
    alerts.notify_quota(ctx["dag"].dag_id, result)  # the provider's daily quota left digests waiting (issue 14)
    ctx["run_label"] = run_note.label(result)
    return result.to_xcom()
