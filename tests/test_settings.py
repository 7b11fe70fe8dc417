"""Settings: precedence, and the README's settings table lists exactly the Settings fields."""

import dataclasses
import re

import pytest
from conftest import ROOT

from billing_digest.settings import MIN_SECRET_LENGTH, Settings, UnsafeSettings, require_safe


def test_settings_precedence_overrides_then_env_then_defaults():
    env = {"BILLING_DIGEST_MAX_BATCHES": "4", "BILLING_DIGEST_SENDER": "X <x@y.com>"}
    s = Settings.from_env(env, overrides={"sender": "Z <z@y.com>", "max_items_per_topic": 5})
    assert (s.max_batches, s.sender, s.max_items_per_topic, s.base_url) == (
        4, "Z <z@y.com>", 5, Settings().base_url)
    assert "unsubscribe_secret" not in s.public()


def readme_settings_table() -> dict[str, str]:
    """``name -> default`` as the README's settings table states them (rows may pair names: ``a`` / ``b``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**Settings**"):]
    table = section[section.index("| name |"):].split("\n\n", 1)[0].splitlines()[2:]
    stated: dict[str, str] = {}
    for row in table:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        names = re.findall(r"`(\w+)`", cells[0])
        defaults = [d.strip().strip("`") for d in cells[1].split(" / ")]
        assert len(names) == len(defaults), f"README settings row {row!r}: one default per name"
        stated.update(zip(names, defaults, strict=True))
    return stated


def test_readme_lists_exactly_the_settings_with_their_defaults():
    stated = readme_settings_table()
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert sorted(stated) == sorted(fields)
    for name, default in fields.items():
        shown = "" if stated[name] == "(empty)" else stated[name]
        assert shown == str(default), f"README says {name} defaults to {stated[name]!r}, the code {default!r}"


@pytest.mark.parametrize("secret", ["change-me", " change-me ", "change-me-local-only", "", "short-secret"])
def test_an_unsafe_unsubscribe_secret_is_refused_with_a_message_naming_the_setting(secret):
    settings = Settings.from_env({"BILLING_DIGEST_UNSUBSCRIBE_SECRET": secret})
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
