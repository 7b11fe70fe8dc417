"""Serve the one-click unsubscribe app on its own: the ``billing-unsubscribe`` compose service and,
through ``devtools/unsubscribe_local.py``, ``make unsubscribe``.

    python -m billing_digest.unsubscribe.server

Environment: ``BILLING_DIGEST_DSN`` (the billing database), ``UNSUBSCRIBE_HOST`` (127.0.0.1;
0.0.0.0 in a container), ``UNSUBSCRIBE_PORT`` (8099) and the digest's settings as env vars
``BILLING_DIGEST_<NAME>`` (no Airflow Variable here): ``unsubscribe_secret`` must be the DAG's,
and the server refuses to start with the default. The routes are under ``/notificacoes``, as
where the product mounts the app: ``/notificacoes/cancelar`` and ``/notificacoes/healthz``.
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit

import psycopg
from fastapi import FastAPI

from billing_digest import product
from billing_digest.settings import Settings, SettingsError
from billing_digest.unsubscribe.app import PREFIX, Connect, create_app
from billing_digest.unsubscribe.tokens import endpoint

log = logging.getLogger(__name__)

DEFAULT_PORT = 8099
PATH = product.UNSUBSCRIBE_PATH
_TOKEN = re.compile(r"(token=)[^&\s\"]+")


class RedactTokens(logging.Filter):
    """uvicorn's access log would write every link's token, a credential: it writes ``token=…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1…", record.msg)
        return True


def connector(dsn: str) -> Connect:
    """A new connection per request (a few requests a day per user; no pool needed)."""
    def connect() -> psycopg.Connection:
        return psycopg.connect(dsn, connect_timeout=5, application_name="billing-digest-unsubscribe")

    return connect


def build(dsn: str, settings: Settings) -> FastAPI:
    """The app with its routes under /notificacoes (refuses an unsafe secret)."""
    return create_app(connector(dsn), settings, prefix=PREFIX)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run uvicorn in the foreground (Ctrl-C / SIGTERM stop it), access log without tokens."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False)
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    uvicorn.Server(config).run()


def warn_if_links_point_elsewhere(settings: Settings) -> None:
    """The e-mails' links must reach this service: say so when their path is not the one served here."""
    link = endpoint(settings)
    if urlsplit(link).path.rstrip("/") != PATH:
        log.warning("the e-mails' unsubscribe links point to %s; this server answers at %s (set "
                    "BILLING_DIGEST_UNSUBSCRIBE_URL, or route that path here)", link, PATH)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dsn = os.environ.get("BILLING_DIGEST_DSN")
    if not dsn:
        raise SystemExit("billing-digest unsubscribe: set BILLING_DIGEST_DSN to the billing database's DSN "
                         "(postgresql://user:password@host:5432/billing)")
    try:
        settings = Settings.from_env()
        app = build(dsn, settings)
    except SettingsError as exc:
        raise SystemExit(str(exc)) from None
    host = os.environ.get("UNSUBSCRIBE_HOST", "127.0.0.1")
    port = int(os.environ.get("UNSUBSCRIBE_PORT", DEFAULT_PORT))
    warn_if_links_point_elsewhere(settings)
    log.info("one-click unsubscribe on http://%s:%d%s; the e-mails link to %s", host, port, PATH, endpoint(settings))
    serve(app, host, port)


if __name__ == "__main__":
    main()
