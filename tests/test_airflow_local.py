"""devtools for the local Airflow: the CLI against the `make airflow` instance, and `make stop`."""

import json
import signal
import subprocess
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


def _process(new_group: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "120"], start_new_session=new_group)


def test_make_airflow_refuses_to_start_twice_says_what_runs_and_touches_none_of_its_files(tmp_path, monkeypatch,
                                                                                         capsys):
    main, scheduler = _process(), _process(new_group=True)  # a running `make airflow` and one of its groups
    try:
        instance, cli_env = tmp_path / "instance.json", tmp_path / "cli-env.json"
        instance.write_text(json.dumps({"pid": main.pid, "url": "http://localhost:8080", "home": str(tmp_path),
                                        "started_at": "2026-12-04T20:00:00-03:00",
                                        "process_groups": [scheduler.pid]}))
        cli_env.write_text('{"AIRFLOW_HOME": "the running one"}')
        before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
        monkeypatch.setattr(airflow_local, "INSTANCE", instance)
        monkeypatch.setattr(airflow_local, "CLI_ENV", cli_env)
        assert airflow_local.main([]) == 1
        err = capsys.readouterr().err
        assert f"`make airflow` is already running (pid {main.pid}, started 2026-12-04T20:00:00-03:00)" in err
        assert "UI: http://localhost:8080" in err and "`make stop`" in err
        assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before
        assert main.poll() is None and scheduler.poll() is None  # and nothing of it was stopped
    finally:
        for proc in (main, scheduler):
            proc.kill()
            proc.wait()


def test_make_stop_stops_every_process_group_make_airflow_started_even_after_its_main_process_died(tmp_path):
    main, scheduler, triggerer = _process(), _process(new_group=True), _process(new_group=True)
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps({"pid": main.pid, "process_groups": [scheduler.pid, triggerer.pid]}))
    try:
        stop.stop_airflow(instance)
        assert [p.wait(5) for p in (main, scheduler, triggerer)] == [-signal.SIGTERM] * 3
        assert not instance.exists()
        # main killed hard (kill -9): its groups were left running; make stop still stops them
        main, scheduler = _process(), _process(new_group=True)
        instance.write_text(json.dumps({"pid": main.pid, "process_groups": [scheduler.pid]}))
        main.kill()
        main.wait()
        assert airflow_local.running_instance(instance) is not None  # half dead still counts as running
        stop.stop_airflow(instance)
        assert scheduler.wait(5) == -signal.SIGTERM and airflow_local.running_instance(instance) is None
    finally:
        for proc in (main, scheduler, triggerer):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
