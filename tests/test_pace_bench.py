"""bench/pace_bench.py's ``--runner`` option (issue 14's pace measured under dag.test() and a real scheduler):
the option picks the runner, and what a run records about its ``deliver`` tasks counts a task failure as
Airflow has it (a try beyond the first, or an instance that did not succeed). The benchmark itself is not a
test (bench/RESULTS.md)."""

from __future__ import annotations

import pytest

from bench import pace_bench


@pytest.mark.parametrize(("option", "runner"), [("process", pace_bench.ProcessRunner),
                                                ("dagtest", pace_bench.DagTestRunner),
                                                ("scheduler", pace_bench.SchedulerRunner)])
def test_the_runner_option_picks_the_runner(option, runner):
    assert option in pace_bench.RUNNERS
    chosen = pace_bench.make_runner(option, "postgresql://unused")
    assert type(chosen) is runner and chosen.name == option


def test_only_a_scheduler_fixes_the_smtp_port_for_all_its_runs():
    # Airflow's billing_smtp connection is read when it starts: every run's server must listen there.
    assert pace_bench.make_runner("scheduler", "postgresql://unused").smtp_port
    assert pace_bench.make_runner("dagtest", "postgresql://unused").smtp_port is None


def _ti(task_id, map_index, state, try_number):
    return {"task_id": task_id, "map_index": map_index, "state": state, "try_number": try_number}


def test_a_deliver_task_retried_or_not_successful_is_a_task_failure_and_the_batches_reports_add_up():
    tis = [_ti("build_digests", -1, "success", 2),  # not a deliver task: not counted
           _ti("deliver", 0, "success", 1), _ti("deliver", 1, "success", 3), _ti("deliver", 2, "failed", 1),
           _ti("deliver", 3, "TaskInstanceState.SUCCESS", 1)]  # dag.test's str() of the state
    reports = [{"batch": b, "throttled": b, "pace_wait_seconds": 0.25, "throttle_pause_seconds": 1.0,
                "started_at": f"2026-12-05T01:00:0{b}", "outcomes": {"sent": 10}} for b in (3, 1, 2)]

    figures = pace_bench._task_figures(tis, reports)

    assert figures["batches"] == 4 and figures["deliver_tries"] == [1, 3, 1, 1]
    assert figures["task_failures"] == 3  # two retries of batch 1, batch 2 failed
    assert figures["client_throttled"] == 6 and figures["pace_wait_seconds"] == 0.75
    assert figures["throttle_pause_seconds"] == 3.0
    assert [r["batch"] for r in figures["deliver_reports"]] == [1, 2, 3]  # in the order they started
    assert figures["task_states"] == {"build_digests": "success"}


def test_no_deliver_task_at_all_is_recorded_as_none():
    assert pace_bench._task_figures([], [])["batches"] == 0
