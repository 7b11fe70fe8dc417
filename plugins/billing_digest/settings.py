"""Settings of the digest: one typed, validated model (pydantic-settings), with documented defaults.

Where a value comes from, first match wins:

1. the Airflow Variable ``billing_digest_settings`` (a JSON object; read by
   ``airflow_glue.glue.settings()`` when a task runs, never at parse time);
2. the environment variable ``BILLING_DIGEST_<NAME>`` (the only source outside Airflow: the demo,
   the tests, the benchmarks, the unsubscribe service);
3. the default declared here.

Every value is converted and range-checked on load; a bad one raises :class:`SettingsError`, which
names the setting, what is wrong, and where to set it. ``Settings()`` is the defaults (plus any keyword
arguments) and reads no environment: use :meth:`Settings.from_env`. docs/configuration.md is
generated from this model (``python -m devtools.settings_doc``), and a test keeps them equal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from billing_digest import product

ENV_PREFIX = "BILLING_DIGEST_"
VARIABLE = "billing_digest_settings"  # the Airflow Variable (a JSON object) that wins over the environment
DEFAULT_SECRET = "change-me"


class SettingsError(ValueError):
    """A setting has a value nothing may run with; the message names it and says where to set it."""


class Settings(BaseSettings):
    """Every setting of the digest. Frozen: a task reads them once and passes them along."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid",
                                      validate_default=True, env_ignore_empty=True)

    # -- the product and the e-mail --
    base_url: str = Field("https://app.fintera.com.br",
                          description="The product's URL: invoice links are `base_url` + the invoice's path.")
    sender: str = Field("Fintera <notificacoes@fintera.com.br>",
                        description="From of every digest; its domain is the Message-ID's.")
    support_email: str = Field("suporte@fintera.com.br",
                               description="Shown in the footer, and the mailto: of List-Unsubscribe.")
    max_items_per_topic: int = Field(20, ge=1, le=500, description=(
        "Invoices listed per topic, over its causes (biggest first); the rest is counted and linked."))
    max_invoices_per_cause: int = Field(5, ge=1, le=100, description=(
        "Invoices listed per cause (one block per cause); the rest is counted and linked."))
    # -- one-click unsubscribe --
    unsubscribe_secret: SecretStr = Field(SecretStr(DEFAULT_SECRET), description=(
        "HMAC secret of the one-click unsubscribe links. **Set it** (at least 16 random characters, the same "
        "for the DAG and the unsubscribe service): runs and the service refuse to start with the default."))
    unsubscribe_previous_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = Field((), description=(
        "Secrets replaced by a rotation (a JSON list, or comma-separated): links they signed still work "
        "until they expire; new links use `unsubscribe_secret`. Drop one `unsubscribe_ttl_days` after the "
        "rotation (docs/configuration.md, *Rotating the unsubscribe secret*)."))
    unsubscribe_ttl_days: int = Field(60, ge=1, le=366, description="Life of an unsubscribe link, in days.")
    unsubscribe_url: str = Field("", description=(
        "Public https URL of the unsubscribe service that List-Unsubscribe and the footer link point to "
        f"(`?token=` is added); empty: `base_url` + `{product.UNSUBSCRIBE_PATH}`, the product mounting the service."))
    # -- batches and SMTP --
    max_batches: int = Field(16, ge=1, le=1024, description=(
        "Most mapped `deliver` instances of a day (Airflow's max_map_length is 1024)."))
    min_batch_size: int = Field(200, ge=1, description="The smallest batch worth a `deliver` instance of its own.")
    smtp_attempts: int = Field(3, ge=1, le=20, description=(
        "Attempts per message on a 4xx reply or a dropped connection, in the same task run."))
    smtp_backoff_seconds: float = Field(2.0, ge=0, le=600, description=(
        "Wait after a message's first transient failure; doubled after each."))
    # -- the data team --
    alert_email: str = Field("", description=(
        "The data team's address: e-mailed when a task fails after its retries, a day is held, or a run is "
        "late. Empty: nobody."))
    # -- guards: a bad day is held, not mailed --
    max_errors_per_day: int = Field(500_000, ge=1, description=(
        "Systemic guard: above this many staged errors the day is held."))
    freshness_tolerance_hours: float = Field(12.0, ge=0, le=48, description=(
        "Freshness gate: the window's data has arrived when the billing data is complete up to the window's "
        "end minus this."))
    freshness_query: str = Field("", description=(
        "SQL returning one `timestamptz`, \"billing data complete up to\" (may use `%(window_start)s`, "
        "`%(window_end)s`, `%(digest_date)s`); empty: the latest recorded attempt "
        "(`include/sql/freshness/watermark.sql`)."))
    max_silent_invoice_share: float = Field(0.2, gt=0, le=1, description=(
        "Coverage guard: above this share of the window's invoices with no recorded step at all (and at "
        "least 20 of them), the day is held."))
    anomaly_factor: float = Field(3.0, gt=1, description=(
        "Volume guard: a topic at this many times the errors expected at its trailing reported days' median "
        "rate (errors per invoice billed in the window), `anomaly_floor` above it and wide "
        "(`anomaly_min_companies`), holds the day."))
    anomaly_floor: int = Field(50, ge=0, description=(
        "Volume guard: how many errors above the expected a topic must also be to hold the day."))
    anomaly_min_days: int = Field(5, ge=1, description=(
        "Volume guard: fewer trailing reported days than this and the volume is not judged (said so)."))
    anomaly_trailing_days: int = Field(14, ge=1, le=366, description=(
        "Volume guard: how many trailing reported days it compares with."))
    # -- retention (issue 17; billing_digest.retention.TABLES, docs/operations-notes.md) --
    retention_errors_days: int = Field(90, ge=0, description=(
        "Days `digest.errors` (the staged errors, re-derivable from the billing data) keeps rows, back from the "
        "run's digest day; 0: for ever. The volume guard's trailing days are always kept."))
    retention_entity_digests_days: int = Field(90, ge=0, description=(
        "Days `digest.entity_digests` (the payloads: what each e-mail said; the preview needs them) keeps rows; "
        "0: for ever."))
    retention_deliveries_days: int = Field(400, ge=0, description=(
        "Days the ledger `digest.deliveries` (who was sent what, when: audit) keeps rows; 0: for ever."))
    retention_day_reports_days: int = Field(1100, ge=0, description=(
        "Days `digest.day_reports` (run summaries, a few KB a day: the history page) keeps rows; 0: for ever."))
    retention_day_holds_days: int = Field(1100, ge=0, description=(
        "Days `digest.day_holds` (why a day was held: the history page) keeps rows; 0: for ever."))
    retention_unsubscribes_days: int = Field(1830, ge=0, description=(
        "Days `digest.unsubscribes` (proof of each opt-out) keeps rows; 0: for ever."))
    retention_chunk_rows: int = Field(5000, ge=1, le=1_000_000, description=(
        "Rows deleted per statement by retention, each its own short transaction (no long locks)."))
    # -- volume guard breadth (issue 18) --
    anomaly_min_companies: int = Field(5, ge=0, description=(
        "Volume guard: a topic's jump holds the day only if it is wide too: at least this many more companies "
        "with errors in the topic than its trailing share of the billing companies expects (and "
        "`anomaly_factor` times that share). A jump inside one or two companies is theirs to read."))
    # -- bounces, suppression list, addresses (issue 15; docs/bounces-and-addresses.md) --
    bounce_score_threshold: float = Field(4.0, gt=0, description=(
        "Suppression list: a mailbox is suppressed when its bounce score reaches this (a hard bounce "
        "suppresses at once)."))
    soft_bounce_score: float = Field(1.0, ge=0, description=(
        "What one soft bounce (mailbox full...) adds to the bounce score, at most once per digest day."))
    bounce_score_reset_days: int = Field(30, ge=1, le=366, description=(
        "A bounce score whose last bounce is older than this many days starts again from zero."))
    suppression_ttl_days: int = Field(30, ge=1, le=3660, description=(
        "A suppression lifts itself after this many days (recorded), and the address is mailed again."))
    bounce_address: str = Field("", description=(
        "VERP envelope sender for asynchronous bounces, e.g. `bounces@fintera.com.br`: each digest goes out "
        "from `bounces+<token>@...`, so a bounce names its digest. Empty: the sender's address."))
    bounce_folder: str = Field("INBOX", min_length=1, description=(
        "The bounce mailbox's folder read over IMAP (connection `billing_bounces`)."))
    bounce_done_folder: str = Field("Processed", min_length=1, description=(
        "Where read bounce messages are moved, so each is read once."))
    retention_suppression_events_days: int = Field(1100, ge=0, description=(
        "Days `digest.suppression_events` (each bounce, suppression and lift) keeps rows; 0: for ever. "
        "The suppression list itself (one row per mailbox that bounced) is kept."))
    # -- provider pace (issue 14; docs/provider-pace.md) --
    smtp_max_messages_per_second: float = Field(0.0, ge=0, description=(
        "The whole cluster's send rate, messages per second: every `deliver` of every run, backfill and worker "
        "together (a limiter row in the billing database). Set it a little under the provider's (SES: 95% of "
        "the maximum send rate). 0: no cap; throttle replies still slow delivery down."))
    smtp_throttle_pause_seconds: float = Field(60.0, ge=0, le=3600, description=(
        "A message the server throttled again (e.g. `454 Throttling failure`, `450 4.7.1`) after one quick "
        "retry at the cut rate makes its connection wait this long before each further try, in the same run. "
        "60 s is postfix's anvil window; for SES-like per-second limits 1-5 s is enough."))
    smtp_throttle_patience_seconds: float = Field(1800.0, ge=0, description=(
        "Throttled this long with no message accepted on a connection: the digest is left deferred, the batch "
        "stops and its task retries later."))
    smtp_max_messages_per_day: int = Field(0, ge=0, description=(
        "The provider's daily quota (SES's maximum send quota), messages per trailing 24 hours, for the whole "
        "cluster (counted in the billing database). Reached: the rest of the day stays deferred (reason "
        "`quota`), the run says so and e-mails `alert_email`; the next scheduled run carries it over "
        "(`quota_carry_over_days`), or a re-run of the day sends it. 0: no quota."))
    quota_carry_over_days: int = Field(3, ge=0, le=30, description=(
        "How many earlier digest days the scheduled run also sends, first, the digests the daily quota left "
        "deferred (reason `quota`; no other row). 3 covers a weekend; older ones are no longer news and a quota "
        "short for that long needs a larger quota, not a longer queue: they stay deferred, each run's note counts "
        "them by day, and a re-run of that day sends them. Never further back than `retention_entity_digests_days` "
        "and `retention_deliveries_days` keep. 0: no carry-over."))

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` is its arguments over the defaults; the environment is read by :meth:`from_env`."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> Settings:
        """``overrides`` (the Airflow Variable's object) over ``BILLING_DIGEST_<NAME>`` of ``environ``
        (default: the process's) over the defaults. Raises :class:`SettingsError` on a bad value."""
        unknown = sorted(set(overrides or {}) - set(cls.model_fields))
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)} in the Airflow Variable {VARIABLE}; "
                                f"known: {', '.join(cls.model_fields)}")
        from_environment = _MappingEnv(cls, os.environ if environ is None else environ)()
        return cls.validated({**from_environment, **(overrides or {})}, overrides or {})

    @classmethod
    def validated(cls, values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Settings:
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise SettingsError(_explain(exc, overrides or {})) from None

    @field_validator("unsubscribe_previous_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str | SecretStr):
            raw = (value.get_secret_value() if isinstance(value, SecretStr) else value).strip()
            if raw.startswith("["):
                return tuple(json.loads(raw))
            return tuple(s.strip() for s in raw.split(",") if s.strip())
        return value

    @field_validator("base_url", "unsubscribe_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://app.exemplo.com.br")
        return value

    @field_validator("sender")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError('must contain an address, e.g. "Fintera <notificacoes@fintera.com.br>"')
        return value

    @model_validator(mode="after")
    def _baseline_fits(self) -> Settings:
        if self.anomaly_min_days > self.anomaly_trailing_days:
            raise ValueError(f"anomaly_min_days ({self.anomaly_min_days}) cannot exceed anomaly_trailing_days "
                             f"({self.anomaly_trailing_days}): the volume guard would never judge")
        return self

    @property
    def quota_carry_over_look_back(self) -> int:
        """``quota_carry_over_days``, never past what retention keeps of the payloads and the ledger (a carried
        digest is rendered from its day's payload and ledger row; retention keeps ``days`` back from each run's
        digest day, so the next run can carry exactly that far)."""
        kept = [d for d in (self.retention_entity_digests_days, self.retention_deliveries_days) if d > 0]
        return min([self.quota_carry_over_days, *kept])

    @property
    def unsubscribe_secrets(self) -> tuple[str, ...]:
        """The current secret first, then the previous ones still accepted by the unsubscribe service."""
        return (self.unsubscribe_secret.get_secret_value(),
                *(s.get_secret_value() for s in self.unsubscribe_previous_secrets))


class _MappingEnv(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (the process's by default)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if k.upper().startswith(ENV_PREFIX) and v != ""}


def _explain(exc: ValidationError, overrides: Mapping[str, Any]) -> str:
    """Each bad setting: its name, what is wrong, and where its value came from (never a secret's value)."""
    problems = []
    for error in exc.errors():
        if not error["loc"]:  # a rule between settings: its message names them
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        name = str(error["loc"][0])
        where = (f"the Airflow Variable {VARIABLE}" if name in overrides
                 else f"the environment variable {ENV_PREFIX}{name.upper()}")
        shown = "" if "secret" in name else f" (got {error.get('input')!r})"
        problems.append(f"setting {name}: {str(error['msg']).removeprefix('Value error, ')}{shown}; set it in {where}")
    return "billing-digest settings are invalid: " + "; ".join(problems)
