"""Airflow glue: connections, settings lookup, run parameters, the task bodies that do more than wiring
(the sensor's poke, summarize, read_bounces), alerts, metrics and run notes (the only room that imports Airflow)."""
