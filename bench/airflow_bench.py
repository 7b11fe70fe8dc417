"""Targets 5 and 6: the day under a real scheduler, and the naive design side by side.

One ``airflow standalone`` (LocalExecutor, parallelism 8, metadata in the benchmark's PostgreSQL)
with two DAGs: ``billing_error_digest`` (ours, unchanged) and ``bench/naive_dags`` (one mapped
``EmailOperator`` per e-mail). Every run is triggered through the REST API (no CLI start-up in
the figure) and timed from the trigger to the moment the SMTP sink (its own process) accepted the
last message of the run.

- whole day: every digest of the scale's day, from nothing staged;
- side by side: the same ~1,000 digests (the first companies by id whose digests add up to
  1,000 or more) through ours (``entity_ids`` parameter; it still extracts and builds the whole
  day) and through the naive DAG (which reads the digests ours staged).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import statistics
import time
import urllib.error
import urllib.request
from typing import Any

import psycopg

from bench import digests as dg
from bench.common import BENCH, DATA, ROOT, log, server_dsn, window
from bench.sink import FastSink
from devtools import embedded_pg
from devtools.airflow_local import LocalAirflow
from devtools.smtp_sink import free_port

OURS, NAIVE = "billing_error_digest", "naive_billing_digest"
MAX_MAP_LENGTH = 4096  # Airflow's default is 1024 mapped instances per task


class Api:
    """The Airflow REST API (v2) as the admin user of the simple auth manager."""

    def __init__(self, port: int, password: str):
        self.base = f"http://127.0.0.1:{port}"
        body = json.dumps({"username": "admin", "password": password}).encode()
        req = urllib.request.Request(f"{self.base}/auth/token", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.token = json.load(r)["access_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(f"{self.base}/api/v2{path}", None if body is None else json.dumps(body).encode(),
                                     {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
                                     method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def wait_dag(self, dag_id: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.call("GET", f"/dags/{dag_id}")
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(2)
        raise TimeoutError(f"{dag_id} not parsed after {timeout}s")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> float:
        started = time.time()
        self.call("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf})
        return started

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} not finished after {timeout}s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(out)}")
            out += page["task_instances"]
            if not page["task_instances"] or len(out) >= page["total_entries"]:
                return out


def _ts(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value).timestamp() if value else None


def _tasks_summary(tis: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    """Per task: instances, states, first start and last end relative to the trigger, mean duration."""
    by: dict[str, list[dict[str, Any]]] = {}
    for ti in tis:
        by.setdefault(ti["task_id"], []).append(ti)
    out = {}
    for task_id, items in by.items():
        starts = [s for s in (_ts(t["start_date"]) for t in items) if s]
        ends = [e for e in (_ts(t["end_date"]) for t in items) if e]
        durations = [t["duration"] for t in items if t.get("duration") is not None]
        out[task_id] = {"instances": len(items), "states": dict(sorted(
            {s: sum(1 for t in items if t["state"] == s) for s in {t["state"] for t in items}}.items())),
            "first_start_s": round(min(starts) - t0, 1) if starts else None,
            "last_end_s": round(max(ends) - t0, 1) if ends else None,
            "mean_duration_s": round(statistics.mean(durations), 2) if durations else None,
            "sum_duration_s": round(sum(durations), 1) if durations else None}
    return out


def _timed_run(api: Api, sink: FastSink, dag_id: str, run_id: str, conf: dict[str, Any], expected: int | None,
               timeout: float) -> dict[str, Any]:
    sink.reset()
    t0 = api.trigger(dag_id, run_id, conf)
    run = api.wait_run(dag_id, run_id, timeout)
    finished = time.time()
    if expected is not None:
        sink.wait_for(expected, 60, idle=15)
    tis = api.task_instances(dag_id, run_id)
    last = sink.last
    result = {"dag_id": dag_id, "run_id": run_id, "state": run["state"], "emails_received": sink.count,
              "expected": expected,
              "trigger_to_last_email_s": round(last - t0, 1) if sink.count else None,
              "trigger_to_first_email_s": round(sink.first - t0, 1) if sink.count else None,
              "trigger_to_run_finished_s": round((_ts(run.get("end_date")) or finished) - t0, 1),
              "tasks": _tasks_summary(tis, t0)}
    log(f"airflow: {dag_id} {run_id}: {run['state']}, {sink.count:,} e-mails, trigger -> last e-mail "
        f"{result['trigger_to_last_email_s']} s")
    return result


def _pick_entities(conn: psycopg.Connection, day: dt.date, n: int) -> tuple[list[int], int]:
    rows = conn.execute("SELECT entity_id, count(*) FROM digest.deliveries WHERE digest_date = %s "
                        "AND state <> 'skipped' GROUP BY entity_id ORDER BY entity_id", (day,)).fetchall()
    chosen, total = [], 0
    for entity_id, count in rows:
        if total >= n:
            break
        chosen.append(int(entity_id))
        total += int(count)
    return chosen, total


def _dags_folder() -> str:
    folder = DATA / "dags"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "billing_error_digest.py").symlink_to(ROOT / "dags" / "billing_error_digest.py")
    (folder / "naive_billing_digest.py").symlink_to(BENCH / "naive_dags" / "naive_billing_digest.py")
    return str(folder)


def run(dsn: str, scale: str, naive_digests: int = 1000, naive: bool = True, whole_day: bool = True) -> dict[str, Any]:
    day = window().digest_date
    home = DATA / f"airflow-{scale}"
    shutil.rmtree(home, ignore_errors=True)
    metadata = embedded_pg.ensure_database(server_dsn(), f"airflow_bench_{scale.lower()}", recreate=True)
    extra_env = {"AIRFLOW__CORE__DAGS_FOLDER": _dags_folder(),
                 "AIRFLOW__CORE__MAX_MAP_LENGTH": str(MAX_MAP_LENGTH),
                 "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                 # The scheduled run that unpausing starts reports a day without data: its freshness
                 # gate gives up in 36 s instead of 3 h (the measured run's data has arrived).
                 "BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS": "0.01", "BILLING_DIGEST_FRESHNESS_POKE_SECONDS": "5",
                 # SMTP connections at once (the Airflow pool of deliver): the executor's parallelism.
                 "BILLING_DIGEST_SMTP_POOL_SLOTS": os.environ.get("BILLING_DIGEST_SMTP_POOL_SLOTS", "8")}
    out: dict[str, Any] = {"executor": "LocalExecutor", "parallelism": 8, "max_map_length": MAX_MAP_LENGTH,
                           "smtp_pool_slots": int(extra_env["BILLING_DIGEST_SMTP_POOL_SLOTS"]),
                           "airflow_env": extra_env | {"AIRFLOW__CORE__DAGS_FOLDER": "bench/.data/dags (symlinks)"}}
    with FastSink() as sink:
        af = LocalAirflow(home, dsn, sink.port, port=free_port(), metadata_dsn=metadata, extra_env=extra_env)
        started = time.monotonic()
        try:
            _measure(af, out, sink, dsn, scale, day, started, naive_digests, naive, whole_day)
        finally:
            _reap(af)
    return out


def _reap(af: LocalAirflow) -> None:
    """Stop Airflow, then kill what is left of its process groups (stragglers of ``standalone``)."""
    af.stop()
    for proc in af.procs:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(3)


def _measure(af: LocalAirflow, out: dict[str, Any], sink: FastSink, dsn: str, scale: str, day: dt.date,
             started: float, naive_digests: int, naive: bool, whole_day: bool) -> None:
    with af:
        out["startup_s"] = round(time.monotonic() - started, 1)
        api = Api(af.port, af.admin_password())
        for dag_id in (OURS, NAIVE):
            api.wait_dag(dag_id)
            api.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        # Unpausing may start the latest scheduled interval (catchup is off): let it finish first.
        time.sleep(10)
        deadline = time.monotonic() + 900
        while any(r["state"] not in ("success", "failed") for r in api.runs(OURS)):
            if time.monotonic() > deadline:
                raise TimeoutError("the scheduled run did not finish")
            time.sleep(2)
        out["scheduled_runs_before"] = [{"run_id": r["dag_run_id"], "state": r["state"]} for r in api.runs(OURS)]
        conf = {"digest_date": day.isoformat()}
        if whole_day:
            with psycopg.connect(dsn, autocommit=True) as conn:
                dg.reset_day(conn, day)
            log(f"airflow: whole day {scale} under the scheduler ...")
            whole = _timed_run(api, sink, OURS, f"bench_whole_{int(time.time())}", conf, None, 1800)
            with psycopg.connect(dsn, autocommit=True) as conn:
                sent = conn.execute("SELECT count(*) FROM digest.deliveries WHERE digest_date = %s "
                                    "AND state = 'sent'", (day,)).fetchone()[0]
            whole["ledger_sent"] = sent
            whole["target_s"] = 300
            whole["target_met"] = bool(whole["trigger_to_last_email_s"] is not None
                                       and whole["trigger_to_last_email_s"] <= 300 and sent == sink.count)
            out["whole_day"] = whole
        if naive:
            with psycopg.connect(dsn, autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM digest.deliveries WHERE digest_date = %s LIMIT 1",
                                    (day,)).fetchone():
                    dg.build(conn)
                entities, n = _pick_entities(conn, day, naive_digests)
                dg.reset_day(conn, day)
            side = {"entities": len(entities), "digests": n}
            log(f"airflow: side by side on {n:,} digests of {len(entities)} companies: ours ...")
            side["ours"] = _timed_run(api, sink, OURS, f"bench_ours_{n}_{int(time.time())}",
                                      {**conf, "entity_ids": entities}, n, 1800)
            log("airflow: side by side: naive ...")
            side["naive"] = _timed_run(api, sink, NAIVE, f"bench_naive_{n}_{int(time.time())}",
                                       {**conf, "entity_ids": entities}, n, 3600)
            a, b = side["ours"]["trigger_to_last_email_s"], side["naive"]["trigger_to_last_email_s"]
            side["ratio_naive_over_ours"] = round(b / a, 1) if a and b else None
            side["target_ratio"] = 10
            side["target_met"] = bool(a and b and b / a >= 10)
            out["side_by_side"] = side
