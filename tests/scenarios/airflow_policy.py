"""A cluster policy for the tests that run Airflow's real scheduler: retries of this DAG's tasks
come after ``BILLING_DIGEST_TEST_RETRY_SECONDS`` seconds instead of minutes. Installed by writing
``$AIRFLOW_HOME/config/airflow_local_settings.py`` (see :func:`install`)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path


def task_policy(task) -> None:
    seconds = os.environ.get("BILLING_DIGEST_TEST_RETRY_SECONDS")
    if seconds and task.dag_id == "billing_error_digest":
        task.retry_delay = dt.timedelta(seconds=float(seconds))
        task.retry_exponential_backoff = 0


def install(airflow_home: Path) -> None:
    config = airflow_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "airflow_local_settings.py").write_text(
        "from tests.scenarios.airflow_policy import task_policy  # noqa: F401\n")
