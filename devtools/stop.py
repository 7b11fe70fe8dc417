"""`make stop`: stop what the demo, `make airflow` and the benchmarks left running (the embedded
PostgreSQL servers, a `make airflow` started in the background). `make clean` runs it first, so it
never deletes a data directory under a running server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from devtools.airflow_env import DEMO, ROOT

SERVERS = (DEMO / "pg", ROOT / "bench" / ".data" / "pg")


def stop_airflow(pid_file: Path) -> None:
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)  # make airflow stops its Airflow processes on SIGTERM
        print(f"- make airflow (pid {pid}): stopping")
        for _ in range(60):
            os.kill(pid, 0)
            time.sleep(1)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


def stop_postgres(data_dir: Path) -> None:
    if not (data_dir / "postmaster.pid").exists():
        return
    from devtools import embedded_pg

    embedded_pg.stop(data_dir)
    print(f"- PostgreSQL in {data_dir}: stopped")


def main() -> None:
    stop_airflow(DEMO / "airflow-ui" / "pid")
    for data_dir in SERVERS:
        stop_postgres(data_dir)


if __name__ == "__main__":
    main()
