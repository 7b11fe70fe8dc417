"""Environment for running Airflow locally on the embedded defaults (demo, `make airflow`)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from devtools import embedded_pg, smtp_sink

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
UNSUBSCRIBE_SECRET_FILE = DEMO / "unsubscribe_secret"


def unsubscribe_port() -> int:
    """Port of `make unsubscribe` (env UNSUBSCRIBE_PORT, default 8099)."""
    return int(os.environ.get("UNSUBSCRIBE_PORT") or 8099)


def local_unsubscribe_url() -> str:
    """Where the demo's unsubscribe links point: the service `make unsubscribe` starts."""
    return f"http://127.0.0.1:{unsubscribe_port()}/notificacoes/cancelar"


def demo_secret() -> str:
    """The demo's unsubscribe secret: random, made once into .demo/unsubscribe_secret (mode 0600).

    The demo's runs sign their links with it and `make unsubscribe` verifies them with it: a real
    secret, so runs pass the fail-closed check (secret_check.require_safe) without any exception to it.
    """
    DEMO.mkdir(exist_ok=True)
    try:
        fd = os.open(UNSUBSCRIBE_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return UNSUBSCRIBE_SECRET_FILE.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    return UNSUBSCRIBE_SECRET_FILE.read_text().strip()


def demo_settings_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the demo's unsubscribe secret and link, unless the caller set their own."""
    if not env.get("BILLING_DIGEST_UNSUBSCRIBE_SECRET"):
        env["BILLING_DIGEST_UNSUBSCRIBE_SECRET"] = demo_secret()
    env.setdefault("BILLING_DIGEST_UNSUBSCRIBE_URL", local_unsubscribe_url())
    return env


def billing_dsn(database: str = "billing") -> str:
    """BILLING_DIGEST_DSN if set, else ``database`` on the embedded server in .demo/pg (started if needed)."""
    base = os.environ.get("BILLING_DIGEST_DSN")
    if base:
        return base
    server = embedded_pg.start(DEMO / "pg", keep_running=True)
    return embedded_pg.ensure_database(server, database)


def airflow_env(airflow_home: Path, dsn: str, smtp_port: int, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_BILLING_DB": json.dumps(embedded_pg.airflow_connection(dsn)),
        "AIRFLOW_CONN_BILLING_SMTP": json.dumps(smtp_sink.airflow_connection(smtp_port)),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT), env.get("PYTHONPATH", "")]),
        # `airflow standalone` starts its parts as `airflow ...`: this venv's must come first.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    })
    env.setdefault("BILLING_DIGEST_BASE_URL", "https://app.fintera.com.br")
    demo_settings_env(env)
    env.update(extra)
    return env


def airflow(args: list[str], env: dict[str, str], log: Path | None = None, check: bool = True) -> int:
    """Run the airflow CLI of this venv; output to ``log`` when given."""
    cmd = [sys.executable, "-m", "airflow", *args]
    if log is None:
        return subprocess.run(cmd, env=env, check=check).returncode
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if check and rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise SystemExit(f"`airflow {' '.join(args)}` failed (exit {rc}); last lines of {log}:\n" + "\n".join(tail))
    return rc


def migrate(env: dict[str, str]) -> None:
    home = Path(env["AIRFLOW_HOME"])
    if not (home / "airflow.db").exists():
        airflow(["db", "migrate"], env, log=home / "migrate.log")
