"""Target 4: the number of mapped ``deliver`` instances stays bounded, and XCom stays small.

For each scale: build the day, then ``plan.plan_batches`` (what the ``plan_batches`` task returns
and ``deliver`` is expanded over). Reports batches, digests per batch and the JSON size of every
XCom value the DAG passes (no DataFrame, no message body: only counts and batch descriptions).
Also ``batching.assign_batches`` on synthetic digest counts up to 10 million.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import psycopg

from bench import digests as dg
from bench.common import log, window
from billing_digest import batching
from billing_digest.settings import Settings


def _xcom_check(values: dict[str, Any]) -> dict[str, Any]:
    sizes = {k: len(json.dumps(v, default=str).encode()) for k, v in values.items()}
    text = json.dumps(values, default=str)
    return {"bytes": sizes, "json_serialisable": True,
            "contains_message_body": any(m in text for m in ("Content-Type", "<html", "quoted-printable")),
            "contains_dataframe": any(isinstance(v, pd.DataFrame) for v in values.values())}


def for_scale(dsn: str, scale: str) -> dict[str, Any]:
    settings = Settings()
    with psycopg.connect(dsn, autocommit=True) as conn:
        built = dg.build(conn, settings)
        batches = dg.plan(conn, window().digest_date)
    sizes = [b["digests"] for b in batches]
    xcom = _xcom_check({"extract_errors": built["staged"], "build_digests": built["built"],
                        "plan_batches": batches})
    log(f"fanout {scale}: {built['built']['digests']:,} digests -> {len(batches)} batches "
        f"(XCom of plan_batches {xcom['bytes']['plan_batches']:,} bytes)")
    return {"digests": built["built"]["digests"], "entities": built["built"]["entities_with_errors"],
            "batches": len(batches), "max_batches": settings.max_batches,
            "min_batch_size": settings.min_batch_size,
            "digests_per_batch": {"min": min(sizes, default=0), "max": max(sizes, default=0)},
            "bounded": len(batches) <= settings.max_batches, "xcom": xcom,
            "example_batch": batches[0] if batches else None}


def synthetic(counts: tuple[int, ...] = (10, 1_000, 100_000, 1_000_000, 10_000_000)) -> list[dict[str, Any]]:
    """assign_batches on n digests (3 per entity): batches never exceed max_batches."""
    s = Settings()
    out = []
    for n in counts:
        frame = pd.DataFrame({"entity_id": [i // 3 for i in range(n)], "user_id": range(n)})
        b = batching.assign_batches(frame, s.max_batches, s.min_batch_size)
        out.append({"digests": n, "batches": int(b.nunique()), "largest_batch": int(b.value_counts().max())})
    return out
