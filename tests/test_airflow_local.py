"""devtools for the local Airflow: the CLI against the `make airflow` instance, and `make stop`."""

import json
import sys

from devtools import airflow_local, embedded_pg, stop


def test_the_cli_without_an_instance_says_to_start_make_airflow(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(airflow_local, "CLI_ENV", tmp_path / "missing.json")
    assert airflow_local.main(["cli", "dags", "list"]) == 2
    assert "start `make airflow` once" in capsys.readouterr().err


def test_the_cli_runs_airflow_with_the_instance_s_environment(tmp_path, monkeypatch):
    env_file = tmp_path / "cli-env.json"
    env_file.write_text(json.dumps({"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}))
    monkeypatch.setattr(airflow_local, "CLI_ENV", env_file)
    monkeypatch.setattr(airflow_local.embedded_pg, "start", lambda *a, **k: "")
    seen = {}

    def fake_run(args, env, check):
        seen.update(args=args, home=env["AIRFLOW_HOME"])
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(airflow_local.subprocess, "run", fake_run)
    assert airflow_local.main(["cli", "backfill", "create", "--dag-id", "x"]) == 0
    assert seen == {"args": [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", "x"],
                    "home": str(tmp_path / "home")}


def test_stop_stops_an_embedded_server_so_clean_never_deletes_under_it(tmp_path):
    data_dir = tmp_path / "pg"
    embedded_pg.start(data_dir, keep_running=True)
    assert (data_dir / "postmaster.pid").exists()
    stop.stop_postgres(data_dir)
    assert not (data_dir / "postmaster.pid").exists()
    stop.stop_postgres(data_dir)  # nothing running: nothing to do
