"""The day at a glance in the Airflow UI: screenshot a run's page (its note: the day and its counts)
and the DAG's runs, in a real Airflow on a scratch copy of the demo's data.

    python -m devtools.run_screenshots docs/screenshots     # run-note.png, run-note-held.png, runs-list.png

Two runs are triggered through the REST API: the demo's day (a normal digest) and a day before the
attempt history (held by check_quality); the notes are set by the runs themselves.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from urllib.parse import quote

from devtools.airflow_env import DEMO, billing_dsn
from devtools.airflow_local import LocalAirflow
from devtools.demo import DEMO_DATE, seed
from devtools.screenshots import WIDTHS, browser, chromium_available
from devtools.smtp_sink import SmtpSink, free_port

DAG = "billing_error_digest"
HELD_DAY = DEMO_DATE - dt.timedelta(days=30)


def _wait(af: LocalAirflow, run_ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [af.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{quote(r, safe='')}")["state"] for r in run_ids]
        if all(s in ("success", "failed") for s in states):
            return
        time.sleep(2)
    raise TimeoutError(f"runs not finished: {run_ids}")


def _shoot(base: str, password: str, shots: dict[Path, str]) -> None:
    with browser() as context:
        page = context.new_page()
        page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
        page.goto(f"{base}/auth/login/", wait_until="networkidle")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
        for out, path in shots.items():
            page.goto(f"{base}{path}", wait_until="networkidle")
            page.wait_for_timeout(2500)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
            print(out)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m devtools.run_screenshots OUTDIR")
    if not chromium_available():
        raise SystemExit("no Chromium: apt-get install chromium")
    outdir = Path(argv[0])
    dsn = billing_dsn("billing_runs")
    seed(dsn, DEMO_DATE, marker_name="seeded-runs.json")
    with SmtpSink() as sink, LocalAirflow(DEMO / "airflow-runs", dsn, sink.port, port=free_port(),
                                          extra_env={"BILLING_DIGEST_LATE_ALERT_AFTER_MINUTES": "0"}) as af:
        af.cli(["dags", "reserialize"], check=False)
        runs = [af.api("POST", f"/api/v2/dags/{DAG}/dagRuns",
                       json={"logical_date": None, "conf": {"digest_date": day.isoformat()}})["dag_run_id"]
                for day in (DEMO_DATE, HELD_DAY)]
        af.cli(["dags", "unpause", DAG])
        _wait(af, runs)
        base = f"http://localhost:{af.port}"
        _shoot(base, af.admin_password(), {
            outdir / "run-note.png": f"/dags/{DAG}/runs/{quote(runs[0], safe='')}",
            outdir / "run-note-held.png": f"/dags/{DAG}/runs/{quote(runs[1], safe='')}",
            outdir / "runs-list.png": f"/dags/{DAG}/runs",
        })


if __name__ == "__main__":
    main(sys.argv[1:])
