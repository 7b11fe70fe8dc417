"""`make stop`: stop what the demo, `make airflow` and the benchmarks left running (the embedded
PostgreSQL servers, a `make airflow` started in the background). `make clean` runs it first, so it
never deletes a data directory under a running server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from devtools.airflow_env import DEMO, ROOT
from devtools.processes import INSTANCE, alive, group_alive

SERVERS = (DEMO / "pg", ROOT / "bench" / ".data" / "pg")


def stop_airflow(instance_file: Path, wait_seconds: float = 60) -> None:
    """Stop a `make airflow`: its main process (which stops Airflow's processes on SIGTERM), then every
    process group it recorded that is still there (e.g. after its main process was killed)."""
    if not instance_file.exists():
        return
    try:
        record = json.loads(instance_file.read_text())
    except ValueError:
        record = {}
    pid = int(record.get("pid", 0))
    if pid and alive(pid):
        os.kill(pid, signal.SIGTERM)
        print(f"- make airflow (pid {pid}): stopping")
        _wait(lambda: alive(pid), wait_seconds)
    for pgid in record.get("process_groups", []):
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGTERM)
            if not _wait(lambda g=pgid: group_alive(g), 30):
                os.killpg(pgid, signal.SIGKILL)
            print(f"- Airflow process group {pgid} (left by make airflow): stopped")
    instance_file.unlink(missing_ok=True)


def _wait(still: Callable[[], bool], seconds: float) -> bool:
    """Wait until ``still()`` is false; True if it became false in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not still():
            return True
        time.sleep(0.2)
    return not still()


def stop_postgres(data_dir: Path) -> None:
    if not (data_dir / "postmaster.pid").exists():
        return
    from devtools import embedded_pg

    embedded_pg.stop(data_dir)
    print(f"- PostgreSQL in {data_dir}: stopped")


def main() -> None:
    stop_airflow(INSTANCE)
    for data_dir in SERVERS:
        stop_postgres(data_dir)


if __name__ == "__main__":
    main()
