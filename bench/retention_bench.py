"""A year in production (issue 17): does the day's work slow down as our tables' history grows, how
big do they get, and what does retention cost?

    python -m bench.retention_bench [--scale S] [--days 365] [--rounds 3]

On the seeded day of ``--scale`` (bench.common: database ``bench_<scale>``, copied to
``bench_<scale>_history`` so the seed stays clean), it times the day's steps as the DAG runs them
(extract, check_quality with the volume guard, build, summary), three ways:

1. ``empty``: no history in our tables;
2. ``year``: ``--days`` days of history before the day at day L's size (11,321 staged errors, 1,187
   payloads, 7,432 ledger rows and one day report a day), generated with SQL generate_series;
3. ``retained``: after ``retention.apply`` with the default settings (its time is measured too, the
   first catch-up run and the steady state: one more day).

Table sizes (``pg_total_relation_size``) are taken after 2 and 3, and the plans of the day's queries
with a year of history go to ``bench/results/retention-plans.txt``. Figures: bench/results/retention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import psycopg
from psycopg import sql as pgsql

from bench.common import DIGEST_DATE, RESULTS, log, scale_dsn, server_dsn, window
from billing_digest import build, extract, quality, retention, sql, summary
from billing_digest.settings import Settings
from devtools import embedded_pg

TABLES = ("digest.errors", "digest.entity_digests", "digest.deliveries", "digest.day_reports")
PER_DAY = {"errors": 11_321, "payloads": 1_187, "ledger": 7_432}  # day L
PAYLOAD = json.dumps({"entity": {"name": "Empresa Exemplo LTDA", "cnpj": "11222333000181"},
                      "topics": [{"code": "nfse", "items": [{"invoice": n, "customer": "Cliente Exemplo",
                                                            "amount": "1234.56", "error": "E160 - Código"}
                                                           for n in range(12)]}]})


def history_db(scale: str) -> str:
    """A copy of the seeded scale's database (CREATE DATABASE ... TEMPLATE: fast), our tables emptied."""
    source = scale_dsn(scale)
    name = f"bench_{scale}_history"
    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "bench_{scale}"')
    dsn = embedded_pg.with_database(source, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql.apply_schema(conn)
        conn.execute("TRUNCATE digest.errors, digest.entity_digests, digest.deliveries, digest.day_reports, "
                     "digest.day_holds")
    return dsn


def add_history(conn: psycopg.Connection, first: int, last: int) -> float:
    """Days DIGEST_DATE-last .. DIGEST_DATE-first of history at day L's size; seconds taken."""
    started = time.perf_counter()
    params = {"day": DIGEST_DATE, "first": first, "last": last, "payload": PAYLOAD, **PER_DAY}
    conn.execute("""
        INSERT INTO digest.errors (digest_date, invoice_id, step, kind, status, entity_id, entity_name,
                                   customer_name, invoice_number, amount, error_code, error_message, attempts)
        SELECT %(day)s::date - d, 10000000 + i, (ARRAY['nfse', 'boleto', 'charge_email'])[1 + i %% 3], 'failed',
               'rejected', i %% %(payloads)s, 'Empresa ' || i %% %(payloads)s, 'Cliente ' || i, 'NF-' || i, 99.90,
               'E160', 'E160 - Código de serviço inválido', 1
        FROM generate_series(%(first)s::int, %(last)s::int) d, generate_series(1, %(errors)s::int) i""", params)
    conn.execute("""
        INSERT INTO digest.entity_digests (digest_date, entity_id, error_count, payload)
        SELECT %(day)s::date - d, i, 10, %(payload)s::jsonb
        FROM generate_series(%(first)s::int, %(last)s::int) d, generate_series(1, %(payloads)s::int) i""", params)
    conn.execute("""
        INSERT INTO digest.deliveries (digest_date, entity_id, user_id, recipient_name, email, batch, state,
                                       attempts, message_id, sent_at)
        SELECT %(day)s::date - d, i %% %(payloads)s, i, 'Pessoa ' || i, 'p' || i || '@exemplo.com.br', i %% 16,
               'sent', 1, '<' || d || '.' || i || '@fintera.com.br>', now()
        FROM generate_series(%(first)s::int, %(last)s::int) d, generate_series(1, %(ledger)s::int) i""", params)
    conn.execute("""
        INSERT INTO digest.day_reports (digest_date, run_id, summary)
        SELECT %(day)s::date - d, 'scheduled__' || d, '{"sent": 7432}'::jsonb
        FROM generate_series(%(first)s::int, %(last)s::int) d""", params)
    conn.execute("VACUUM ANALYZE digest.errors, digest.entity_digests, digest.deliveries, digest.day_reports")
    return time.perf_counter() - started


def day_steps(dsn: str, settings: Settings) -> dict[str, float]:
    """The day's steps once, as the DAG's tasks run them (each on its own connection), in seconds."""
    w, times = window(), {}
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        extract.stage_errors(conn, w)
        conn.commit()
        times["extract"] = time.perf_counter() - started
        started = time.perf_counter()
        quality.check_day(conn, w, settings, accept_anomaly=True)
        times["check_quality"] = time.perf_counter() - started
        started = time.perf_counter()
        built = build.build_and_stage(conn, w, settings)
        conn.commit()
        times["build"] = time.perf_counter() - started
        started = time.perf_counter()
        summary.save(conn, summary.summarize(conn, built, [], "bench", ()))
        conn.commit()
        times["summary"] = time.perf_counter() - started
    times["total"] = sum(times.values())
    return {k: round(v, 3) for k, v in times.items()}


def median_steps(dsn: str, settings: Settings, rounds: int) -> dict[str, float]:
    runs = [day_steps(dsn, settings) for _ in range(rounds)]
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def sizes(conn: psycopg.Connection) -> dict[str, dict[str, float]]:
    out = {}
    for table in TABLES:
        schema, name = table.split(".")
        query = pgsql.SQL("SELECT count(*), pg_total_relation_size({}) FROM {}").format(
            pgsql.Literal(table), pgsql.Identifier(schema, name))
        rows, size = conn.execute(query).fetchone()
        out[table] = {"rows": rows, "mib": round(size / 2**20, 1)}
    return out


def plans(conn: psycopg.Connection, path: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the day's statements on our tables, with a year of history."""
    params = {"digest_date": DIGEST_DATE, "trailing_days": 14, "kind": "billing_errors", "states": ["pending"],
              "entity_ids": None, "sendable_states": ["pending"]}
    with open(path, "w") as out:
        for name in ("build/day_errors", "volume/errors_by_step", "volume/baseline_start", "quality/counts",
                     "summary/ledger_by_state", "plan/batches", "extract/delete_day"):
            conn.execute("BEGIN")
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql.load(name), params).fetchall()
            conn.execute("ROLLBACK")
            out.write(f"== {name}\n" + "\n".join(r[0] for r in rows) + "\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="S")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(unsubscribe_secret="bench-retention-0123456789")
    load = os.getloadavg()
    dsn = history_db(args.scale)
    command = "python -m bench.retention_bench " + " ".join(f"--{k} {v}" for k, v in vars(args).items())
    result: dict = {"scale": args.scale, "days": args.days, "per_day": PER_DAY, "load_before": load, "command": command}
    log("day's steps, no history ...")
    result["steps_empty"] = median_steps(dsn, settings, args.rounds)
    with psycopg.connect(dsn, autocommit=True) as conn:
        log(f"adding {args.days} days of history at day L's size ...")
        result["history_insert_s"] = round(add_history(conn, 1, args.days), 1)
        result["sizes_year"] = sizes(conn)
    log("day's steps, a year of history ...")
    result["steps_year"] = median_steps(dsn, settings, args.rounds)
    with psycopg.connect(dsn, autocommit=True) as conn:
        plans(conn, str(RESULTS / "retention-plans.txt"))
    with psycopg.connect(dsn) as conn:
        log("retention, first run (catch-up) ...")
        started = time.perf_counter()
        cuts = retention.apply(conn, DIGEST_DATE, settings)
        result["retention_first_s"] = round(time.perf_counter() - started, 2)
        result["retention_first"] = {c.table: {"deleted": c.deleted, "chunks": c.chunks, "s": c.seconds} for c in cuts}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE digest.errors, digest.entity_digests, digest.deliveries, digest.day_reports")
        result["sizes_after_first_retention"] = sizes(conn)  # the files keep their size; the space is reused
        conn.execute("VACUUM FULL digest.errors, digest.entity_digests, digest.deliveries, digest.day_reports")
        conn.execute("ANALYZE digest.errors, digest.entity_digests, digest.deliveries, digest.day_reports")
        result["sizes_retained"] = sizes(conn)  # the steady state: what the kept rows take
        add_history(conn, 366, 366)  # steady state: tomorrow, one more day falls out (simulated: one older day)
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        cuts = retention.apply(conn, DIGEST_DATE, settings)
        result["retention_daily_s"] = round(time.perf_counter() - started, 3)
        result["retention_daily"] = {c.table: c.deleted for c in cuts}
    log("day's steps, after retention ...")
    result["steps_retained"] = median_steps(dsn, settings, args.rounds)
    result["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retention.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
