"""`make demo` / `make unsubscribe`: the demo signs its links with a real secret of its own, made once,
and points them at the local unsubscribe service; nothing relaxes the fail-closed check for it."""

from __future__ import annotations

import stat

import pytest

from billing_digest.secret_check import require_safe
from billing_digest.settings import Settings
from devtools import airflow_env


@pytest.fixture
def demo_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(airflow_env, "DEMO", tmp_path)
    monkeypatch.setattr(airflow_env, "UNSUBSCRIBE_SECRET_FILE", tmp_path / "unsubscribe_secret")
    monkeypatch.delenv("UNSUBSCRIBE_PORT", raising=False)
    return tmp_path


def test_the_demo_makes_its_secret_once_and_keeps_it_private(demo_dir):
    env = airflow_env.demo_settings_env({})
    secret = env["BILLING_DIGEST_UNSUBSCRIBE_SECRET"]
    assert len(secret) >= 32 and secret == (demo_dir / "unsubscribe_secret").read_text()
    assert stat.S_IMODE((demo_dir / "unsubscribe_secret").stat().st_mode) == 0o600
    assert airflow_env.demo_settings_env({})["BILLING_DIGEST_UNSUBSCRIBE_SECRET"] == secret  # make unsubscribe's
    require_safe(Settings.from_env(env))  # a real secret: the check passes, it is not bypassed


def test_the_demos_links_point_to_make_unsubscribe(demo_dir, monkeypatch):
    env = airflow_env.demo_settings_env({})
    assert env["BILLING_DIGEST_UNSUBSCRIBE_URL"] == "http://127.0.0.1:8099/notificacoes/cancelar"
    monkeypatch.setenv("UNSUBSCRIBE_PORT", "8100")
    assert airflow_env.demo_settings_env({})["BILLING_DIGEST_UNSUBSCRIBE_URL"] == (
        "http://127.0.0.1:8100/notificacoes/cancelar")
    env = airflow_env.airflow_env(demo_dir / "airflow", "postgresql://x@/y", 2525)
    assert env["BILLING_DIGEST_UNSUBSCRIBE_URL"].endswith(":8100/notificacoes/cancelar")


def test_a_secret_or_link_given_by_the_developer_wins(demo_dir):
    given = {"BILLING_DIGEST_UNSUBSCRIBE_SECRET": "change-me", "BILLING_DIGEST_UNSUBSCRIBE_URL": "https://x/y"}
    env = airflow_env.demo_settings_env(dict(given))
    assert env == given and not (demo_dir / "unsubscribe_secret").exists()
    with pytest.raises(ValueError, match="unsubscribe_secret is the default"):
        require_safe(Settings.from_env(env))  # and the demo then refuses, like any run
