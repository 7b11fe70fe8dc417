"""Fail closed on the unsubscribe secret: with a known secret anyone can sign an unsubscribe token for
anyone. Runs (airflow_glue.glue.settings) and the unsubscribe service (unsubscribe.app.create_app)
refuse such a secret; nothing relaxes this check: the demo and the tests set a real secret of their own."""

from __future__ import annotations

from billing_digest.settings import DEFAULT_SECRET, ENV_PREFIX, VARIABLE, Settings, SettingsError

MIN_SECRET_LENGTH = 16
KNOWN_SECRETS = frozenset({DEFAULT_SECRET, "change-me-local-only"})  # defaults, old and new
SECRET_HELP = (f"Set a random value of at least {MIN_SECRET_LENGTH} characters as \"unsubscribe_secret\" in the "
               f"Airflow Variable {VARIABLE}, or in the environment variable "
               f"{ENV_PREFIX}UNSUBSCRIBE_SECRET (the unsubscribe service reads only the environment), the same "
               "value everywhere; e.g. "
               "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


class UnsafeSettings(SettingsError):
    """Settings nothing may run with: an unsubscribe secret is a known default, or too short."""


def _secret_problem(secret: str) -> str | None:
    if secret.strip() in KNOWN_SECRETS:
        return f"is the default ({secret.strip()!r}), so anyone could forge unsubscribe links for any user"
    if len(secret.strip()) < MIN_SECRET_LENGTH:
        return f"has fewer than {MIN_SECRET_LENGTH} characters, too few to keep unsubscribe links unforgeable"
    return None


def require_safe(settings: Settings) -> Settings:
    """``settings`` unchanged, or :class:`UnsafeSettings` naming the setting to set (never its value)."""
    current, *previous = settings.unsubscribe_secrets
    problem = _secret_problem(current)
    if problem:
        raise UnsafeSettings(
            f"billing-digest refuses to start: the setting unsubscribe_secret {problem}. {SECRET_HELP}")
    for index, secret in enumerate(previous):
        problem = _secret_problem(secret)
        if problem:
            raise UnsafeSettings(f"billing-digest refuses to start: unsubscribe_previous_secrets[{index}] {problem}; "
                                 "remove it (links it signed stop working) or restore the secret it replaced")
    return settings
