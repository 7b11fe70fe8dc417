"""billing-digest: the daily e-mail of billing errors per (user, entity).

Modules are named for what they do: ``window`` (which day), ``extract`` (SQL),
``transform`` (pandas), ``render`` (Jinja2 + MIME), ``deliver`` (SMTP + ledger),
``summary`` (run report). Only ``airflow_glue`` imports Airflow.
"""

NOTIFICATION_KIND = "billing_errors"
