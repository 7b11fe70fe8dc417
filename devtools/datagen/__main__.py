"""The command line: ``python -m devtools.datagen --dsn DSN --scale S --date 2026-11-28 [--seed 42]``.

Prints the counts ``generate()`` returns (rows per table and what the digest must find) as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Sequence

import psycopg

from billing_digest.window import TIMEZONE
from devtools.datagen.generate import generate
from devtools.datagen.scales import SCALES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.datagen",
        description="Load a deterministic synthetic billing data set around one digest day.",
    )
    parser.add_argument("--dsn", required=True, help="PostgreSQL connection string")
    parser.add_argument("--scale", default="S", choices=sorted(SCALES), help="data set size (XL = L + outage)")
    parser.add_argument("--date", required=True, type=dt.date.fromisoformat, help="digest day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tz", default=TIMEZONE)
    parser.add_argument(
        "--outage-share",
        type=float,
        default=None,
        help="share of entities whose bank is down on the digest day (default: the scale's)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    scale = SCALES[args.scale]
    if args.outage_share is not None:
        scale = dataclasses.replace(scale, outage_share=args.outage_share)
    started = time.perf_counter()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        counts = generate(conn, scale=scale, digest_date=args.date, seed=args.seed, tz=args.tz)
    print(json.dumps(counts, indent=2))
    print(f"elapsed: {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
