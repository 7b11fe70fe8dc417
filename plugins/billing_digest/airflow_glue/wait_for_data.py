"""The ``wait_for_billing_data`` sensor's poke: the run's first task, so the one that refuses a run.

Each poke reads the run's parameters (a bad one fails the run at once), the window it reports (a
window not ended yet fails it at once), the settings (an unsafe secret fails it at once), then waits
while an earlier run of the same day is active (:mod:`billing_digest.airflow_glue.day_runs`) or the
billing data has not caught up with the window's end (:mod:`billing_digest.freshness`). Done, it
hands the window on as a :class:`~billing_digest.handoffs.RunWindow`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from billing_digest import freshness
from billing_digest.airflow_glue import day_runs, glue
from billing_digest.airflow_glue.run_params import InvalidRunParams, RunParams
from billing_digest.handoffs import RunWindow
from billing_digest.window import not_ended_yet, run_window

log = logging.getLogger("billing_digest")


def poke(ctx: Any) -> PokeReturnValue:
    """One poke of the sensor for the run of ``ctx`` (its task context)."""
    try:  # the first task: a bad parameter, a day not over yet or an unsafe secret fail the run at once
        params = RunParams.from_context(ctx)
    except InvalidRunParams as exc:
        raise AirflowFailException(str(exc)) from exc
    window = run_window(ctx, pendulum.now("UTC"))
    log.info("digest of %s (window %s to %s local), run %s, mode: %s", f"{window.digest_date:%d/%m/%Y}",
             f"{window.start:%d/%m %H:%M}", f"{window.end:%d/%m %H:%M}", ctx["run_id"], params.mode)
    if (too_early := not_ended_yet(window, pendulum.now("UTC"))) is not None:
        raise AirflowFailException(too_early)
    settings = glue.settings()
    if (other := day_runs.earlier_run_of_day(day_runs.active_runs(ctx["dag"].dag_id) or [],
                                             ctx["run_id"], window.digest_date)) is not None:
        log.info("waiting: run %s is running the digest of %s (one run per day at a time)", other,
                 f"{window.digest_date:%d/%m/%Y}")
        glue.publish_run_note(ctx["dag"].dag_id, ctx["run_id"], day_runs.waiting_note(window.digest_date, other))
        return PokeReturnValue(is_done=False)
    with glue.billing_db() as conn:
        state = freshness.measure(conn, window, dt.timedelta(hours=settings.freshness_tolerance_hours),
                                  settings.freshness_query)
    log.info("%s: %s", "arrived" if state.arrived else "waiting", state.describe(window))
    return PokeReturnValue(is_done=state.arrived, xcom_value=RunWindow(window.start, window.end).to_xcom())
