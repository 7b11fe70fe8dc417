"""Is a process (or a process group) still running? For `make airflow` (refuse to start twice) and
`make stop` (stop every process group it started), without importing anything heavy."""

from __future__ import annotations

from pathlib import Path

from devtools.airflow_env import DEMO

# The running `make airflow`: its pid, URL and the process group of each Airflow process it started.
INSTANCE = DEMO / "airflow-ui" / "instance.json"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process from /proc; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2])


def alive(pid: int) -> bool:
    """A running process (a zombie, exited but not yet reaped, is not)."""
    stat = _stat(pid) if pid > 0 else None
    return stat is not None and stat[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Any running process in the process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pgid and stat[0] != "Z":
            return True
    return False
