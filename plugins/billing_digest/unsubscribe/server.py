"""Serve the one-click unsubscribe app on its own: the ``billing-unsubscribe`` compose service and,
through ``devtools/unsubscribe_local.py``, ``make unsubscribe``.

    python -m billing_digest.unsubscribe.server

Environment: ``BILLING_DIGEST_DSN`` (the billing database), ``UNSUBSCRIBE_HOST`` (127.0.0.1;
0.0.0.0 in a container), ``UNSUBSCRIBE_PORT`` (8099), ``UNSUBSCRIBE_WORKERS`` (uvicorn worker
processes; default one per CPU core: a GET is a few ms of Python, so a link scanner's burst is
CPU-bound), ``UNSUBSCRIBE_POOL_SIZE`` (database connections per worker, default 4: a request holds
one for about a millisecond; the billing database sees at most workers x pool size) and the
digest's settings as env vars
``BILLING_DIGEST_<NAME>`` (no Airflow Variable here): ``unsubscribe_secret`` must be the DAG's,
and the server refuses to start with the default. The routes are under ``/notificacoes``, as
where the product mounts the app: ``/notificacoes/cancelar`` and ``/notificacoes/healthz``.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from psycopg_pool import ConnectionPool
from uvicorn.config import LOGGING_CONFIG

from billing_digest import product
from billing_digest.secret_check import require_safe
from billing_digest.settings import Settings, SettingsError
from billing_digest.unsubscribe.app import PREFIX, create_app
from billing_digest.unsubscribe.tokens import endpoint

log = logging.getLogger(__name__)

MODULE = "billing_digest.unsubscribe.server"  # not __name__: "__main__" under `python -m`
DEFAULT_PORT = 8099
DEFAULT_POOL_SIZE = 4
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


def pool_of(dsn: str, size: int = DEFAULT_POOL_SIZE) -> ConnectionPool:
    """Connections kept open for the requests (a scanner burst must not open one per request), not
    opened yet. A request waits at most 5 s for one, then gets the 503 page (PoolTimeout is a
    psycopg.OperationalError); a broken connection is checked and replaced by the pool."""
    return ConnectionPool(dsn, min_size=min(2, size), max_size=size, open=False, timeout=5,
                          name="billing-digest-unsubscribe", check=ConnectionPool.check_connection,
                          kwargs={"connect_timeout": 5, "application_name": "billing-digest-unsubscribe"})


def build(dsn: str, settings: Settings, pool_size: int = DEFAULT_POOL_SIZE) -> FastAPI:
    """The app with its routes under /notificacoes (refuses an unsafe secret), on a connection pool
    opened with the app's lifespan (uvicorn's start) and closed at its end."""
    pool = pool_of(dsn, pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.open()
        try:
            yield
        finally:
            pool.close()

    return create_app(pool.connection, settings, prefix=PREFIX, lifespan=lifespan)


def app_from_env() -> FastAPI:
    """uvicorn's factory, called in each worker process: its own pool (a pool cannot cross a fork)."""
    return build(os.environ["BILLING_DIGEST_DSN"], Settings.from_env(), _int_env("UNSUBSCRIBE_POOL_SIZE",
                                                                                  DEFAULT_POOL_SIZE))


def workers() -> int:
    """``UNSUBSCRIBE_WORKERS``, else one per CPU core the process may use."""
    return _int_env("UNSUBSCRIBE_WORKERS", len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                    else os.cpu_count() or 1)


def _int_env(name: str, default: int) -> int:
    value = int(os.environ.get(name) or default)
    if value < 1:
        raise SystemExit(f"billing-digest unsubscribe: {name} must be 1 or more, not {value}")
    return value


def log_config() -> dict[str, Any]:
    """uvicorn's logging with the token-redacting filter on the access log, in every worker."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{MODULE}.RedactTokens"}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config


def serve(app: FastAPI | str, host: str, port: int, worker_count: int = 1) -> None:
    """Run uvicorn in the foreground (Ctrl-C / SIGTERM stop it), access log without tokens. With
    more than one worker ``app`` is the import string of a factory (each worker builds its own)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False, log_config=log_config(),
                workers=worker_count, factory=isinstance(app, str))


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
        require_safe(settings)  # here, before any worker starts: one clear refusal
    except SettingsError as exc:
        raise SystemExit(str(exc)) from None
    host = os.environ.get("UNSUBSCRIBE_HOST", "127.0.0.1")
    port = int(os.environ.get("UNSUBSCRIBE_PORT", DEFAULT_PORT))
    warn_if_links_point_elsewhere(settings)
    count = workers()
    log.info("one-click unsubscribe on http://%s:%d%s (%d worker(s), %d database connection(s) each at most); "
             "the e-mails link to %s", host, port, PATH, count, _int_env("UNSUBSCRIBE_POOL_SIZE", DEFAULT_POOL_SIZE),
             endpoint(settings))
    serve(f"{MODULE}:app_from_env", host, port, count)


if __name__ == "__main__":
    main()
