"""Target 3: delivery against a local SMTP sink (aiosmtpd, own process, discards).

Raw floor: the day's messages, rendered beforehand, pushed through one smtplib connection in a
loop. Pipeline: ``deliver_batch`` over the staged ledger rows, batch after batch in this one
process (one core), as the mapped ``deliver`` tasks do: locks, send-time access check, render,
SMTP, one ledger commit per accepted message. Rounds alternate raw and pipeline; the ratio
compares their medians.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import statistics
import time
from collections import Counter
from typing import Any

import psycopg

from bench import digests as dg
from bench.common import log, window
from bench.sink import FastSink
from billing_digest.delivery.deliver import DeliveryOptions, deliver_batch
from billing_digest.delivery.smtp import SmtpSettings
from billing_digest.mail.render import Renderer
from billing_digest.settings import Settings

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)


def _raw(port: int, sender: str, messages: list[tuple[str, bytes]]) -> float:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        started = time.perf_counter()
        for to, message in messages:
            smtp.sendmail(sender, [to], message)
        return time.perf_counter() - started
    finally:
        smtp.quit()


def _pipeline(dsn: str, port: int, day: dt.date, batches: list[int]) -> tuple[float, Counter[str], int]:
    outcomes: Counter[str] = Counter()
    connections = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        dg.mark_pending(conn, day)
        smtp = SmtpSettings(host="127.0.0.1", port=port, timeout=30)
        started = time.perf_counter()
        for batch in batches:
            report = deliver_batch(conn, smtp, Renderer(Settings()), day, batch,
                                   DeliveryOptions(run_id=f"bench-{time.time_ns()}"))
            outcomes.update(report.outcomes)
            connections += report.smtp_connections
        return time.perf_counter() - started, outcomes, connections


def run(dsn: str, scale: str, rounds: int = 3, smtp_reply_delay_ms: float = 0.0) -> dict[str, Any]:
    day = window().digest_date
    with psycopg.connect(dsn, autocommit=True) as conn:
        payloads, digests = dg.load(conn, day)
        if not digests:
            dg.build(conn)
            payloads, digests = dg.load(conn, day)
        batches = [b["batch"] for b in dg.plan(conn, day)] or sorted({d.batch for d in digests})
        dg.mark_pending(conn, day)
        batches = [b["batch"] for b in dg.plan(conn, day)]
    renderer = Renderer(Settings())
    messages = [(d.recipient.email, renderer.message(payloads[d.entity_id], d.recipient, NOW)[1]) for d in digests]
    n = len(messages)
    raw_rates, pipe_rates, runs = [], [], []
    with FastSink(reply_delay_ms=smtp_reply_delay_ms) as sink:
        for r in range(rounds):
            sink.reset()
            raw_s = _raw(sink.port, renderer.sender_addr, messages)
            assert sink.wait_for(n, 30), f"sink got {sink.count} of {n}"
            sink.reset()
            pipe_s, outcomes, connections = _pipeline(dsn, sink.port, day, batches)
            sent = outcomes.get("sent", 0)
            assert sink.wait_for(sent, 30), f"sink got {sink.count} of {sent}"
            raw_rates.append(n / raw_s)
            pipe_rates.append(sent / pipe_s)
            runs.append({"round": r + 1, "raw_seconds": round(raw_s, 3), "raw_msgs_per_s": round(n / raw_s),
                         "pipeline_seconds": round(pipe_s, 3), "pipeline_msgs_per_s": round(sent / pipe_s),
                         "pipeline_outcomes": dict(outcomes), "smtp_connections": connections,
                         "ratio": round((sent / pipe_s) / (n / raw_s), 3)})
            log(f"send {scale} round {r + 1}: raw {n / raw_s:,.0f}/s, pipeline {sent / pipe_s:,.0f}/s "
                f"({dict(outcomes)})")
    raw_med, pipe_med = statistics.median(raw_rates), statistics.median(pipe_rates)
    with psycopg.connect(dsn) as conn:
        sync = conn.execute("SELECT current_setting('synchronous_commit')").fetchone()[0]
    return {"messages": n, "batches": len(batches), "avg_message_bytes": round(sum(len(m) for _, m in messages) / n),
            "smtp_reply_delay_ms": smtp_reply_delay_ms, "synchronous_commit": sync,
            "rounds": runs, "raw_msgs_per_s_median": round(raw_med), "pipeline_msgs_per_s_median": round(pipe_med),
            "ratio_of_medians": round(pipe_med / raw_med, 3), "target_ratio": 0.85,
            "target_met": pipe_med / raw_med >= 0.85}
