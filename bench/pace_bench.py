"""Issue 14: the day at the provider's pace. N digests against an SMTP server that accepts R messages per
second and refuses past it (devtools.throttle_sink: SES's ``454 Throttling failure`` by default), sent by
one real process per batch (as the mapped ``deliver`` tasks with a pool of that many slots) sharing the
limiter row in PostgreSQL.

(a) cap = 95% of R: every digest once, 0 throttle replies, wall (first to last message at the server)
    <= 1.1 x N/R;
(b) no cap, adaptive only: every digest once, wall <= 1.3 x N/R, no task failed.

A batch that raises DeliveryIncomplete counts as a failed task and is run again at once (Airflow's retry).

    python -m bench.pace_bench --rate 100 --sizes 0.25,1 [--pause 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import digests as dg
from bench.common import ROOT, log, save, scale_dsn, window


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


def one_run(dsn: str, rate: float, cap: float, pause: float, entity_ids: list[int] | None,
            expected: int, burst_seconds: float) -> dict[str, Any]:
    from devtools.smtp_sink import free_port

    day = window().digest_date
    with psycopg.connect(dsn, autocommit=True) as conn:
        dg.mark_pending(conn, day)
        conn.execute("DELETE FROM digest.send_pace")  # every run starts from what it knows: nothing
        batches = [b["batch"] for b in dg.plan(conn, day)]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        figures_path = Path(tmp) / "server.json"
        server = _server(port, rate, burst_seconds, figures_path)
        options = {"max_messages_per_second": cap, "throttle_pause_seconds": pause}
        started = time.perf_counter()
        try:
            with mp.get_context("spawn").Pool(len(batches)) as pool:
                tasks = pool.map(_deliver, [(dsn, port, b, options, entity_ids) for b in batches])
        finally:
            elapsed = time.perf_counter() - started
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        server_figures = json.loads(figures_path.read_text())
    wall = server_figures["first_to_last_seconds"]
    ideal = expected / rate
    return {
        "digests": expected, "rate_allowed": rate, "server_burst_seconds": burst_seconds, "cap": cap,
        "throttle_pause_seconds": pause,
        "batches": len(batches), "received": server_figures["accepted"], "distinct": server_figures["digests"],
        "received_twice": server_figures["received_twice"], "throttle_replies": server_figures["refused"],
        "wall_seconds": wall, "ideal_seconds": round(ideal, 3), "ratio": round(wall / ideal, 3),
        "peak_rate_1s": server_figures["peak_rate_1s"], "mean_rate": server_figures["mean_rate"],
        "task_failures": sum(t["task_failures"] for t in tasks),
        "client_throttled": sum(t["throttled"] for t in tasks), "elapsed_with_startup_seconds": round(elapsed, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="S")
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s the server accepts (R)")
    parser.add_argument("--sizes", default="0.25,1", help="shares of the day's companies to send")
    parser.add_argument("--pause", type=float, default=1.0, help="smtp_throttle_pause_seconds")
    parser.add_argument("--modes", default="a,b", help="a: cap at 95%% of R; b: no cap (adaptive only)")
    parser.add_argument("--server-burst", type=float, default=0.1,
                        help="the server's bucket, in seconds of R (0.1: strict; SES tolerates short bursts)")
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
    runs = []
    for share in (float(s) for s in args.sizes.split(",")):
        chosen = entities[: max(1, round(len(entities) * share))] if share < 1 else None
        with psycopg.connect(dsn, autocommit=True) as conn:
            expected = conn.execute(
                "SELECT count(*) FROM digest.deliveries WHERE digest_date = %s AND state <> 'skipped' "
                "AND (%s::bigint[] IS NULL OR entity_id = ANY(%s::bigint[]))", (day, chosen, chosen)).fetchone()[0]
        modes = {"a": ("a: cap 95% of R", 0.95 * args.rate), "b": ("b: no cap, adaptive", 0.0)}
        for mode, cap in (modes[m] for m in args.modes.split(",")):
            result = {"mode": mode, **one_run(dsn, args.rate, cap, args.pause, chosen, expected, args.server_burst)}
            runs.append(result)
            log(f"pace {mode}, N={expected}, R={args.rate:g}: wall {result['wall_seconds']}s = "
                f"{result['ratio']} x N/R, {result['throttle_replies']} throttle replies, "
                f"{result['received_twice']} twice, {result['distinct']} distinct, "
                f"{result['task_failures']} task failures")
    path = save("pace", f"{args.scale}-R{args.rate:g}-burst{args.server_burst:g}{args.tag}", {"runs": runs})
    print(json.dumps(runs, indent=2))
    log(f"written {path}")


if __name__ == "__main__":
    main()
