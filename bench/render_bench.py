"""Target 2: render + MIME assembly, one core: the day's real mix, and a worst case.

Realistic mix: every sendable digest of the day, recipients grouped by entity (as deliver
iterates them), each entity's payload one object shared by its recipients, a new Renderer per
pass (cold per-entity cache). Worst case: every message a different entity with 12 invoices listed
(4 per topic: a block of one cause listing 3 of its 12 invoices, and a card), invoices taken from
the day's real payloads.
"""

from __future__ import annotations

import copy
import datetime as dt
import statistics
import time
from decimal import Decimal
from typing import Any

import psycopg

from bench import digests as dg
from bench.common import log, window
from billing_digest.mail.render import Recipient, Renderer
from billing_digest.settings import Settings

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)


def _rate(messages: list[tuple[dict[str, Any], Recipient]], min_seconds: float, max_passes: int = 20) -> dict:
    """Messages per second over passes of the whole list (fresh Renderer each), at least min_seconds."""
    rates, sizes, elapsed, passes = [], 0, 0.0, 0
    while passes < 2 or (elapsed < min_seconds and passes < max_passes):
        renderer = Renderer(Settings())
        started = time.perf_counter()
        total = 0
        for payload, recipient in messages:
            total += len(renderer.message(payload, recipient, NOW)[1])
        took = time.perf_counter() - started
        elapsed += took
        passes += 1
        rates.append(len(messages) / took)
        sizes = total
    return {"messages_per_pass": len(messages), "passes": passes, "seconds": round(elapsed, 3),
            "msgs_per_s_median": round(statistics.median(rates)), "msgs_per_s_best": round(max(rates)),
            "msgs_per_s_worst": round(min(rates)), "avg_message_bytes": round(sizes / max(1, len(messages)))}


def _block(invoices: list[dict[str, Any]], count: int) -> dict[str, Any]:
    """A cause listing these invoices (the first one's cause) out of ``count``."""
    first = invoices[0]
    known = [Decimal(i["amount"]) for i in invoices if i["amount"] is not None]
    return {"step": first["step"], "kind": first["kind"], "status": first["status"], "code": first["code"],
            "message": first["message"], "count": count, "amount_total": str(sum(known, Decimal(0))),
            "amounts_missing": len(invoices) - len(known), "invoices": invoices, "more": count - len(invoices)}


def worst_case_messages(payloads: dict[int, dict[str, Any]], n: int, items_per_entity: int = 12) -> list:
    """n distinct entities, each listing items_per_entity invoices (a third per topic: a block of one
    cause with all but one of them, out of 4 times as many, and a card), one recipient each."""
    pool: dict[str, list[dict[str, Any]]] = {"nfse": [], "boleto": [], "notification": []}
    titles = {}
    for p in payloads.values():
        for t in p["topics"]:
            pool[t["code"]].extend(i for c in t["causes"] for i in c["invoices"])
            titles[t["code"]] = t["title"]
    per_topic = items_per_entity // 3
    out = []
    for k in range(n):
        topics = []
        for code in ("nfse", "boleto", "notification"):
            items = [copy.deepcopy(pool[code][(k * per_topic + j) % len(pool[code])]) for j in range(per_topic)]
            for j, item in enumerate(items):  # distinct invoices per entity
                item["invoice_id"] = k * 100 + j
            block = [{**item, "step": items[0]["step"], "kind": items[0]["kind"], "status": items[0]["status"],
                      "code": items[0]["code"], "message": items[0]["message"]} for item in items[:-1]]
            causes = [_block(block, 4 * len(block)), _block(items[-1:], 1)]
            total = sum(c["count"] for c in causes)
            topics.append({"code": code, "title": titles[code], "total": total, "causes": causes,
                           "other_causes": 0, "other_errors": 0})
        payload = {"digest_date": window().digest_date.isoformat(),
                   "entity": {"id": 10_000_000 + k, "name": f"Empresa Pior Caso {k} Ltda", "cnpj": "11222333000181"},
                   "total": sum(t["total"] for t in topics), "topics": topics}
        out.append((payload, Recipient(k + 1, "Maria da Conceição", f"maria{k}@exemplo.com.br")))
    return out


def run(dsn: str, scale: str, min_seconds: float = 3.0) -> dict[str, Any]:
    day = window().digest_date
    with psycopg.connect(dsn, autocommit=True) as conn:
        payloads, digests = dg.load(conn, day)
        if not digests:
            log("render: no staged digests, building the day first")
            dg.build(conn)
            payloads, digests = dg.load(conn, day)
    messages = [(payloads[d.entity_id], d.recipient) for d in digests]
    entities = len({d.entity_id for d in digests})
    items = [sum(len(c["invoices"]) for t in payloads[e]["topics"] for c in t["causes"])
             for e in {d.entity_id for d in digests}]
    log(f"render {scale}: {len(messages):,} digests of {entities:,} entities ...")
    mix = _rate(messages, min_seconds)
    log(f"render {scale}: realistic mix {mix['msgs_per_s_median']:,}/s")
    worst_n = max(2000, min(10000, len(messages)))
    worst = _rate(worst_case_messages(payloads, worst_n), min_seconds)
    log(f"render {scale}: worst case {worst['msgs_per_s_median']:,}/s")
    return {
        "digests": len(messages), "entities": entities,
        "digests_per_entity": round(len(messages) / max(1, entities), 2),
        "items_per_entity_mean": round(statistics.mean(items), 1) if items else 0,
        "items_per_entity_max": max(items) if items else 0,
        "realistic_mix": mix,
        "worst_case": {"description": "every message a different entity listing 12 invoices (4 per topic: "
                                      "a block of 3 of 12, and a card)", **worst},
        "target_msgs_per_s": 6000,
        "target_met": mix["msgs_per_s_median"] >= 6000,
    }
