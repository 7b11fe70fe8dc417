"""Backfills and re-runs for real: a scheduler with LocalExecutor, `airflow backfill create`, the
SMTP connection pool (2 slots here) capping the connections open at once across three days."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from urllib.parse import quote

import pytest

from devtools import embedded_pg
from devtools.airflow_local import LocalAirflow
from devtools.smtp_sink import free_port
from tests.scenarios.crashkit import seed_day
from tests.world import local

pytestmark = pytest.mark.slow
DAYS = [dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)]
DAG = "billing_error_digest"
POOL_SLOTS = 2


@pytest.fixture
def three_days(world):
    acme, beta = world.entity("Acme LTDA"), world.entity("Beta SA")
    ana = world.user("Ana", "ana@acme.com.br", [acme, beta])
    caio = world.user("Caio", "caio@beta.com.br", [beta])
    # day 1: only Acme; day 2: both; day 3: only Beta
    plan = {DAYS[0]: [acme], DAYS[1]: [acme, beta], DAYS[2]: [beta]}
    for day, entities in plan.items():
        for entity in entities:
            inv = world.invoice(entity, local(day, 9), boleto=False, notification=False)
            world.attempt(inv, "nfse", "rejected", local(day, 9, 5), f"rejeitada em {day}")
    world.data_loaded_until(local(DAYS[-1] + dt.timedelta(days=1), 6, 0))
    expected = Counter()
    for day, entities in plan.items():
        for entity in entities:
            for user in ([ana] if entity == acme else [ana, caio]):
                expected[(day.isoformat(), entity, user)] += 1
    # and 16 more digests (4 errors) a day: each day has 3 batches that compete for the pool's slots
    for n, day in enumerate(DAYS):
        expected.update(seed_day(world.conn, day, entities=4, users_per_entity=4, first_id=5000 + 1000 * n))
    return expected


def received(sink) -> Counter:
    got = Counter()
    for m in sink.messages:
        day, entity, user = (part.split("=")[-1].strip() for part in m.message["X-Billing-Digest"].split(";"))
        got[(day, int(entity), int(user))] += 1
    return got


def wait_all_finished_after(af: LocalAirflow, since: str, count: int, timeout: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in af.runs(DAG) if r["run_id"].startswith("backfill__")]
        done = [r for r in runs if r["state"] in ("success", "failed") and (r.get("end_date") or "") > since]
        if len(done) >= count:
            return runs
        time.sleep(2)
    raise TimeoutError(f"backfill runs not finished: {af.runs(DAG)}")


def create_again(command: list[str], af: LocalAirflow, timeout: float = 120) -> None:
    """The scheduler marks a backfill complete a little after its last run ends; until then
    Airflow refuses a new backfill of the same DAG: retry while it says so."""
    deadline = time.monotonic() + timeout
    while True:
        done = af.cli(command, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline or "AlreadyRunningBackfill" not in done.stdout + done.stderr:
            raise AssertionError(f"backfill not created:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        time.sleep(3)


def test_backfill_three_days_within_the_smtp_pool_then_reprocess_sends_nothing_new(
        three_days, db_dsn, pg_server, smtp_sink, tmp_path):
    metadata = embedded_pg.ensure_database(pg_server, f"af_{tmp_path.name[-20:]}".replace("-", "_").lower(),
                                           recreate=True)
    smtp_sink.handler.delay = 0.4  # a slow provider: each batch holds its connection ~2 s
    with LocalAirflow(tmp_path / "airflow", db_dsn, smtp_sink.port, port=free_port(), metadata_dsn=metadata,
                      smtp_pool_slots=POOL_SLOTS,
                      extra_env={"BILLING_DIGEST_MIN_BATCH_SIZE": "4", "BILLING_DIGEST_MAX_BATCHES": "4"}) as af:
        af.cli(["dags", "reserialize"], check=False)
        af.cli(["dags", "unpause", DAG])
        started = dt.datetime.now(dt.UTC).isoformat()
        smtp_sink.handler.reset_peak()
        # logical dates are window starts (D 06:30): --to-date is exclusive of the 4th's; the three days
        # run at once (9 deliver batches, 8 executor slots), so only the pool caps the connections
        create = ["backfill", "create", "--dag-id", DAG, "--from-date", "2026-11-02", "--to-date", "2026-11-05",
                  "--max-active-runs", "3"]
        af.cli(create)
        runs = wait_all_finished_after(af, started, 3)
        assert sorted(r["state"] for r in runs) == ["success"] * 3
        assert received(smtp_sink) == three_days  # exactly the expected digests, once each
        print(f"\nbackfill of 3 days, pool of {POOL_SLOTS}: at most {smtp_sink.peak_connections} SMTP connections "
              f"open at once ({smtp_sink.handler.connections} in all)")
        assert smtp_sink.peak_connections == POOL_SLOTS  # never more; and the cap was reached

        notes = {r["run_id"]: af.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(r['run_id'], safe='')}")["note"]
                 for r in runs}
        assert sorted(n.splitlines()[0] for n in notes.values()) == [
            f"**Digest of {d:%d/%m/%Y}**: {n} sent · 0 failed · 0 deferred · {e} errors"
            for d, n, e in zip(DAYS, (17, 19, 18), (5, 6, 5), strict=True)]

        again = dt.datetime.now(dt.UTC).isoformat()
        create_again([*create, "--reprocess-behavior", "completed"], af)
        runs = wait_all_finished_after(af, again, 3)
        assert sorted(r["state"] for r in runs) == ["success"] * 3
        assert received(smtp_sink) == three_days  # nothing new

        # A day older than the attempt history (the data starts on 2 Nov): held, nothing sent, and the run says why.
        stale = dt.datetime.now(dt.UTC).isoformat()
        create_again(["backfill", "create", "--dag-id", DAG, "--from-date", "2026-10-20", "--to-date", "2026-10-21",
                      "--max-active-runs", "1"], af)
        [run] = [r for r in wait_all_finished_after(af, stale, 1) if r["logical_date"].startswith("2026-10-20")]
        assert run["state"] == "failed"
        assert received(smtp_sink) == three_days
        note = af.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(run['run_id'], safe='')}")["note"]
        assert note.startswith("**Digest of 20/10/2026 HELD, nothing sent**: held by the data checks "
                               "(task `check_quality`)")
        assert "2026-10-20 is older than the attempt history" in note
