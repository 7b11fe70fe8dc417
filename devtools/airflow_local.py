"""A real Airflow 3.3 on this machine: `airflow standalone` (api-server, scheduler, dag-processor,
triggerer; LocalExecutor by default) with its metadata in the embedded PostgreSQL.

Used by `make airflow` (the UI on http://localhost:8080), the backfill and Celery tests and the
benchmarks. ``python -m devtools.airflow_local`` seeds the demo data, starts an SMTP sink and
Airflow, prints the admin password and waits.

Before starting anything it creates the Airflow pool the DAG's ``deliver`` runs in
(``BILLING_DIGEST_SMTP_POOL``, default ``billing_smtp``) with ``BILLING_DIGEST_SMTP_POOL_SLOTS``
slots (default 4): the SMTP connections open at once. Without the pool ``deliver`` never runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from billing_digest.window import last_closed_window
from devtools import embedded_pg
from devtools.airflow_env import DEMO, airflow_env
from devtools.processes import INSTANCE, alive, group_alive
from devtools.smtp_sink import free_port

SIMPLE_AUTH_PASSWORDS = "simple_auth_manager_passwords.json.generated"
NOTE_BOT = "digest-bot"
DEFAULT_SMTP_POOL = "billing_smtp"  # as dags/billing_error_digest.py: SMTP_POOL
DEFAULT_SMTP_POOL_SLOTS = 4


class LocalAirflow:
    """Start with ``with LocalAirflow(...) as af:``; ``af.cli([...])`` runs the CLI against it."""

    def __init__(self, home: Path, billing_dsn: str, smtp_port: int, port: int = 8080,
                 executor: str = "LocalExecutor", metadata_dsn: str | None = None,
                 commands: tuple[tuple[str, ...], ...] = (("standalone",),),
                 extra_env: dict[str, str] | None = None,
                 command_env: dict[str, dict[str, str]] | None = None,
                 smtp_pool_slots: int | None = None):
        self.home, self.port = home, port
        home.mkdir(parents=True, exist_ok=True)
        if metadata_dsn is None:
            server = embedded_pg.start(DEMO / "pg", keep_running=True)
            metadata_dsn = embedded_pg.ensure_database(server, f"airflow_{home.name}".replace("-", "_"))
        secret_file = home / "jwt_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32))
        # The simple auth manager's users: admin (the UI) and digest-bot, which only edits the runs'
        # notes (role "user"); the DAG's tasks log in as digest-bot through the connection airflow_api.
        passwords_file = home / SIMPLE_AUTH_PASSWORDS
        passwords = json.loads(passwords_file.read_text()) if passwords_file.exists() else {}
        passwords.setdefault(NOTE_BOT, secrets.token_urlsafe(16))
        passwords_file.write_text(json.dumps(passwords))
        self.env = airflow_env(home, billing_dsn, smtp_port, **{
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(metadata_dsn),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__API__PORT": str(port),
            # Log servers of the scheduler/worker and the triggerer (defaults 8793/8794) on free ports,
            # so several instances (tests, benchmarks, `make airflow`) can run side by side.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{NOTE_BOT}:user",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW_CONN_AIRFLOW_API": json.dumps({"conn_type": "http", "host": "localhost", "port": port,
                                                    "login": NOTE_BOT, "password": passwords[NOTE_BOT]}),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__CORE__PARALLELISM": "8",
            **(extra_env or {}),
        })
        self.commands = commands
        self.command_env = command_env or {}  # per command (keyed by its first word): env overrides
        self.smtp_pool = self.env.get("BILLING_DIGEST_SMTP_POOL") or DEFAULT_SMTP_POOL
        self.smtp_pool_slots = smtp_pool_slots or int(self.env.get("BILLING_DIGEST_SMTP_POOL_SLOTS")
                                                      or DEFAULT_SMTP_POOL_SLOTS)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.on_process_started: Any = None  # called with each new process (`make airflow` records its group)

    def cli(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                              text=True)
        if check and done.returncode:
            raise RuntimeError(f"`airflow {' '.join(args)}` failed (exit {done.returncode}):\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done

    def start(self, timeout: float = 180) -> LocalAirflow:
        migrate = self.cli(["db", "migrate"], check=False)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}")
        self.set_smtp_pool(self.smtp_pool_slots)
        for command in self.commands:
            self.procs.append(self.start_command(command))
            if self.on_process_started is not None:
                self.on_process_started(self.procs[-1])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                self.stop()
                raise RuntimeError(f"an Airflow process exited early; see the logs in {self.home}")
            if self.healthy():
                return self
            time.sleep(1)
        self.stop()
        raise TimeoutError(f"Airflow not healthy after {timeout}s; see the logs in {self.home}")

    def start_command(self, command: tuple[str, ...]) -> subprocess.Popen[bytes]:
        """Start ``airflow <command>`` in its own process group (its log in the Airflow home). Env
        overrides: ``command_env`` keyed by the whole command (words joined by spaces), else by its
        first word."""
        name = command[-1]
        if command[0] == "celery":
            name = "celery-worker" + (f"-{command[command.index('--celery-hostname') + 1]}"
                                      if "--celery-hostname" in command else "")
        log = (self.home / f"{name}.log").open("ab")
        env = {**self.env, **self.command_env.get(command[0], {}), **self.command_env.get(" ".join(command), {})}
        return subprocess.Popen([sys.executable, "-m", "airflow", *command], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def set_smtp_pool(self, slots: int) -> None:
        """Create (or resize) the pool of ``deliver``: at most ``slots`` SMTP connections at once."""
        self.cli(["pools", "set", self.smtp_pool, str(slots),
                  "billing_error_digest.deliver: one slot per SMTP connection to the mail provider"])

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=2) as r:
                health = json.load(r)
        except OSError:
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    @property
    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def admin_password(self) -> str:
        path = self.home / SIMPLE_AUTH_PASSWORDS
        return json.loads(path.read_text()).get("admin", "?") if path.exists() else "?"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API (``/api/v2/...``) as admin; returns the decoded JSON."""
        import httpx

        base = f"http://127.0.0.1:{self.port}"
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": self.admin_password()},
                           timeout=10).json()["access_token"]
        reply = httpx.request(method, f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                              **kwargs)
        reply.raise_for_status()
        return reply.json()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        out = self.cli(["dags", "list-runs", dag_id, "-o", "json"], check=False).stdout
        for line in out.splitlines():  # log lines may come first
            if line.startswith("[{") or line.strip() == "[]":
                return json.loads(line)
        return []

    def wait_for_runs(self, dag_id: str, count: int, timeout: float = 600) -> list[dict[str, Any]]:
        """Wait until ``count`` runs of ``dag_id`` have finished (success or failed)."""
        deadline = time.monotonic() + timeout
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = self.runs(dag_id)
            done = [r for r in runs if r.get("state") in ("success", "failed")]
            if len(done) >= count and len(done) == len(runs):
                return runs
            time.sleep(2)
        raise TimeoutError(f"{dag_id}: runs not finished after {timeout}s: {runs}")


