"""The standalone server's parts (issue 17): the connection pool its app runs on, opened and closed
with the app, and the product-mount API on a pool's ``connection``; real HTTP, real PostgreSQL.
The server process itself (workers, redacted access log) is in test_app.py; the burst is a
benchmark (bench/unsubscribe_burst.py)."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from billing_digest import NOTIFICATION_KIND
from billing_digest.settings import Settings
from billing_digest.unsubscribe.app import PREFIX, create_app
from billing_digest.unsubscribe.server import build, log_config
from billing_digest.unsubscribe.tokens import make_token
from devtools.asgi_server import ServedApp

SECRET = "unsubscribe-server-tests-0123456789"
SETTINGS = Settings(unsubscribe_secret=SECRET, base_url="https://app.exemplo.com.br")
PATH = f"{PREFIX}/cancelar"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def link(user_id: int) -> str:
    return f"{PATH}?token={make_token(SECRET, user_id, NOTIFICATION_KIND, int(time.time()) + 3600)}"


def backends(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'billing-digest-unsubscribe'").fetchone()[0]


def test_the_server_app_answers_a_burst_on_at_most_pool_size_connections_and_closes_them(db_dsn, world, conn):
    acme = world.entity("Acme")
    users = [world.user(f"Pessoa {n}", f"p{n}@acme.com.br", [acme]) for n in range(20)]
    app = build(db_dsn, SETTINGS, pool_size=3)
    seen: list[int] = []
    with ServedApp(app, lifespan="on") as served, httpx.Client(base_url=served.url, timeout=30) as client:
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            burst = pool.map(lambda u: client.get(link(u)).status_code, users * 10)
            with psycopg.connect(db_dsn, autocommit=True) as watcher:
                for _ in range(20):  # the database's view while the burst runs
                    seen.append(backends(watcher))
                    time.sleep(0.02)
            gets = list(burst)
            seen.append(backends(conn))
            posts = list(pool.map(lambda u: client.post(link(u), data=ONE_CLICK).status_code, users[:5] * 4))
    assert set(gets) == {200} and set(posts) == {200}
    assert 1 <= min(seen) and max(seen) <= 3  # the pool's connections, kept open; never one per request
    recorded = conn.execute("SELECT user_id, count(*) FROM digest.unsubscribes GROUP BY 1").fetchall()
    assert sorted(recorded) == sorted((u, 1) for u in users[:5])  # each POSTed 4 times, applied once
    deadline = time.monotonic() + 10
    while backends(conn) and time.monotonic() < deadline:  # the lifespan's end closed the pool
        time.sleep(0.1)
    assert backends(conn) == 0


def test_the_product_mount_api_takes_a_pools_connection_as_connect(db_dsn, world, conn):
    acme = world.entity("Acme")
    ana = world.user("Ana Lima", "ana@acme.com.br", [acme])
    with ConnectionPool(db_dsn, min_size=1, max_size=2) as pool, \
            ServedApp(create_app(pool.connection, SETTINGS, prefix=PREFIX)) as served:
        page = httpx.get(served.url + link(ana))
        done = [httpx.post(served.url + link(ana), data=ONE_CLICK).status_code for _ in range(2)]
    assert page.status_code == 200 and "Ana" in page.text
    assert done == [200, 200]
    assert conn.execute("SELECT user_id FROM digest.unsubscribes").fetchall() == [(ana,)]


def test_every_worker_redacts_tokens_in_its_access_log():
    """With several workers uvicorn configures each worker's logging from log_config: the filter is there."""
    config = log_config()
    assert config["handlers"]["access"]["filters"] == ["redact_tokens"]
    assert config["filters"]["redact_tokens"]["()"] == "billing_digest.unsubscribe.server.RedactTokens"
