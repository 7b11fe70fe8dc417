"""Airflow plugin: the billing digest preview page, at /billing-digest/ of the api-server and in the
UI's Browse menu. The data team picks a day and a company and sees the day's digests, each
recipient's delivery state from the ledger, and the e-mail exactly as it was sent.

The page is a FastAPI app mounted by the api-server; every route requires a logged-in Airflow
user allowed to read the runs of the ``billing_error_digest`` DAG (the api-server's own JWT auth
and the configured auth manager). Code: ``plugins/digest_preview/``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from digest_preview import URL_PREFIX, app


class DigestPreviewPlugin(AirflowPlugin):
    name = "billing_digest_preview"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Billing digest preview"}]
    # Shown inside the Airflow UI (an iframe at /plugin/billing-digest); the href is relative to
    # the UI's base URL, so the page also works behind a reverse proxy with a path prefix.
    external_views = [{
        "name": "Billing digest",
        "href": f"{URL_PREFIX.lstrip('/')}/",
        "destination": "nav",
        "category": "browse",
        "url_route": "billing-digest",
    }, {
        # The days compared: errors per topic, digests by outcome, held days, the volume guard's baseline.
        "name": "Billing digest history",
        "href": f"{URL_PREFIX.lstrip('/')}/history",
        "destination": "nav",
        "category": "browse",
        "url_route": "billing-digest-history",
    }]
