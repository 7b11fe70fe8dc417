"""The cluster-wide cap on SMTP connections: every `deliver` runs in one Airflow pool, which every
way of starting Airflow here creates (tests/scenarios/test_backfill.py measures the cap)."""

from __future__ import annotations

from pathlib import Path

import yaml
from airflow.dag_processing.dagbag import DagBag

ROOT = Path(__file__).resolve().parents[2]


def _dag():
    return DagBag(dag_folder=str(ROOT / "dags")).dags["billing_error_digest"]


def test_deliver_and_only_deliver_runs_in_the_smtp_pool():
    pools = {t.task_id: t.pool for t in _dag().tasks}
    assert pools.pop("deliver") == "billing_smtp"
    assert set(pools.values()) == {"default_pool"}  # nothing else holds an SMTP slot


def test_the_pool_name_can_be_changed_where_the_dag_is_parsed(monkeypatch):
    monkeypatch.setenv("BILLING_DIGEST_SMTP_POOL", "mail_provider_x")
    assert _dag().get_task("deliver").pool == "mail_provider_x"


def test_local_airflow_and_the_compose_init_create_the_pool():
    from devtools.airflow_local import DEFAULT_SMTP_POOL, DEFAULT_SMTP_POOL_SLOTS

    assert (DEFAULT_SMTP_POOL, DEFAULT_SMTP_POOL_SLOTS) == ("billing_smtp", 4)
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    init = compose["services"]["airflow-init"]
    script = init["command"][-1] if isinstance(init["command"], list) else init["command"]
    assert 'airflow pools set "$${BILLING_DIGEST_SMTP_POOL}" "$${BILLING_DIGEST_SMTP_POOL_SLOTS}"' in script
    assert init["environment"]["BILLING_DIGEST_SMTP_POOL_SLOTS"] == "${BILLING_DIGEST_SMTP_POOL_SLOTS:-4}"
    assert compose["x-airflow-common"]["environment"]["BILLING_DIGEST_SMTP_POOL"] == \
        "${BILLING_DIGEST_SMTP_POOL:-billing_smtp}"  # the dag-processor parses with the same name