def sqlalchemy_url(dsn: str) -> str:
    """A libpq URI as SQLAlchemy wants it, with the psycopg 3 driver."""
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


UI_HOME = DEMO / "airflow-ui"
CLI_ENV = UI_HOME / "cli-env.json"


def running_instance(path: Path | None = None) -> dict[str, Any] | None:
    """The `make airflow` recorded in ``instance.json`` if it (or any process it started) still runs."""
    path = path or INSTANCE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return None
    if alive(int(record.get("pid", 0)) or -1) or any(group_alive(g) for g in record.get("process_groups", [])):
        return record
    return None


def already_running_message(record: dict[str, Any]) -> str:
    main_alive = alive(int(record.get("pid", 0)) or -1)
    what = (f"`make airflow` is already running (pid {record.get('pid')}, started {record.get('started_at', '?')})"
            if main_alive else
            f"processes of an earlier `make airflow` (pid {record.get('pid')}, now gone) are still running "
            f"(process groups {', '.join(str(g) for g in record.get('process_groups', []))})")
    return (f"{what}.\n  UI: {record.get('url', '?')}  ·  logs: {record.get('home', UI_HOME)}/standalone.log\n"
            "  Use it as it is, or stop it first with `make stop` (stops every process it started), then run "
            "`make airflow` again.\nNothing was started and none of its files were touched.")


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    """`make airflow`: Airflow with the UI on the demo's embedded defaults, on a day that has data.
    `make airflow-cli ARGS='...'`: the airflow CLI against that instance."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cli"]:
        return cli(argv[1:])
    if argv[:1] == ["backfill"]:
        return cli(backfill_args(dt.date.fromisoformat(argv[1]), dt.date.fromisoformat(argv[2])))
    from devtools.airflow_env import billing_dsn
    from devtools.demo import seed
    from devtools.smtp_sink import SmtpSink

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if (record := running_instance()) is not None:  # before touching anything of the running one
        print(already_running_message(record), file=sys.stderr)
        return 1
    port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    if port_in_use(port):
        print(f"Port {port} is in use by another program (not a `make airflow` of this checkout): stop it, or "
              f"start on another port: AIRFLOW_PORT=8081 make airflow. Nothing was started.", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, interrupted)  # stop Airflow's processes on `kill` too, not only Ctrl-C
    # The local instance's own database, seeded around the last closed window: the default Trigger and
    # the scheduled run (once unpaused) report a day that has data.
    day = last_closed_window(dt.datetime.now(dt.UTC)).digest_date
    dsn = billing_dsn("billing_ui")
    seed(dsn, day, marker_name="seeded-ui.json")
    with SmtpSink(outbox=DEMO / "outbox-ui") as sink:
        af = LocalAirflow(UI_HOME, dsn, sink.port, port=port)
        CLI_ENV.write_text(json.dumps(af.env))
        record: dict[str, Any] = {"pid": os.getpid(), "url": f"http://localhost:{port}", "home": str(UI_HOME),
                                  "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                                  "process_groups": []}
        INSTANCE.write_text(json.dumps(record))

        def remember(proc: subprocess.Popen[bytes]) -> None:  # make stop stops it even if this process dies
            record["process_groups"].append(proc.pid)  # its own session: its pid is its process group
            INSTANCE.write_text(json.dumps(record))

        af.on_process_started = remember
        print(f"- SMTP sink: 127.0.0.1:{sink.port} -> {DEMO / 'outbox-ui'}")
        print(f"- pool {af.smtp_pool}: {af.smtp_pool_slots} slots (SMTP connections at once; "
              f"BILLING_DIGEST_SMTP_POOL_SLOTS)")
        print("- starting Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor) ...")
        with af:
            print(f"\nAirflow UI: http://localhost:{af.port}  user: admin  password: {af.admin_password()}")
            print(f"DAG: billing_error_digest (unpause it, or Trigger: the default run reports {day:%d/%m/%Y}).")
            print(f"Digest preview: http://localhost:{af.port}/billing-digest/  ·  logs: {af.home / 'standalone.log'}")
            print("CLI against this instance: make airflow-cli ARGS='dags list-runs billing_error_digest'")
            print("Ctrl-C (or make stop) stops everything.")
            try:
                while af.running:
                    time.sleep(1)
            except KeyboardInterrupt:
                print("\nstopping ...")
        INSTANCE.unlink(missing_ok=True)
    return 0


def backfill_args(first: dt.date, last: dt.date, max_active_runs: int = 2) -> list[str]:
    """`airflow backfill create` for digest days ``first`` to ``last``, both included. A run's logical
    date is its window's start (D 06:30 local, 09:30 UTC) and Airflow reads a bare ``--to-date`` as
    midnight UTC, before that: the day after ``last`` is the ``--to-date`` that includes ``last``."""
    return ["backfill", "create", "--dag-id", "billing_error_digest", "--from-date", first.isoformat(),
            "--to-date", (last + dt.timedelta(days=1)).isoformat(), "--max-active-runs", str(max_active_runs)]


def cli(args: list[str]) -> int:
    """Run `airflow <args>` with the environment of the `make airflow` instance (its metadata database,
    connections and settings): a plain `AIRFLOW_HOME=... airflow ...` would use an empty SQLite file."""
    if not CLI_ENV.exists():
        print("No local Airflow instance yet: start `make airflow` once (it creates the instance this command "
              "talks to); its metadata stays in .demo/ until `make clean`.", file=sys.stderr)
        return 2
    env = json.loads(CLI_ENV.read_text())
    embedded_pg.start(DEMO / "pg", keep_running=True)  # the metadata database, if it was stopped
    return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
