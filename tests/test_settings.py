from billing_digest.settings import Settings


def test_settings_precedence_overrides_then_env_then_defaults():
    env = {"BILLING_DIGEST_MAX_BATCHES": "4", "BILLING_DIGEST_SENDER": "X <x@y.com>"}
    s = Settings.from_env(env, overrides={"sender": "Z <z@y.com>", "max_items_per_topic": 5})
    assert (s.max_batches, s.sender, s.max_items_per_topic, s.base_url) == (
        4, "Z <z@y.com>", 5, Settings().base_url)
    assert "unsubscribe_secret" not in s.public()
