"""Settings of the digest, with documented defaults (the README's settings table lists each one).

In Airflow they are one JSON Variable, ``billing_digest_settings`` (a JSON object; read by
``airflow_glue.settings()`` when a task runs, never at parse time); each key wins over the env var
``BILLING_DIGEST_<NAME>``, which wins over the default here. Outside Airflow (demo, tests,
benchmarks, the unsubscribe service) only the env vars and the defaults apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Settings:
    base_url: str = "https://app.fintera.com.br"
    sender: str = "Fintera <notificacoes@fintera.com.br>"
    support_email: str = "suporte@fintera.com.br"
    # Secret for the one-click unsubscribe token (HMAC). Set it in production.
    unsubscribe_secret: str = "change-me"
    unsubscribe_ttl_days: int = 60
    # Invoices listed per topic (over its causes, biggest first), and per cause.
    max_items_per_topic: int = 20
    max_invoices_per_cause: int = 5
    max_batches: int = 16
    min_batch_size: int = 200
    # SMTP: attempts per message on transient (4xx / dropped connection) failures.
    smtp_attempts: int = 3
    smtp_backoff_seconds: float = 2.0
    # Data-quality bounds checked before anything is sent.
    max_errors_per_day: int = 500_000
    # Who is told when a run fails, is held or is late (empty: nobody).
    alert_email: str = ""
    # Freshness gate: the window's data has arrived when the freshness query's "complete up to"
    # reaches the window's end minus this tolerance (hours).
    freshness_tolerance_hours: float = 12.0
    # SQL returning one timestamptz, "billing data complete up to" (parameters %(window_start)s,
    # %(window_end)s, %(digest_date)s). Empty: include/sql/freshness/watermark.sql.
    freshness_query: str = ""
    # Coverage guard: above this share of the window's invoices with no recorded step, the day is held.
    max_silent_invoice_share: float = 0.2
    # Volume guard: a topic at >= factor x the median of its trailing reported days, and >= floor errors
    # above it, holds the day (run parameter accept_anomaly sends anyway). Needs min_days of history.
    anomaly_factor: float = 3.0
    anomaly_floor: int = 50
    anomaly_min_days: int = 5
    anomaly_trailing_days: int = 14
    # Public URL of the one-click unsubscribe service the e-mails link to (List-Unsubscribe and the
    # footer); empty: base_url + "/notificacoes/cancelar", the product mounting the service there.
    unsubscribe_url: str = ""
    # -- provider pace (issue 14; docs/provider-pace.md) --
    # The whole cluster's send rate (all deliver tasks of all runs, backfills and workers together), msg/s;
    # set it a little under the provider's (SES "maximum send rate"); 0: no cap, throttle replies still slow us.
    smtp_max_messages_per_second: float = 0.0
    # A connection the server throttles (e.g. 454 Throttling failure, 450 4.7.1) waits this long, then sends the
    # message again; 60 s is postfix's anvil window (it counts refused attempts too). SES-like per-second limits: ~1-5.
    smtp_throttle_pause_seconds: float = 60.0
    # Throttled this long with no message accepted: the batch stops and its task retries later.
    smtp_throttle_patience_seconds: float = 1800.0

    @classmethod
    def from_lookup(cls, lookup: Callable[[str], str | None]) -> Settings:
        """Build from a lookup of ``name -> raw string or None`` (None keeps the default)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = lookup(f.name)
            if raw is None or raw == "":
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = str(raw).strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = str(raw)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 overrides: Mapping[str, object] | None = None) -> Settings:
        """``overrides`` (e.g. an Airflow Variable) over env vars ``BILLING_DIGEST_<NAME>`` over defaults."""
        env = os.environ if environ is None else environ
        given = overrides or {}
        return cls.from_lookup(lambda name: str(given[name]) if name in given
                               else env.get(f"BILLING_DIGEST_{name.upper()}"))

    def public(self) -> dict[str, object]:
        """The settings without secrets, safe to log."""
        return {f.name: getattr(self, f.name) for f in fields(self) if "secret" not in f.name}


# -- fail closed on the unsubscribe secret ------------------------------------------------------
# With a known secret anyone can sign an unsubscribe token for anyone. Runs (airflow_glue.settings)
# and the unsubscribe service (unsubscribe_app.create_app) refuse such a secret; nothing relaxes
# this check: the demo and the tests set a real secret of their own.
MIN_SECRET_LENGTH = 16
KNOWN_SECRETS = frozenset({Settings.unsubscribe_secret, "change-me-local-only"})  # defaults, old and new
SECRET_HELP = (f"Set a random value of at least {MIN_SECRET_LENGTH} characters as \"unsubscribe_secret\" in the "
               "Airflow Variable billing_digest_settings, or in the environment variable "
               "BILLING_DIGEST_UNSUBSCRIBE_SECRET (the unsubscribe service reads only the environment), the same "
               "value everywhere; e.g. "
               "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


class UnsafeSettings(ValueError):
    """Settings nothing may run with: the unsubscribe secret is a known default, or too short."""


def require_safe(settings: Settings) -> Settings:
    """``settings`` unchanged, or :class:`UnsafeSettings` naming the setting to set (never its value)."""
    secret = settings.unsubscribe_secret
    if secret.strip() in KNOWN_SECRETS:
        problem = f"is the default ({secret.strip()!r}), so anyone could forge unsubscribe links for any user"
    elif len(secret.strip()) < MIN_SECRET_LENGTH:
        problem = f"has fewer than {MIN_SECRET_LENGTH} characters, too few to keep unsubscribe links unforgeable"
    else:
        return settings
    raise UnsafeSettings(f"billing-digest refuses to start: the setting unsubscribe_secret {problem}. {SECRET_HELP}")
