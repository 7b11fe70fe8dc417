"""Airflow glue: connections, settings lookup, alerts, metrics and run notes (the only room that imports Airflow)."""
