"""Target 1 (and 7): extraction and transform+staging of a day, each in a fresh process.

Each measured run starts like the day's first daily run: nothing of the day staged, tables vacuumed.

Each measurement runs in a dedicated subprocess (as an Airflow task would), which reports its
wall times and its peak resident memory: ``VmHWM`` of /proc/self/status, the high-water mark of
the process's own memory since it started; ``resource.getrusage``'s ``ru_maxrss`` is reported too,
but Linux carries the parent's resident size over a fork and exec into it (a benchmark process
holding 200 MB of rendered messages makes every child "peak" at 200 MB). Phases: ``extract``
(``extract.stage_errors``: the two INSERT ... SELECT of include/sql/extract), ``transform``
(``build.build_and_stage``: read the staged errors, pandas, recipients, ledger upserts) and
``both`` (one after the other in one process, as one number). Also: EXPLAIN ANALYZE of the two
statements, whether a plan reads a whole history table, and the indexes they use.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import psycopg

from bench.common import OUTAGE_SCALES, RESULTS, ROOT, log, window

PHASES = ("extract", "transform", "both")
HISTORY_TABLES = ("invoices", "step_attempts", "contracts", "customers")


def worker(dsn: str, phase: str) -> dict[str, Any]:
    """Runs in the subprocess: import, then time the phase(s)."""
    import resource

    started = time.perf_counter()
    from billing_digest import build, extract
    from billing_digest.settings import Settings

    imported = time.perf_counter() - started
    rss_after_import = _vm_kib("VmHWM") / 1024
    w = window()
    out: dict[str, Any] = {"phase": phase, "import_seconds": round(imported, 3)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        server0, client0 = _backend_cpu(backend), time.process_time()
        t0 = time.perf_counter()
        if phase in ("extract", "both"):
            staged = extract.stage_errors(conn, w)
            out["extract_seconds"] = round(time.perf_counter() - t0, 3)
            out["failed_steps"], out["missing_steps"] = staged.failed_steps, staged.missing_steps
        t1 = time.perf_counter()
        if phase in ("transform", "both"):
            built = build.build_and_stage(conn, w, Settings())
            out["transform_seconds"] = round(time.perf_counter() - t1, 3)
            out.update({k: getattr(built, k) for k in ("errors", "entities_with_errors", "digests")})
        out["total_seconds"] = round(time.perf_counter() - t0, 3)
        # CPU used by this process and by its PostgreSQL backend (local server only): on a busy machine
        # wall time also counts the waits for a free core.
        out["client_cpu_seconds"] = round(time.process_time() - client0, 3)
        server1 = _backend_cpu(backend)
        out["server_cpu_seconds"] = round(server1 - server0, 3) if server0 is not None and server1 else None
    out["rss_after_import_mib"] = round(rss_after_import, 1)
    out["peak_rss_mib"] = round(_vm_kib("VmHWM") / 1024, 1)
    out["ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _vm_kib(field: str) -> int:
    """A ``Vm*`` line of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _backend_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a local process (the PostgreSQL backend), None if not readable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fresh_day(dsn: str, phase: str) -> None:
    """Before a measured run: the day as on its first daily run (nothing of it staged yet) and vacuumed
    tables (autovacuum runs between days; a benchmark re-running the day back to back would otherwise
    measure inserts into its own dead rows). Not timed."""
    day = window().digest_date
    tables = {"extract": ("errors",), "transform": ("entity_digests", "deliveries"),
              "both": ("errors", "entity_digests", "deliveries")}[phase]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"DELETE FROM digest.{table} WHERE digest_date = %s", (day,))  # noqa: S608
        conn.execute("VACUUM (ANALYZE) " + ", ".join(f"digest.{t}" for t in tables))


