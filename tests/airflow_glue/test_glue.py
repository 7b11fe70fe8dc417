"""The one module that talks to Airflow: the settings Variable and the connections, as tasks read them."""

import json

import psycopg
import pytest

from billing_digest.airflow_glue import glue
from devtools import embedded_pg


def test_the_settings_variable_wins_over_env_vars(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_BILLING_DIGEST_SETTINGS", json.dumps({"max_batches": 3, "sender": "X <x@y.com>"}))
    monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "9")
    monkeypatch.setenv("BILLING_DIGEST_MIN_BATCH_SIZE", "7")
    s = glue.settings()
    assert (s.max_batches, s.sender, s.min_batch_size) == (3, "X <x@y.com>", 7)


def test_a_settings_variable_that_is_not_an_object_is_refused(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW_VAR_BILLING_DIGEST_SETTINGS", "[1, 2]")
    with pytest.raises(AirflowFailException, match="must be a JSON object"):  # no retry can fix it
        glue.settings()


def test_a_bad_setting_fails_the_task_without_retries_and_the_alert_still_finds_its_address(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW_VAR_BILLING_DIGEST_SETTINGS",
                       json.dumps({"max_batches": "many", "alert_email": "dados@exemplo.com.br"}))
    with pytest.raises(AirflowFailException, match="setting max_batches: Input should be a valid integer"):
        glue.settings()
    assert glue.settings(check=False).alert_email == "dados@exemplo.com.br"


def test_connections_come_from_airflow(monkeypatch, db_dsn):
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_DB", json.dumps(embedded_pg.airflow_connection(db_dsn)))
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_SMTP", json.dumps(
        {"conn_type": "smtp", "host": "smtp.exemplo.com", "port": 587, "login": "u", "password": "p",
         "extra": {"disable_ssl": True, "timeout": 7}}))
    smtp = glue.smtp_settings()
    assert (smtp.host, smtp.port, smtp.use_starttls, smtp.timeout, smtp.login) == (
        "smtp.exemplo.com", 587, True, 7.0, "u")
    with glue.billing_db() as conn:
        assert isinstance(conn, psycopg.Connection)
        assert conn.execute("SELECT to_regclass('digest.deliveries')").fetchone()[0] == "digest.deliveries"


@pytest.mark.parametrize("where", ["variable", "env"])
def test_tasks_refuse_the_default_unsubscribe_secret_at_once_naming_the_setting(monkeypatch, where):
    from airflow.sdk.exceptions import AirflowFailException

    if where == "variable":  # the Variable wins even over a good env var
        monkeypatch.setenv("AIRFLOW_VAR_BILLING_DIGEST_SETTINGS", json.dumps({"unsubscribe_secret": "change-me"}))
    else:
        monkeypatch.setenv("BILLING_DIGEST_UNSUBSCRIBE_SECRET", "change-me")
    with pytest.raises(AirflowFailException, match="unsubscribe_secret is the default") as refused:
        glue.settings()
    assert "billing_digest_settings" in str(refused.value)
    assert "BILLING_DIGEST_UNSUBSCRIBE_SECRET" in str(refused.value)
    # Only the failure alert reads them unchecked, so the data team still hears about it.
    assert glue.settings(check=False).unsubscribe_secret.get_secret_value() == "change-me"


def test_the_tests_run_with_a_real_secret():
    assert len(glue.settings().unsubscribe_secret.get_secret_value()) >= 16
