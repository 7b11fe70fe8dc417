"""One run per digest day at a time: a run waits while an earlier run of the same day is active.

Two runs of one day never send a digest twice (the ledger's row locks, docs/delivery.md), but side by
side they split the day's digests between them and each run's counts look wrong ("0 sent" beside
"61 e-mails"). So ``wait_for_billing_data`` first asks Airflow (REST API, the connection
``airflow_api``) for the DAG's queued and running runs, and waits (a sensor in reschedule mode holds
no worker slot) while one that reports the same digest day was queued before it, naming that run in
its log and note. Without the connection it cannot ask: it goes on, and the row locks keep it safe.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from billing_digest.window import run_window

log = logging.getLogger(__name__)


def _instant(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def day_of(run: Mapping[str, Any]) -> dt.date | None:
    """The digest day of a run as the REST API describes it (conf, logical date, data interval, run_after)."""
    try:
        started = _instant(run.get("run_after")) or _instant(run.get("queued_at")) or dt.datetime.now(dt.UTC)
        return run_window({"params": run.get("conf") or {}, "logical_date": run.get("logical_date"),
                           "data_interval_start": run.get("data_interval_start"),
                           "data_interval_end": run.get("data_interval_end")}, started).digest_date
    except (TypeError, ValueError):
        return None


def _order(run: Mapping[str, Any]) -> tuple[str, str]:
    return (str(run.get("queued_at") or run.get("run_after") or ""), str(run.get("dag_run_id") or ""))


def earlier_run_of_day(runs: Sequence[Mapping[str, Any]], run_id: str, day: dt.date) -> str | None:
    """The id of the active run of ``day`` this run must wait for: one queued before it (ties: the
    smaller run id), so two runs of a day never wait for each other."""
    mine = next((r for r in runs if r.get("dag_run_id") == run_id), None)
    if mine is None:
        return None
    others = [r for r in runs if r.get("dag_run_id") != run_id and r.get("state") in ("queued", "running")
              and _order(r) < _order(mine) and day_of(r) == day]
    return str(min(others, key=_order)["dag_run_id"]) if others else None


def waiting_note(day: dt.date, other_run: str) -> str:
    return (f"**Digest of {day:%d/%m/%Y}: waiting** for run `{other_run}`, which is running this day now\n\n"
            "- one run per day at a time: this run sends once that run has ended (nothing is ever sent twice)")


def active_runs(dag_id: str) -> list[dict[str, Any]] | None:
    """The DAG's queued and running runs, from the REST API (``None`` when it cannot be asked)."""
    from urllib.parse import quote

    from billing_digest.airflow_glue import glue

    try:
        with glue.api_client() as client:
            reply = client.get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
                               params=[("state", "queued"), ("state", "running"), ("limit", "100")])
            reply.raise_for_status()
            return list(reply.json().get("dag_runs", []))
    except Exception as exc:  # noqa: BLE001 - without the API the row locks still keep the day safe
        log.info("cannot list the active runs (%s): not waiting for other runs of the day", exc)
        return None
