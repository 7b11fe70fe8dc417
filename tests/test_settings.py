"""Settings: precedence, validation that names the setting, secret rotation, and the docs' table is the model's."""

import datetime as dt
import subprocess
import sys
import time
import urllib.parse

import pytest
from conftest import ROOT

from billing_digest.mail.render import Renderer
from billing_digest.secret_check import MIN_SECRET_LENGTH, UnsafeSettings, require_safe
from billing_digest.settings import Settings, SettingsError
from billing_digest.unsubscribe.tokens import InvalidToken, make_token, verify


def test_settings_precedence_overrides_then_env_then_defaults():
    env = {"BILLING_DIGEST_MAX_BATCHES": "4", "BILLING_DIGEST_SENDER": "X <x@y.com>", "OTHER": "ignored"}
    s = Settings.from_env(env, overrides={"sender": "Z <z@y.com>", "max_items_per_topic": 5})
    assert (s.max_batches, s.sender, s.max_items_per_topic, s.base_url) == (
        4, "Z <z@y.com>", 5, Settings().base_url)


def test_settings_without_from_env_are_the_defaults_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("BILLING_DIGEST_MAX_BATCHES", "7")
    assert Settings().max_batches == 16 and Settings.from_env().max_batches == 7


@pytest.mark.parametrize(("env", "overrides", "expected"), [
    ({"BILLING_DIGEST_MAX_BATCHES": "x"}, {},
     "setting max_batches: Input should be a valid integer, unable to parse string as an integer (got 'x'); "
     "set it in the environment variable BILLING_DIGEST_MAX_BATCHES"),
    ({}, {"max_batches": 0},
     "setting max_batches: Input should be greater than or equal to 1 (got 0); set it in the Airflow Variable "
     "billing_digest_settings"),
    ({}, {"max_batches": 2000}, "setting max_batches: Input should be less than or equal to 1024"),
    ({"BILLING_DIGEST_MAX_SILENT_INVOICE_SHARE": "1.5"}, {}, "setting max_silent_invoice_share"),
    ({"BILLING_DIGEST_BASE_URL": "app.exemplo.com.br"}, {}, "setting base_url: must be an http(s) URL"),
    ({}, {"sender": "Fintera"}, "setting sender: must contain an address"),
    ({"BILLING_DIGEST_ANOMALY_MIN_DAYS": "20"}, {}, "anomaly_min_days (20) cannot exceed anomaly_trailing_days (14)"),
    ({}, {"max_bathces": 3}, "unknown setting(s) max_bathces in the Airflow Variable billing_digest_settings"),
])
def test_a_bad_value_is_refused_naming_the_setting_and_where_it_was_set(env, overrides, expected):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env, overrides=overrides)
    assert expected in str(refused.value)


def test_a_bad_secret_value_is_never_shown():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({}, overrides={"unsubscribe_secret": ["not", "a", "string-secret-value"]})
    assert "unsubscribe_secret" in str(refused.value) and "string-secret-value" not in str(refused.value)


def test_secrets_are_hidden_from_repr_and_logs():
    s = Settings(unsubscribe_secret="a-real-secret-of-32-characters!!")
    assert "a-real-secret" not in repr(s) and "a-real-secret" not in str(s.model_dump())


def test_types_are_converted_from_strings_the_same_way_everywhere():
    s = Settings.from_env({"BILLING_DIGEST_SMTP_BACKOFF_SECONDS": "0.5", "BILLING_DIGEST_ANOMALY_FLOOR": "7"},
                          overrides={"max_batches": "3"})
    assert (s.smtp_backoff_seconds, s.anomaly_floor, s.max_batches) == (0.5, 7, 3)


@pytest.mark.parametrize("secret", ["change-me", " change-me ", "change-me-local-only", "", "short-secret"])
def test_an_unsafe_unsubscribe_secret_is_refused_with_a_message_naming_the_setting(secret):
    settings = Settings.from_env({"BILLING_DIGEST_UNSUBSCRIBE_SECRET": secret} if secret else {})
    with pytest.raises(UnsafeSettings) as refused:
        require_safe(settings)
    message = str(refused.value)
    assert "unsubscribe_secret" in message and "billing_digest_settings" in message
    assert "BILLING_DIGEST_UNSUBSCRIBE_SECRET" in message
    if len(secret.strip()) > len("change-me"):
        assert secret.strip() not in message.replace("'change-me-local-only'", "")  # never a real value


def test_a_real_unsubscribe_secret_passes():
    settings = Settings(unsubscribe_secret="x" * MIN_SECRET_LENGTH)
    assert require_safe(settings) is settings


def test_a_weak_previous_secret_is_refused_too():
    settings = Settings(unsubscribe_secret="x" * MIN_SECRET_LENGTH, unsubscribe_previous_secrets=["change-me"])
    with pytest.raises(UnsafeSettings, match=r"unsubscribe_previous_secrets\[0\] is the default"):
        require_safe(settings)


def test_rotation_links_signed_with_a_previous_secret_still_verify_new_ones_use_the_current():
    old, new = "old-secret-" + "o" * 16, "new-secret-" + "n" * 16
    rotated = Settings.from_env({"BILLING_DIGEST_UNSUBSCRIBE_SECRET": new,
                                 "BILLING_DIGEST_UNSUBSCRIBE_PREVIOUS_SECRETS": f" {old} , "})
    assert rotated.unsubscribe_secrets == (new, old)
    expires = int(time.time()) + 3600
    sent_before = make_token(old, 7, "billing_errors", expires)
    assert verify(rotated.unsubscribe_secrets, sent_before).user_id == 7
    assert verify(rotated.unsubscribe_secrets, make_token(rotated.unsubscribe_secrets[0], 8, "billing_errors",
                                                          expires)).user_id == 8
    with pytest.raises(InvalidToken):  # once the old secret is dropped, its links stop working
        verify(Settings(unsubscribe_secret=new).unsubscribe_secrets, sent_before)
    as_json = Settings.from_env({"BILLING_DIGEST_UNSUBSCRIBE_PREVIOUS_SECRETS": f'["{old}"]'})
    assert as_json.unsubscribe_secrets[1:] == (old,)


def test_new_links_are_signed_with_the_current_secret():
    old, new = "old-secret-" + "o" * 16, "new-secret-" + "n" * 16
    renderer = Renderer(Settings(unsubscribe_secret=new, unsubscribe_previous_secrets=[old]))
    url = renderer.unsubscribe_url(5, dt.datetime.now(dt.UTC))
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
    assert verify(new, token).user_id == 5
    with pytest.raises(InvalidToken):
        verify(old, token)


def test_docs_configuration_table_is_generated_from_the_model():
    done = subprocess.run([sys.executable, "-m", "devtools.settings_doc", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"| `{name}` |" in text


def test_the_quota_s_carry_over_never_reaches_past_what_retention_keeps():
    assert Settings().quota_carry_over_look_back == 3
    assert Settings(retention_entity_digests_days=2).quota_carry_over_look_back == 2  # payloads kept 2 days
    assert Settings(retention_deliveries_days=1, quota_carry_over_days=5).quota_carry_over_look_back == 1
    assert Settings(retention_entity_digests_days=0, retention_deliveries_days=0).quota_carry_over_look_back == 3
    assert Settings(quota_carry_over_days=0).quota_carry_over_look_back == 0
