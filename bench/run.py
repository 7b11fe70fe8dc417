"""Run the benchmarks (not tests) and write their figures to bench/results/*.json.

    python -m bench.run --scale L                     # targets 1-6 at scale L (make bench SCALE=L)
    python -m bench.run --scale L --only render,send  # some of them
    python -m bench.run --only growth                 # target 7: S, M, L and L with a short history
    python -m bench.report                            # bench/RESULTS.md from the JSON files

Measurements: extract (1), render (2), send (3), fanout (4), airflow (5 and 6: the whole day under
a real scheduler, then ours vs the naive DAG on ~1,000 digests), growth (7). The database is the
embedded PostgreSQL in bench/.data/pg (or BILLING_DIGEST_BENCH_DSN), one database per scale,
seeded once (L takes a few minutes) for the day 2026-11-27.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from bench import common
from bench.common import log

DEFAULT = ("extract", "render", "send", "fanout", "airflow")
ALL = (*DEFAULT, "growth")


def _print(name: str, scale: str, figures: dict[str, Any], path: Any) -> None:
    short = {k: v for k, v in figures.items() if not isinstance(v, (dict, list)) or k in ("summary", "targets")}
    print(f"\n== {name} ({scale}) -> {path.relative_to(common.ROOT)}")
    print(json.dumps(short, indent=1, default=str)[:3000])


def run_one(name: str, scale: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "growth":
        return growth(args)
    dsn = common.scale_dsn(scale)
    label = scale + (f"-{args.tag}" if args.tag else "")
    if name == "extract":
        from bench import extract_bench
        return extract_bench.run(dsn, label, repeat=args.repeat)
    if name == "render":
        from bench import render_bench
        return render_bench.run(dsn, scale)
    if name == "send":
        from bench import send_bench
        return send_bench.run(dsn, scale, rounds=args.repeat, smtp_reply_delay_ms=args.smtp_delay_ms)
    if name == "fanout":
        from bench import fanout_bench
        upto = common.SCALES[: common.SCALES.index(scale) + 1] if scale in common.SCALES else (scale,)
        return {"scales": {s: fanout_bench.for_scale(common.scale_dsn(s), s) for s in upto},
                "synthetic": fanout_bench.synthetic()}
    if name == "airflow":
        from bench import airflow_bench
        return airflow_bench.run(dsn, scale, naive_digests=args.naive_digests, naive=not args.no_naive)
    raise SystemExit(f"unknown benchmark {name!r}; one of {', '.join(ALL)}")


def growth(args: argparse.Namespace) -> dict[str, Any]:
    """Extract+transform and render at S, M, L, and at L's day with a short history (Lh)."""
    from bench import extract_bench, render_bench

    out: dict[str, Any] = {}
    for scale in (*common.SCALES, *common.EXTRA_SCALES):
        dsn = common.scale_dsn(scale)
        counts = common.seed_counts(dsn)
        ex = extract_bench.run(dsn, f"{scale}-growth", repeat=args.repeat)
        rd = render_bench.run(dsn, scale, min_seconds=2.0)
        out[scale] = {
            "history": {k: counts.get(k) for k in ("invoices", "history_invoices", "step_attempts", "contracts",
                                                   "customers")},
            "day": {"day_invoices": counts.get("day_invoices"), "window_attempts": counts.get("window_attempts")},
            "errors": ex["errors"], "digests": ex["digests"],
            "extract_s": ex["summary"]["extract"]["median_s"], "transform_s": ex["summary"]["transform"]["median_s"],
            "extract_transform_s": ex["summary"]["both"]["median_s"],
            "peak_rss_mib": ex["summary"]["both"]["peak_rss_mib_max"],
            "render_s": round(rd["digests"] / rd["realistic_mix"]["msgs_per_s_median"], 3),
            "render_msgs_per_s": rd["realistic_mix"]["msgs_per_s_median"],
            "ms_per_1000_errors": round(1000 * ex["summary"]["both"]["median_s"] / max(1, ex["errors"]) * 1000, 1),
        }
        log(f"growth {scale}: {out[scale]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="S", choices=(*common.SCALES, *common.OUTAGE_SCALES, *common.EXTRA_SCALES))
    parser.add_argument("--only", default=",".join(DEFAULT),
                        help=f"comma-separated, of: {', '.join(ALL)}, or 'all' (default: {','.join(DEFAULT)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (extract, send)")
    parser.add_argument("--smtp-delay-ms", type=float, default=0.0,
                        help="send: the sink delays each reply this much (a server a round trip away); default 0")
    parser.add_argument("--naive-digests", type=int, default=1000, help="digests of the side-by-side run")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive DAG (the slowest part)")
    parser.add_argument("--tag", default="", help="suffix of the results files (e.g. 'baseline' for a run of "
                        "older code: PYTHONPATH=<old>/plugins:. BILLING_DIGEST_INCLUDE_DIR=<old>/include)")
    args = parser.parse_args(argv)
    names = ALL if args.only == "all" else tuple(n.strip() for n in args.only.split(",") if n.strip())
    common.configure_embedded_server()
    started = time.monotonic()
    for name in names:
        scale = "SML" if name == "growth" else args.scale
        log(f"== {name} ({scale})")
        t = time.monotonic()
        load_before = [round(x, 2) for x in os.getloadavg()]
        figures = run_one(name, args.scale, args)
        figures["load_avg_at_start"] = load_before
        figures["bench_seconds"] = round(time.monotonic() - t, 1)
        path = common.save(name, scale + (f"-{args.tag}" if args.tag else ""), figures)
        _print(name, scale, figures, path)
    log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
