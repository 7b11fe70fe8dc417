"""The Deadline Alert's callback, importable at DAG-parse time without importing anything heavy
(Airflow imports the callback's path when the DAG file is parsed, to check it is awaitable)."""

from __future__ import annotations

from typing import Any


async def run_is_late(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The day's run has not finished by its deadline: e-mail the data team (``alert_email``)."""
    from billing_digest.airflow_glue import alerts

    await alerts.run_is_late(context, **kwargs)
