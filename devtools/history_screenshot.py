"""Screenshot the history page (issue 17) in a real Airflow, on a database of synthetic day reports.

    python -m devtools.history_screenshot docs/screenshots/history-page.png

A database ``billing_history_shots`` on the demo's PostgreSQL (BILLING_DIGEST_DSN or .demo/pg) gets
120 days of day reports at about day L's size (weekends lighter), a volume anomaly held and then
sent on purpose, a day held for coverage and a day still held; then ``LocalAirflow`` serves the
plugin and Debian's Chromium, logged in, takes the page (``...png``) and the page inside Airflow's
UI, Browse -> Billing digest history (``...-in-ui.png``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

import psycopg

from billing_digest import holds, sql

LAST = dt.date(2026, 11, 27)


def day_report(day: dt.date, rng: random.Random, spike: float = 1.0) -> dict:
    weekday = 0.35 if day.weekday() >= 5 else 1.0
    errors = {"nfse": int(rng.gauss(3900, 350) * weekday), "boleto": int(rng.gauss(5100, 500) * weekday * spike),
              "notification": int(rng.gauss(2300, 250) * weekday)}
    digests = int(rng.gauss(7430, 400) * weekday * (1.4 if spike > 1 else 1))
    ledger = {"sent": {"-": int(digests * 0.93)}, "failed": {"550 5.1.1 mailbox unavailable": int(digests * 0.006)},
              "deferred": {"421 try later": int(digests * 0.004 * rng.random() * 3)},
              "skipped": {"opted_out": int(digests * 0.04), "suppressed": int(digests * 0.008),
                          "invalid_email": int(digests * 0.005), "access_revoked": int(digests * 0.002)}}
    return {"digest_date": day.isoformat(), "errors_by_topic": errors, "ledger": ledger}


def seed(dsn: str) -> None:
    rng = random.Random(17)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql.apply_schema(conn)
        conn.execute("TRUNCATE digest.day_reports, digest.day_holds")
        anomaly, coverage, still_held = LAST - dt.timedelta(days=23), LAST - dt.timedelta(days=51), LAST
        spike = 0
        for k in range(120):
            day = LAST - dt.timedelta(days=k)
            if day in (coverage, still_held):
                continue
            report = day_report(day, rng, 3.4 if day == anomaly else 1)
            spike = report["errors_by_topic"]["boleto"] if day == anomaly else spike
            conn.execute("INSERT INTO digest.day_reports (digest_date, run_id, summary) VALUES (%s, %s, %s)",
                         (day, f"scheduled__{day}", json.dumps(report)))
        holds.record(conn, anomaly, [f"volume anomaly: {anomaly}: {spike:,} errors in topic Cobrança (Boleto "
                                     "Bancário) against a median of 5,080 over the 14 previous reported days (factor "
                                     "3, floor 50: settings anomaly_factor, anomaly_floor)"])
        holds.record(conn, coverage, ["2026-10-07 is not covered by the attempt history: 41% of the window's invoices "
                                      "have no recorded step (setting max_silent_invoice_share 0.2)"])
        holds.record(conn, still_held, ["the billing data did not arrive: complete up to 2026-11-27 22:10 -03, the "
                                        "window ends 2026-11-28 06:30 -03"], guard="freshness")


def main(argv: list[str]) -> None:
    from devtools.airflow_env import DEMO, billing_dsn
    from devtools.airflow_local import LocalAirflow
    from devtools.screenshots import chromium_available, preview_page
    from devtools.smtp_sink import free_port

    if len(argv) != 1:
        raise SystemExit("usage: python -m devtools.history_screenshot OUTFILE.png")
    if not chromium_available():
        raise SystemExit("no Chromium: apt-get install chromium")
    out = Path(argv[0])
    dsn = billing_dsn("billing_history_shots")
    seed(dsn)
    with LocalAirflow(DEMO / "airflow-history", dsn, free_port(), port=free_port()) as af:
        base, password = f"http://localhost:{af.port}", af.admin_password()
        preview_page(base, password, out, path="/billing-digest/history?days=120")
        in_ui = out.with_name(out.stem + "-in-ui" + out.suffix)
        preview_page(base, password, in_ui, in_ui=True, ui_route="billing-digest-history")
    print(f"{out}\n{in_ui}")


if __name__ == "__main__":
    main(sys.argv[1:])
