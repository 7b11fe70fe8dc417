"""A run's parameters, read once from the Airflow context into one typed shape (issue 16, item 3).

Every task reads them through :meth:`RunParams.from_context`: ``entity_ids`` is always a tuple or
``None``, ``redirect_to`` a checked single mailbox or ``None``, ``digest_date`` a date or ``None``;
the delivery options are built here, not in the DAG file. A bad value fails the first task at once
(:class:`InvalidRunParams`), before anything is extracted, with a message naming the parameter.
The Trigger form enforces the same rules first (``REDIRECT_TO_PATTERN`` in the DAG's params).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from billing_digest.delivery.deliver import DeliveryOptions
from billing_digest.delivery.suppression import SuppressionPolicy
from billing_digest.mail.addresses import FORM_PATTERN, parse
from billing_digest.settings import Settings

# The Trigger form's check of redirect_to (JSON Schema ``pattern``): empty, or one plain mailbox.
REDIRECT_TO_PATTERN = f"^(|{FORM_PATTERN})$"


class InvalidRunParams(ValueError):
    """A run parameter that cannot be used: the run stops before extracting anything."""


@dataclasses.dataclass(frozen=True)
class RunParams:
    run_id: str
    digest_date: dt.date | None = None
    dry_run: bool = False
    entity_ids: tuple[int, ...] | None = None
    redirect_to: str | None = None
    resend: bool = False
    accept_anomaly: bool = False
    run_type: str = "manual"  # Airflow's DagRunType value: scheduled, manual, backfill, asset_triggered

    @classmethod
    def from_params(cls, run_id: str, params: Mapping[str, Any]) -> RunParams:
        """From the run's params (the Trigger form's or ``conf``'s values); raises :class:`InvalidRunParams`."""
        redirect = (params.get("redirect_to") or "").strip() or None
        if redirect is not None and parse(redirect) is None:
            raise InvalidRunParams(f"redirect_to={params.get('redirect_to')!r} is not one plain e-mail address "
                                   "(e.g. teste@fintera.com.br): nothing was extracted or sent; trigger again with "
                                   "a valid address, or leave it empty")
        raw_day = params.get("digest_date")
        try:
            day = dt.date.fromisoformat(str(raw_day)) if raw_day else None
        except ValueError as exc:
            raise InvalidRunParams(f"digest_date={raw_day!r} is not a date (YYYY-MM-DD)") from exc
        raw_ids = params.get("entity_ids")
        try:
            ids = tuple(int(i) for i in raw_ids) if raw_ids else None
        except (TypeError, ValueError) as exc:
            raise InvalidRunParams(f"entity_ids={raw_ids!r} must be a list of company ids (integers)") from exc
        return cls(run_id=run_id, digest_date=day, dry_run=bool(params.get("dry_run")), entity_ids=ids,
                   redirect_to=redirect, resend=bool(params.get("resend")),
                   accept_anomaly=bool(params.get("accept_anomaly")))

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunParams:
        params = cls.from_params(str(context.get("run_id") or "manual"), context.get("params") or {})
        run_type = getattr(context.get("dag_run"), "run_type", None)
        return dataclasses.replace(params, run_type=str(getattr(run_type, "value", run_type))) if run_type else params

    @property
    def carries_over(self) -> bool:
        """Whether this run also sends earlier days' digests the daily quota left waiting (issue 14). Not a
        backfill (it reports an old day; the latest day's run carries over), nor a run that narrows or changes
        what is sent: ``entity_ids`` (some companies of its day), ``resend`` and ``redirect_to`` (a deliberate
        act on its day), ``dry_run`` (sends nothing). Those are about their own day; carrying would send other
        days' digests nobody asked that run for."""
        return (self.run_type != "backfill" and not self.dry_run and not self.entity_ids and not self.resend
                and not self.redirect_to)

    @property
    def mode(self) -> str:
        """How this run sends, in words every note and summary line uses."""
        if self.dry_run:
            return "dry run: nothing sent, no ledger row changed"
        if self.redirect_to:
            return f"test: redirected to {self.redirect_to}, ledger not changed"
        return "resend" if self.resend else "normal"

    def delivery_options(self, settings: Settings, carried_over: bool = False) -> DeliveryOptions:
        """``carried_over``: an earlier day's batch, carried over (:func:`billing_digest.plan.plan_carry_over`)."""
        return DeliveryOptions(run_id=self.run_id, dry_run=self.dry_run, redirect_to=self.redirect_to,
                               resend=self.resend, entity_ids=self.entity_ids, carried_over=carried_over,
                               attempts=settings.smtp_attempts, backoff_seconds=settings.smtp_backoff_seconds,
                               suppression=SuppressionPolicy.from_settings(settings),
                               max_messages_per_second=settings.smtp_max_messages_per_second,
                               throttle_pause_seconds=settings.smtp_throttle_pause_seconds,
                               throttle_patience_seconds=settings.smtp_throttle_patience_seconds,
                               max_messages_per_day=settings.smtp_max_messages_per_day)