def _subprocess(dsn: str, phase: str) -> dict[str, Any]:
    _fresh_day(dsn, phase)
    # The parent's PYTHONPATH (a baseline run points it at older code), else this tree's.
    env_path = os.environ.get("PYTHONPATH") or f"{ROOT / 'plugins'}:{ROOT}"
    proc = subprocess.run([sys.executable, "-m", "bench.extract_bench", "--worker", dsn, phase], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": env_path})
    if proc.returncode:
        raise RuntimeError(f"extract worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def explain(dsn: str) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of both statements on an emptied day, rolled back."""
    from billing_digest import sql

    w = window()
    plans: dict[str, Any] = {}
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.load("extract/delete_day"), w.as_params())
        for name in ("stage_failed_steps", "stage_missing_steps"):
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql.load(f"extract/{name}"), w.as_params())
            text = "\n".join(r[0] for r in rows)
            seq = sorted({m for m in re.findall(r"Seq Scan on (\w+)", text)})
            plans[name] = {
                "plan": text,
                "execution_ms": float(re.search(r"Execution Time: ([\d.]+) ms", text).group(1)),
                "seq_scans": seq,
                "reads_a_whole_history_table": any(t in HISTORY_TABLES for t in seq),
                "indexes_used": sorted(set(re.findall(r"(?:Index|Index Only) Scan(?: Backward)? using (\w+)", text))),
            }
        conn.rollback()
        used = sorted({i for p in plans.values() for i in p["indexes_used"]})
        indexes = [dict(zip(("name", "table", "definition", "size_mib"), r, strict=True)) for r in conn.execute(
            "SELECT c.relname, t.relname, pg_get_indexdef(c.oid), round(pg_relation_size(c.oid) / 1048576.0, 1)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE c.relname = ANY(%s) ORDER BY t.relname, c.relname", (used,))]
        tables = {r[0]: {"rows": int(r[1]), "size_mib": float(r[2])} for r in conn.execute(
            "SELECT c.relname, c.reltuples, round(pg_total_relation_size(c.oid) / 1048576.0, 1) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'billing' AND c.relkind = 'r'"
            " ORDER BY 1")}
    return {"plans": plans, "indexes": indexes, "tables": tables}


def run(dsn: str, scale: str, repeat: int = 3) -> dict[str, Any]:
    # Target: 2 s for a normal SaaS-sized day (L), 10 s for an outage day (XL, XL60).
    target_s = 10.0 if scale.split("-")[0] in OUTAGE_SCALES else 2.0
    log(f"extract {scale}: warm-up run (both phases)")
    first = _subprocess(dsn, "both")
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PHASES}
    for i in range(repeat):
        for phase in PHASES:
            runs[phase].append(_subprocess(dsn, phase))
        log(f"extract {scale}: round {i + 1}: extract {runs['extract'][-1]['extract_seconds']}s, transform "
            f"{runs['transform'][-1]['transform_seconds']}s, both {runs['both'][-1]['total_seconds']}s, "
            f"peak RSS {runs['both'][-1]['peak_rss_mib']} MiB")
    key = {"extract": "extract_seconds", "transform": "transform_seconds", "both": "total_seconds"}
    summary = {p: {"median_s": round(statistics.median(r[key[p]] for r in runs[p]), 3),
                   "best_s": round(min(r[key[p]] for r in runs[p]), 3),
                   "worst_s": round(max(r[key[p]] for r in runs[p]), 3),
                   "client_cpu_s_median": round(statistics.median(r["client_cpu_seconds"] for r in runs[p]), 3),
                   "server_cpu_s_median": _median([r.get("server_cpu_seconds") for r in runs[p]]),
                   "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs[p])} for p in PHASES}
    log(f"extract {scale}: EXPLAIN ANALYZE")
    plans = explain(dsn)
    plan_file = RESULTS / f"extract-plans-{scale}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    plan_file.write_text("".join(f"== {name}\n{p['plan']}\n\n" for name, p in plans["plans"].items()))
    both = runs["both"][-1]
    return {
        "first_run_both": first,
        "runs": runs,
        "summary": summary,
        "errors": both.get("errors"), "failed_steps": both.get("failed_steps"),
        "missing_steps": both.get("missing_steps"), "digests": both.get("digests"),
        "entities_with_errors": both.get("entities_with_errors"),
        "explain": {n: {k: v for k, v in p.items() if k != "plan"} for n, p in plans["plans"].items()},
        "plans_file": str(plan_file.relative_to(ROOT)),
        "indexes": plans["indexes"], "tables": plans["tables"],
        "targets": {"wall_s": target_s, "peak_rss_mib": 1024,
                    "wall_met": summary["both"]["median_s"] <= target_s,
                    "rss_met": summary["both"]["peak_rss_mib_max"] <= 1024,
                    "no_history_scan": not any(p["reads_a_whole_history_table"] for p in plans["plans"].values())},
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit("usage: python -m bench.run --only extract (this module's --worker is internal)")
