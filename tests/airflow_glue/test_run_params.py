"""A run's parameters in one typed shape, checked before anything is extracted."""

import datetime as dt
import re

import pytest

from billing_digest.airflow_glue.run_params import REDIRECT_TO_PATTERN, InvalidRunParams, RunParams
from billing_digest.settings import Settings


def test_one_shape_per_parameter_and_the_delivery_options_built_from_it():
    p = RunParams.from_params("manual__1", {"digest_date": "2026-11-29", "entity_ids": [3, 1], "dry_run": False,
                                            "redirect_to": " teste@fintera.com.br ", "resend": False})
    assert (p.digest_date, p.entity_ids, p.redirect_to) == (dt.date(2026, 11, 29), (3, 1), "teste@fintera.com.br")
    options = p.delivery_options(Settings())
    assert (options.run_id, options.entity_ids, options.redirect_to) == ("manual__1", (3, 1), "teste@fintera.com.br")
    empty = RunParams.from_params("r", {"entity_ids": [], "redirect_to": "", "digest_date": None})
    assert (empty.entity_ids, empty.redirect_to, empty.digest_date, empty.mode) == (None, None, None, "normal")


@pytest.mark.parametrize("bad", ["not-an-email", "a@b", "Ana <ana@acme.com.br>", "a@acme.com.br, b@acme.com.br"])
def test_a_bad_redirect_is_refused_by_the_form_s_pattern_and_before_extraction(bad):
    assert not re.fullmatch(REDIRECT_TO_PATTERN, bad)
    with pytest.raises(InvalidRunParams, match="is not one plain e-mail address"):
        RunParams.from_params("r", {"redirect_to": bad})


def test_the_dag_s_form_pattern_is_the_one_checked_before_extraction():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[2] / "dags" / "billing_error_digest.py").read_text())
    [assign] = [n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "")
                == "REDIRECT_TO_PATTERN"]
    assert ast.literal_eval(assign.value) == REDIRECT_TO_PATTERN
    assert re.fullmatch(REDIRECT_TO_PATTERN, "") and re.fullmatch(REDIRECT_TO_PATTERN, "qa+1@fintera.com.br")


def test_the_mode_says_what_the_run_does():
    assert RunParams("r", dry_run=True).mode.startswith("dry run: nothing sent, no ledger row changed")
    assert RunParams("r", redirect_to="t@x.com.br").mode == "test: redirected to t@x.com.br, ledger not changed"


@pytest.mark.parametrize(("params", "run_type", "carries"), [
    ({}, "scheduled", True),
    ({}, "manual", True),                                   # a plain re-run of the latest day, e.g. after a failure
    ({}, "backfill", False),                                # an old day: the latest day's run carries over
    ({"entity_ids": [7]}, "manual", False),                 # some companies of its day only
    ({"resend": True}, "manual", False),                    # a deliberate act on its own day
    ({"redirect_to": "teste@fintera.com.br"}, "manual", False),  # a test of its own day's digests
    ({"dry_run": True}, "manual", False),                   # sends nothing
])
def test_only_a_run_of_its_whole_day_that_is_no_backfill_carries_the_quota_s_leftovers_over(params, run_type, carries):
    class DagRun:  # what the task context's dag_run offers (Airflow's DagRunType is a str enum)
        def __init__(self, run_type: str):
            self.run_type = run_type

    p = RunParams.from_context({"run_id": f"{run_type}__1", "params": params, "dag_run": DagRun(run_type)})
    assert p.run_type == run_type and p.carries_over is carries
    assert p.delivery_options(Settings(), carried_over=True).carried_over is True
