"""Issue 14: the day at the provider's pace. N digests against an SMTP server that accepts R messages per
second and refuses past it (devtools.throttle_sink: SES's ``454 Throttling failure`` by default), sharing the
limiter row in PostgreSQL, sent by one of three runners (``--runner``):

- ``process``: one real process per batch calling ``deliver_batch`` (as the mapped ``deliver`` tasks with a
  pool of that many slots), no Airflow; a batch that raises DeliveryIncomplete counts as a failed task and is
  run again at once (Airflow's retry);
- ``dagtest``: the real DAG (dags/billing_error_digest.py) through Airflow's ``dag.test()`` for the bench day
  (SQLite metadata under bench/.data/pace-dagtest; settings through ``BILLING_DIGEST_*``; retries after 1 s
  instead of minutes, so a needless retry shows without stalling the run). ``dag.test()`` runs the mapped
  ``deliver`` instances one after another: one SMTP connection at a time, no parallelism;
- ``scheduler``: the real DAG under ``airflow standalone`` (LocalExecutor, parallelism 8, the SMTP pool
  ``--pool-slots`` wide, metadata in the bench's PostgreSQL), each run triggered through the REST API with
  the settings in the Variable; the ``deliver`` tasks run in parallel. Task failures = tries beyond the first.

Every run first puts the day's digests back to ``pending`` and forgets the limiter's state.

(a) cap = 95% of R: every digest once, 0 throttle replies, wall (first to last message at the server)
    <= 1.1 x N/R;
(b) no cap, adaptive only: every digest once, wall <= 1.3 x N/R, no task failed.

    python -m bench.pace_bench --scale M --rate 100 --sizes 0.5,1 [--runner dagtest] [--pause 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import digests as dg
from bench.common import DATA, ROOT, log, save, scale_dsn, server_dsn, window
from bench.mta import RATE_WARNING, RateLimitedPostfix
from billing_digest import DAG_ID
from billing_digest.settings import VARIABLE
from billing_digest.window import TIMEZONE
from devtools.smtp_sink import free_port
from devtools.throttle_sink import peak_rate

RUNNERS = ("process", "dagtest", "scheduler")
# The dag.test() child's instructions (JSON: conf, where to write its result, the retry delay).
CHILD_SPEC = "PACE_BENCH_DAG_TEST"
DELIVER = "deliver"


def _deliver(args: tuple[str, int, int, dict[str, Any], list[int] | None]) -> dict[str, Any]:
    """One batch, in its own process, retried at once while it is incomplete (what Airflow's retry does)."""
    from billing_digest.delivery.deliver import DeliveryIncomplete, DeliveryOptions, deliver_batch
    from billing_digest.delivery.smtp import SmtpSettings
    from billing_digest.mail.render import Renderer
    from billing_digest.settings import Settings

    dsn, port, batch, option_values, entity_ids = args
    failures, throttled, outcomes = 0, 0, {}
    options = DeliveryOptions(run_id=f"pace-{batch}-{time.time_ns()}",
                              entity_ids=tuple(entity_ids) if entity_ids else None, **option_values)
    for _ in range(10):
        with psycopg.connect(dsn) as conn:
            try:
                report = deliver_batch(conn, SmtpSettings(host="127.0.0.1", port=port, timeout=30),
                                       Renderer(Settings()), window().digest_date, batch, options)
            except DeliveryIncomplete:
                failures += 1
                continue
        throttled += report.throttled
        outcomes = report.outcomes
        break
    return {"batch": batch, "task_failures": failures, "throttled": throttled, "outcomes": outcomes}


def _server(port: int, rate: float, burst_seconds: float, figures: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen([sys.executable, "-m", "devtools.throttle_sink", "--port", str(port), "--rate", str(rate),
                             "--burst", str(max(1.0, rate * burst_seconds)), "--figures", str(figures)],
                            env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and "listening" in proc.stdout.readline()
    return proc


class Runner:
    """Sends the day's pending digests (of ``entity_ids``, or all) to an SMTP server on ``port``."""

    name = "process"
    smtp_port: int | None = None  # the port its SMTP connection is fixed to (None: a new one each run)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, port: int, cap: float, pause: float, entity_ids: list[int] | None) -> dict[str, Any]:
        raise NotImplementedError


class ProcessRunner(Runner):
    """One process per batch calling deliver_batch (no Airflow)."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def send(self, port: int, cap: float, pause: float, entity_ids: list[int] | None) -> dict[str, Any]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            batches = [b["batch"] for b in dg.plan(conn, window().digest_date)]
        options = {"max_messages_per_second": cap, "throttle_pause_seconds": pause}
        with mp.get_context("spawn").Pool(len(batches)) as pool:
            tasks = pool.map(_deliver, [(self.dsn, port, b, options, entity_ids) for b in batches])
        return {"batches": len(batches), "task_failures": sum(t["task_failures"] for t in tasks),
                "client_throttled": sum(t["throttled"] for t in tasks)}


def _settings_env(cap: float, pause: float) -> dict[str, str]:
    return {"BILLING_DIGEST_SMTP_MAX_MESSAGES_PER_SECOND": str(cap),
            "BILLING_DIGEST_SMTP_THROTTLE_PAUSE_SECONDS": str(pause)}


# The DAG reads these at parse time: the bench day's data has arrived, so the sensor's first poke passes;
# a day without data (the scheduled run that unpausing starts) gives up in 36 s, not 3 h.
FAST_SENSOR = {"BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS": "0.01", "BILLING_DIGEST_FRESHNESS_POKE_SECONDS": "5"}


class DagTestRunner(Runner):
    """The real DAG through dag.test() (in a child process: Airflow reads its environment at import)."""

    name = "dagtest"

    def __init__(self, dsn: str, retry_seconds: float = 1.0):
        self.dsn, self.retry_seconds = dsn, retry_seconds
        self.home = DATA / "pace-dagtest"
        self.runs = 0

    def _env(self, port: int, cap: float, pause: float) -> dict[str, str]:
        from devtools.airflow_env import airflow_env

        return airflow_env(self.home, self.dsn, port, AIRFLOW__CORE__UNIT_TEST_MODE="False",
                           AIRFLOW__LOGGING__LOGGING_LEVEL="INFO", **FAST_SENSOR, **_settings_env(cap, pause))

    def __enter__(self) -> DagTestRunner:
        from devtools.airflow_env import migrate

        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        migrate(self._env(free_port(), 0.0, 1.0))  # SQLite metadata, once
        return self

    def send(self, port: int, cap: float, pause: float, entity_ids: list[int] | None) -> dict[str, Any]:
        self.runs += 1
        out, run_log = self.home / f"run-{self.runs}.json", self.home / f"run-{self.runs}.log"
        spec = {"conf": _conf(entity_ids), "out": str(out), "retry_seconds": self.retry_seconds}
        env = {**self._env(port, cap, pause), CHILD_SPEC: json.dumps(spec)}
        with run_log.open("w") as sink:
            rc = subprocess.run([sys.executable, "-c", "from bench.pace_bench import dag_test_child; dag_test_child()"],
                                env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, check=False).returncode
        if not out.exists():  # the child crashed before dag.test() returned: nothing to measure
            raise RuntimeError(f"dag.test() child exited {rc}: {run_log.read_text(errors='replace')[-3000:]}")
        result = json.loads(out.read_text())
        return {"run_state": result["state"], "log": str(run_log.relative_to(ROOT)),
                **_task_figures(result["tis"], result["reports"])}


def _conf(entity_ids: list[int] | None) -> dict[str, Any]:
    return {"digest_date": window().digest_date.isoformat(), "entity_ids": entity_ids}


def dag_test_child() -> None:
    """In the child process of DagTestRunner: one dag.test() run; its task instances and the deliver
    tasks' reports to the file the spec names."""
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    spec = json.loads(os.environ[CHILD_SPEC])
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[DAG_ID]
    for task in dag.tasks:  # a retry after seconds, not minutes (tests/scenarios/crashkit.fresh_dag)
        task.retry_delay = dt.timedelta(seconds=spec["retry_seconds"])
        task.retry_exponential_backoff = 0
    # The digest day is the conf's digest_date; the logical date (the day after at 06:30) only names the run.
    logical = pendulum.datetime(*(window().digest_date + dt.timedelta(days=1)).timetuple()[:3], 6, 30,
                                tz=TIMEZONE)
    run = dag.test(logical_date=logical, run_conf=spec["conf"])
    tis = [{"task_id": ti.task_id, "map_index": ti.map_index, "state": str(ti.state), "try_number": ti.try_number,
            "start_date": ti.start_date.isoformat() if ti.start_date else None,
            "end_date": ti.end_date.isoformat() if ti.end_date else None} for ti in run.get_task_instances()]
    Path(spec["out"]).write_text(json.dumps({"state": str(run.state), "tis": tis,
                                             "reports": _xcom_reports(run.run_id)}, default=str))


def _xcom_reports(run_id: str) -> list[dict[str, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run_id, key="return_value", task_ids=DELIVER,
                                                  dag_ids=DAG_ID)).all()
        return [_decoded(XComModel.deserialize_value(r)) for r in rows]


def _decoded(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _task_figures(tis: list[dict[str, Any]], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The deliver tasks: how many, failures (tries beyond the first, or not success), and what each batch
    reported (throttle replies, pace waits, throttle pauses, its own start and end)."""
    delivers = sorted((t for t in tis if t["task_id"] == DELIVER), key=lambda t: t["map_index"])
    batches = sorted(({k: r.get(k) for k in ("batch", "outcomes", "seconds", "started_at", "finished_at", "throttled",
                                              "throttle_pause_seconds", "pace_wait_seconds")} for r in reports),
                     key=lambda r: str(r["started_at"]))
    return {"batches": len(delivers),
            "task_failures": sum(max(0, int(t["try_number"]) - 1) for t in delivers)
            + sum(1 for t in delivers if "success" not in str(t["state"]).lower()),
            "task_states": {t["task_id"]: str(t["state"]) for t in tis if t["task_id"] != DELIVER},
            "deliver_tries": [t["try_number"] for t in delivers],
            "client_throttled": sum(int(r.get("throttled") or 0) for r in reports),
            "pace_wait_seconds": round(sum(float(r.get("pace_wait_seconds") or 0) for r in reports), 3),
            "throttle_pause_seconds": round(sum(float(r.get("throttle_pause_seconds") or 0) for r in reports), 3),
            "deliver_reports": batches}


class SchedulerRunner(Runner):
    """The real DAG under `airflow standalone` (LocalExecutor), deliver tasks in parallel."""

    name = "scheduler"

    def __init__(self, dsn: str, pool_slots: int = 8):
        self.dsn, self.pool_slots = dsn, pool_slots
        self.smtp_port = free_port()  # the billing_smtp connection is fixed when Airflow starts
        self.runs = 0

    def __enter__(self) -> SchedulerRunner:
        from bench.airflow_bench import Api
        from devtools import embedded_pg
        from devtools.airflow_local import LocalAirflow

        home = DATA / "pace-airflow"
        shutil.rmtree(home, ignore_errors=True)
        metadata = embedded_pg.ensure_database(server_dsn(), "airflow_pace", recreate=True)
        extra_env = {**FAST_SENSOR, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                     "BILLING_DIGEST_SMTP_POOL_SLOTS": str(self.pool_slots)}
        self.af = LocalAirflow(home, self.dsn, self.smtp_port, port=free_port(), metadata_dsn=metadata,
                               extra_env=extra_env)
        started = time.monotonic()
        self.af.start()
        try:
            self.api = Api(self.af.port, self.af.admin_password())
            self.api.wait_dag(DAG_ID)
            self.api.call("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
            # Unpausing starts the latest scheduled interval (catchup is off), a day without data whose sensor
            # would wait and retry for many minutes: mark it failed (another day: it never blocks ours).
            time.sleep(10)
            for run in self.api.runs(DAG_ID):
                if run["state"] not in ("success", "failed"):
                    self.api.call("PATCH", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", {"state": "failed"})
        except BaseException:
            self.__exit__()
            raise
        self.startup_seconds = round(time.monotonic() - started, 1)
        log(f"pace: airflow standalone up in {self.startup_seconds}s (pool {self.pool_slots} slots)")
        return self

    def __exit__(self, *exc: object) -> None:
        from bench.airflow_bench import _reap

        _reap(self.af)

    def _settings(self, values: dict[str, Any]) -> None:
        import urllib.error

        try:
            self.api.call("DELETE", f"/variables/{VARIABLE}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        except json.JSONDecodeError:  # 204: no body
            pass
        self.api.call("POST", "/variables", {"key": VARIABLE, "value": json.dumps(values)})

    def send(self, port: int, cap: float, pause: float, entity_ids: list[int] | None) -> dict[str, Any]:
        self._settings({"smtp_max_messages_per_second": cap, "smtp_throttle_pause_seconds": pause})
        self.runs += 1
        run_id = f"pace_{self.runs}_{int(time.time())}"
        t0 = self.api.trigger(DAG_ID, run_id, _conf(entity_ids))
        run = self.api.wait_run(DAG_ID, run_id, 1800)
        tis = self.api.task_instances(DAG_ID, run_id)
        reports = []
        for ti in tis:
            if ti["task_id"] == DELIVER:
                entry = self.api.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{DELIVER}/xcomEntries/"
                                             f"return_value?map_index={ti['map_index']}")
                reports.append(_decoded(entry["value"]))
        figures = _task_figures(tis, reports)
        # When each batch began sending (its report; the API's start_date is the task's, before its start-up).
        starts = [_epoch(str(r["started_at"])) for r in reports if r.get("started_at")]
        return {"run_state": run["state"], "run_id": run_id, "pool_slots": self.pool_slots,
                "airflow_startup_seconds": self.startup_seconds,
                "trigger_to_first_batch_s": round(min(starts) - t0, 1) if starts else None,
                "batch_start_spread_s": round(max(starts) - min(starts), 2) if starts else None, **figures}


def _epoch(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def one_run(dsn: str, runner: Runner, rate: float, cap: float, pause: float, entity_ids: list[int] | None,
            expected: int, burst_seconds: float, postfix_unit: int = 0) -> dict[str, Any]:
    """One send of the chosen digests. The server: the throttle sink on the runner's port, or (``postfix_unit``
    seconds) a rate-limited postfix there relaying to a throttle sink with no limit."""
    day = window().digest_date
    with psycopg.connect(dsn, autocommit=True) as conn:
        dg.mark_pending(conn, day)
        conn.execute("DELETE FROM digest.send_pace")  # every run starts from what it knows: nothing
    port = runner.smtp_port or free_port()
    mta = None
    with tempfile.TemporaryDirectory() as tmp:
        figures_path = Path(tmp) / "server.json"
        if postfix_unit:
            sink_port = free_port()
            server = _server(sink_port, 0.0, burst_seconds, figures_path)
            mta = RateLimitedPostfix(port, sink_port, round(rate * postfix_unit), postfix_unit)
            mta.__enter__()
        else:
            server = _server(port, rate, burst_seconds, figures_path)
        started = time.perf_counter()
        try:
            sent = runner.send(port, cap, pause, entity_ids)
        finally:
            elapsed = time.perf_counter() - started
            if mta is not None:
                mta.drain()
                mta.__exit__()
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        server_figures = json.loads(figures_path.read_text())
    refusals: list[str] = []
    if mta is not None:  # the sink behind postfix refused nothing: postfix's refusals are in its log
        refusals = [line for line in mta.kept_log.splitlines() if RATE_WARNING in line]
        server_figures["refused"] = len(refusals)
    wall = server_figures["first_to_last_seconds"]
    ideal = expected / rate
    return {
        "runner": runner.name, "server": f"postfix {round(rate * postfix_unit)} per {postfix_unit}s"
        if postfix_unit else "throttle_sink", "digests": expected, "rate_allowed": rate,
        "server_burst_seconds": None if postfix_unit else burst_seconds,
        "cap": cap, "throttle_pause_seconds": pause,
        "received": server_figures["accepted"], "distinct": server_figures["digests"],
        "received_twice": server_figures["received_twice"], "throttle_replies": server_figures["refused"],
        "wall_seconds": wall, "ideal_seconds": round(ideal, 3), "ratio": round(wall / ideal, 3),
        "peak_rate_1s": server_figures["peak_rate_1s"], "mean_rate": server_figures["mean_rate"],
        "peak_in_unit": round(peak_rate(server_figures["accepted_at"], postfix_unit) * postfix_unit)
        if postfix_unit else None,
        "elapsed_with_startup_seconds": round(elapsed, 3), **sent,
        **({"postfix_refusals": refusals} if mta is not None else {}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="S")
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s the server accepts (R)")
    parser.add_argument("--sizes", default="0.25,1", help="shares of the day's companies to send")
    parser.add_argument("--pause", type=float, default=1.0, help="smtp_throttle_pause_seconds")
    parser.add_argument("--modes", default="a,b", help="a: cap at 95%% of R; b: no cap (adaptive only)")
    parser.add_argument("--cap-share", type=float, default=0.95, help="mode a's cap, as a share of R")
    parser.add_argument("--server-burst", type=float, default=0.1,
                        help="the server's bucket, in seconds of R (0.1: strict; SES tolerates short bursts)")
    parser.add_argument("--runner", choices=RUNNERS, default="process",
                        help="process: a process per batch; dagtest: the DAG through dag.test(); scheduler: the DAG "
                             "under airflow standalone, deliver tasks in parallel")
    parser.add_argument("--server", choices=("throttle", "postfix"), default="throttle",
                        help="throttle: devtools.throttle_sink; postfix: a real postfix's rate limit (bench/mta.py)")
    parser.add_argument("--anvil-unit", type=int, default=10,
                        help="postfix: anvil_rate_time_unit in seconds (the limit is R x unit per unit)")
    parser.add_argument("--pool-slots", type=int, default=8, help="scheduler: the SMTP pool's slots")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    dsn = scale_dsn(args.scale)
    day = window().digest_date
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not dg.load(conn, day)[1]:
            dg.build(conn)
        entities = [r[0] for r in conn.execute(
            "SELECT DISTINCT entity_id FROM digest.deliveries WHERE digest_date = %s AND state <> 'skipped' "
            "ORDER BY 1", (day,))]
    runs: list[dict[str, Any]] = []
    with make_runner(args.runner, dsn, args.pool_slots) as runner:
        _sizes(dsn, runner, args, entities, runs)
    runner_tag = "" if args.runner == "process" else f"-{args.runner}"
    server_tag = f"postfix{args.anvil_unit}s" if args.server == "postfix" else f"burst{args.server_burst:g}"
    path = save("pace", f"{args.scale}-R{args.rate:g}-{server_tag}{runner_tag}{args.tag}", {"runs": runs})
    print(json.dumps(runs, indent=2))
    log(f"written {path}")


def make_runner(name: str, dsn: str, pool_slots: int = 8) -> Runner:
    if name == "dagtest":
        return DagTestRunner(dsn)
    if name == "scheduler":
        return SchedulerRunner(dsn, pool_slots)
    return ProcessRunner(dsn)


def _sizes(dsn: str, runner: Runner, args: argparse.Namespace, entities: list[int],
           runs: list[dict[str, Any]]) -> None:
    day = window().digest_date
    for share in (float(s) for s in args.sizes.split(",")):
        chosen = entities[: max(1, round(len(entities) * share))] if share < 1 else None
        with psycopg.connect(dsn, autocommit=True) as conn:
            expected = conn.execute(
                "SELECT count(*) FROM digest.deliveries WHERE digest_date = %s AND state <> 'skipped' "
                "AND (%s::bigint[] IS NULL OR entity_id = ANY(%s::bigint[]))", (day, chosen, chosen)).fetchone()[0]
        modes = {"a": (f"a: cap {args.cap_share:.0%} of R", args.cap_share * args.rate),
                 "b": ("b: no cap, adaptive", 0.0)}
        for mode, cap in (modes[m] for m in args.modes.split(",")):
            result = {"mode": mode, **one_run(dsn, runner, args.rate, cap, args.pause, chosen, expected,
                                              args.server_burst, args.anvil_unit if args.server == "postfix" else 0)}
            runs.append(result)
            log(f"pace {runner.name} {mode}, N={expected}, R={args.rate:g}: wall {result['wall_seconds']}s = "
                f"{result['ratio']} x N/R, {result['throttle_replies']} throttle replies, "
                f"{result['received_twice']} twice, {result['distinct']} distinct, "
                f"{result['task_failures']} task failures")


if __name__ == "__main__":
    main()
