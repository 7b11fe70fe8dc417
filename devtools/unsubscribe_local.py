"""`make unsubscribe`: the one-click unsubscribe service on http://127.0.0.1:UNSUBSCRIBE_PORT (8099),
against the demo's database (``BILLING_DIGEST_DSN`` or the embedded one in .demo/pg) and with the
demo's secret (.demo/unsubscribe_secret), so the links in the demo's e-mails (.demo/outbox/*.eml)
work: open one in a browser, or POST it as a mail client would. Ctrl-C stops it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex

import psycopg

from billing_digest.mail.render import Renderer
from billing_digest.secret_check import UnsafeSettings
from billing_digest.settings import Settings
from billing_digest.unsubscribe.server import build, serve
from devtools.airflow_env import billing_dsn, demo_settings_env, unsubscribe_port


def sample_link(dsn: str, settings: Settings) -> str | None:
    """An unsubscribe link of someone the demo sent a digest to (None before `make demo`)."""
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT user_id FROM digest.deliveries WHERE state = 'sent' "
                               "ORDER BY sent_at DESC, user_id LIMIT 1").fetchone()
    except psycopg.Error:
        return None
    return Renderer(settings).unsubscribe_url(int(row[0]), dt.datetime.now(dt.UTC)) if row else None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")  # uvicorn's look
    env = demo_settings_env(dict(os.environ))
    dsn = billing_dsn()
    settings = Settings.from_env(env)
    try:
        app = build(dsn, settings)
    except UnsafeSettings as exc:
        raise SystemExit(str(exc)) from None
    port = unsubscribe_port()
    print("billing-digest one-click unsubscribe (local)")
    print(f"- serving http://127.0.0.1:{port}/notificacoes/cancelar on the demo's database; Ctrl-C stops it")
    link = sample_link(dsn, settings)
    if link:
        print(f"- a link from the demo's e-mails:\n    open  {link}\n"
              f"    or    curl -i -d List-Unsubscribe=One-Click {shlex.quote(link)}")
    else:
        print("- no digest sent yet: run `make demo` first, then open a link from .demo/outbox/*.eml")
    serve(app, "127.0.0.1", port)


if __name__ == "__main__":
    main()
